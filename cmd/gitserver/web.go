package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gitserver/gitserver"
	"gitserver/store"
	"gitserver/ui/web"
)

// maxReadmeBytes bounds the README the repository home renders.
const maxReadmeBytes = 512 << 10

// webGit reads what the web pages show of a repository from its bare
// directory with git plumbing (web.Git).
type webGit struct {
	git   *gitserver.Git
	repos *gitserver.Repos
}

// readmeNames are the README files the home shows, best first.
var readmeNames = []string{"readme.md", "readme.markdown", "readme", "readme.txt"}

func (g webGit) Readme(ctx context.Context, r store.Repo) (web.Readme, error) {
	dir := g.repos.Dir(r)
	heads, err := g.git.Output(ctx, dir, "for-each-ref", "--count=1", "--format=%(refname)", "refs/heads/")
	if err != nil {
		return web.Readme{}, err
	}
	if heads == "" {
		return web.Readme{Empty: true}, nil
	}
	ref := "refs/heads/" + r.DefaultBranch
	if _, err := g.git.Output(ctx, dir, "rev-parse", "--verify", "--quiet", ref+"^{commit}"); err != nil {
		return web.Readme{NoBranch: true}, nil
	}
	// Top-level blobs: "<mode> blob <oid>\t<name>".
	tree, err := g.git.Output(ctx, dir, "ls-tree", ref)
	if err != nil {
		return web.Readme{}, err
	}
	found := map[string]string{} // lower-case name → name
	for _, line := range strings.Split(tree, "\n") {
		meta, name, ok := strings.Cut(line, "\t")
		if !ok || !strings.Contains(meta, " blob ") {
			continue
		}
		if _, seen := found[strings.ToLower(name)]; !seen {
			found[strings.ToLower(name)] = name
		}
	}
	for _, want := range readmeNames {
		name, ok := found[want]
		if !ok {
			continue
		}
		obj := ref + ":" + name
		size, err := g.git.Output(ctx, dir, "cat-file", "-s", obj)
		if err != nil {
			return web.Readme{}, err
		}
		if n, err := strconv.ParseInt(size, 10, 64); err != nil || n > maxReadmeBytes {
			return web.Readme{Name: name, Content: []byte(fmt.Sprintf("(%s is too large to show: %s bytes)", name, size))}, nil
		}
		text, err := g.git.Output(ctx, dir, "cat-file", "blob", obj)
		if err != nil {
			return web.Readme{}, err
		}
		return web.Readme{Name: name, Content: []byte(text)}, nil
	}
	return web.Readme{}, nil
}

// resolve is ref's commit (rev-parse --verify --end-of-options
// REF^{commit}); web.ErrNotFound when it names none.
func (g webGit) resolve(ctx context.Context, dir, ref string) (string, error) {
	if !web.ValidRef(ref) {
		return "", web.ErrNotFound
	}
	out, err := g.git.Output(ctx, dir, "rev-parse", "--verify", "--quiet", "--end-of-options", ref+"^{commit}")
	if err != nil || out == "" {
		return "", web.ErrNotFound
	}
	return out, nil
}

// object resolves ref and path to an object name (commit:path) whose type
// must be want; web.ErrNotFound otherwise.
func (g webGit) object(ctx context.Context, dir, ref, path, want string) (string, error) {
	commit, err := g.resolve(ctx, dir, ref)
	if err != nil {
		return "", err
	}
	obj := commit + ":" + path
	if path == "" {
		obj = commit + "^{tree}"
	}
	typ, err := g.git.Output(ctx, dir, "cat-file", "-t", obj)
	if err != nil || typ != want {
		return "", web.ErrNotFound
	}
	return obj, nil
}

// raw runs git and returns its stdout untrimmed.
func (g webGit) raw(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := g.git.Command(ctx, dir, nil, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("git %s: %v: %s", args[0], err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

func (g webGit) Tree(ctx context.Context, r store.Repo, ref, path string) ([]web.TreeEntry, error) {
	dir := g.repos.Dir(r)
	obj, err := g.object(ctx, dir, ref, path, "tree")
	if err != nil {
		return nil, err
	}
	out, err := g.raw(ctx, dir, "ls-tree", "-l", "-z", "--end-of-options", obj)
	if err != nil {
		return nil, err
	}
	var entries []web.TreeEntry
	// "<mode> <type> <oid> <size>\t<name>\x00", size padded, "-" for trees.
	for _, rec := range strings.Split(string(out), "\x00") {
		meta, name, ok := strings.Cut(rec, "\t")
		if !ok {
			continue
		}
		f := strings.Fields(meta)
		if len(f) != 4 {
			return nil, fmt.Errorf("ls-tree: bad line %q", rec)
		}
		size := int64(-1)
		if n, err := strconv.ParseInt(f[3], 10, 64); err == nil {
			size = n
		}
		entries = append(entries, web.TreeEntry{Name: name, Mode: f[0], Type: f[1], Size: size})
	}
	return entries, nil
}

func (g webGit) Blob(ctx context.Context, r store.Repo, ref, path string, max int64) (web.Blob, error) {
	dir := g.repos.Dir(r)
	if path == "" {
		return web.Blob{}, web.ErrNotFound
	}
	obj, err := g.object(ctx, dir, ref, path, "blob")
	if err != nil {
		return web.Blob{}, err
	}
	s, err := g.git.Output(ctx, dir, "cat-file", "-s", obj)
	if err != nil {
		return web.Blob{}, err
	}
	size, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return web.Blob{}, fmt.Errorf("cat-file -s: %q", s)
	}
	if size > max {
		return web.Blob{Size: size}, nil
	}
	content, err := g.raw(ctx, dir, "cat-file", "blob", obj)
	if err != nil {
		return web.Blob{}, err
	}
	if content == nil {
		content = []byte{}
	}
	return web.Blob{Size: size, Content: content}, nil
}

func (g webGit) Log(ctx context.Context, r store.Repo, ref string, skip, n int) ([]web.Commit, error) {
	dir := g.repos.Dir(r)
	commit, err := g.resolve(ctx, dir, ref)
	if err != nil {
		return nil, err
	}
	out, err := g.raw(ctx, dir, "log", "-z", "--no-show-signature", "--format=%H%x1f%an%x1f%at%x1f%s",
		"--skip="+strconv.Itoa(skip), "-n", strconv.Itoa(n), commit, "--")
	if err != nil {
		return nil, err
	}
	var commits []web.Commit
	for _, rec := range strings.Split(string(out), "\x00") {
		f := strings.SplitN(rec, "\x1f", 4)
		if len(f) != 4 {
			continue
		}
		secs, _ := strconv.ParseInt(f[2], 10, 64)
		commits = append(commits, web.Commit{Hash: f[0], Author: f[1], When: time.Unix(secs, 0).UTC(), Subject: f[3]})
	}
	return commits, nil
}

func (g webGit) Refs(ctx context.Context, r store.Repo) (web.Refs, error) {
	out, err := g.raw(ctx, g.repos.Dir(r), "for-each-ref", "--sort=refname",
		"--format=%(refname)%00%(objectname)%00%(creatordate:unix)%00%(contents:subject)%00", "refs/heads/", "refs/tags/")
	if err != nil {
		return web.Refs{}, err
	}
	var refs web.Refs
	f := strings.Split(string(out), "\x00")
	for i := 0; i+4 < len(f); i += 4 {
		name := strings.TrimPrefix(f[i], "\n")
		secs, _ := strconv.ParseInt(f[i+2], 10, 64)
		ref := web.Ref{Hash: f[i+1], When: time.Unix(secs, 0).UTC(), Subject: f[i+3]}
		if b, ok := strings.CutPrefix(name, "refs/heads/"); ok {
			ref.Name = b
			refs.Branches = append(refs.Branches, ref)
		} else if t, ok := strings.CutPrefix(name, "refs/tags/"); ok {
			ref.Name = t
			refs.Tags = append(refs.Tags, ref)
		}
	}
	return refs, nil
}

// LogSince lists the commits of to not reachable from since, newest first.
func (g webGit) LogSince(ctx context.Context, r store.Repo, to, since string, limit int) ([]web.LogEntry, error) {
	if !store.ValidObjectID(to) || since != "" && !store.ValidObjectID(since) {
		return nil, fmt.Errorf("log of %s: not commit ids: %q %q", r.FullName(), to, since)
	}
	args := []string{"log", "-z", "--format=%H%x1f%an%x1f%aI%x1f%s", "-n", strconv.Itoa(limit), to}
	if since != "" {
		args = append(args, "^"+since)
	}
	out, err := g.git.Output(ctx, g.repos.Dir(r), append(args, "--")...)
	if err != nil {
		return nil, err
	}
	var log []web.LogEntry
	for _, rec := range strings.Split(out, "\x00") {
		f := strings.Split(strings.TrimSpace(rec), "\x1f")
		if len(f) != 4 {
			continue
		}
		e := web.LogEntry{Commit: f[0], Short: f[0], Author: f[1], When: f[2], Subject: f[3]}
		if len(e.Short) > 12 {
			e.Short = e.Short[:12]
		}
		if t, err := time.Parse(time.RFC3339, f[2]); err == nil {
			e.When = t.UTC().Format("2006-01-02 15:04 UTC")
		}
		log = append(log, e)
	}
	return log, nil
}

// Files lists the default branch's files for the Web IDE (web.EditorGit).
func (g webGit) Files(ctx context.Context, r store.Repo, max int) (string, []string, bool, error) {
	dir := g.repos.Dir(r)
	head, err := g.git.RefHead(ctx, dir, "refs/heads/"+r.DefaultBranch)
	if err != nil || head == "" {
		return "", nil, false, err
	}
	out, err := g.raw(ctx, dir, "ls-tree", "-r", "-z", "--full-tree", head)
	if err != nil {
		return "", nil, false, err
	}
	var files []string
	// "<mode> <type> <oid>\t<path>\x00"; submodules (commit) are not files.
	for _, rec := range strings.Split(string(out), "\x00") {
		meta, name, ok := strings.Cut(rec, "\t")
		if !ok || !strings.Contains(meta, " blob ") {
			continue
		}
		if len(files) == max {
			return head, files, true, nil
		}
		files = append(files, name)
	}
	return head, files, false, nil
}
