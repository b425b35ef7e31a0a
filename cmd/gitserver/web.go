package main

import (
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

// Log lists the commits of to not reachable from since, newest first.
func (g webGit) Log(ctx context.Context, r store.Repo, to, since string, limit int) ([]web.LogEntry, error) {
	if !isCommitID(to) || since != "" && !isCommitID(since) {
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

// isCommitID reports whether s is a full hexadecimal object name.
func isCommitID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
