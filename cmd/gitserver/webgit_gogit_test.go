package main

// goGitWeb reads what the repository pages show with go-git (pure Go, in
// process) instead of git plumbing (webGit, one git process per step).
// It exists to measure the two on the same reads (BenchmarkWebGit) and
// to check that they agree (TestWebGitImplementationsAgree); the server
// uses webGit (docs/benchmarks.md "Web pages: go-git or plumbing").

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"gitserver/gitserver"
	"gitserver/store"
	"gitserver/ui/web"
)

// goGitWeb opens the repository on every call (go-git's Repository is
// not safe for concurrent use), or, with shared, keeps one open
// Repository per directory behind a mutex (its caches stay warm).
type goGitWeb struct {
	repos  *gitserver.Repos
	shared bool

	mu    sync.Mutex
	cache map[string]*git.Repository
}

func (g *goGitWeb) open(r store.Repo) (*git.Repository, func(), error) {
	dir := g.repos.Dir(r)
	if !g.shared {
		repo, err := git.PlainOpen(dir)
		return repo, func() {}, err
	}
	g.mu.Lock()
	if g.cache == nil {
		g.cache = map[string]*git.Repository{}
	}
	repo := g.cache[dir]
	if repo == nil {
		var err error
		if repo, err = git.PlainOpen(dir); err != nil {
			g.mu.Unlock()
			return nil, nil, err
		}
		g.cache[dir] = repo
	}
	return repo, g.mu.Unlock, nil
}

// commit resolves ref as webGit.resolve does (REF^{commit}).
func (g *goGitWeb) commit(repo *git.Repository, ref string) (*object.Commit, error) {
	if !web.ValidRef(ref) {
		return nil, web.ErrNotFound
	}
	h, err := repo.ResolveRevision(plumbing.Revision(ref))
	if err != nil {
		return nil, web.ErrNotFound
	}
	c, err := repo.CommitObject(*h)
	if err != nil {
		return nil, web.ErrNotFound
	}
	return c, nil
}

func (g *goGitWeb) tree(repo *git.Repository, ref, path string) (*object.Tree, error) {
	c, err := g.commit(repo, ref)
	if err != nil {
		return nil, err
	}
	t, err := c.Tree()
	if err != nil {
		return nil, err
	}
	if path == "" {
		return t, nil
	}
	sub, err := t.Tree(path)
	if err != nil {
		return nil, web.ErrNotFound
	}
	return sub, nil
}

func entryType(m filemode.FileMode) string {
	switch m {
	case filemode.Dir:
		return "tree"
	case filemode.Submodule:
		return "commit"
	}
	return "blob"
}

func (g *goGitWeb) Tree(ctx context.Context, r store.Repo, ref, path string) ([]web.TreeEntry, error) {
	repo, done, err := g.open(r)
	if err != nil {
		return nil, err
	}
	defer done()
	t, err := g.tree(repo, ref, path)
	if err != nil {
		return nil, err
	}
	entries := make([]web.TreeEntry, 0, len(t.Entries))
	for _, e := range t.Entries {
		typ := entryType(e.Mode)
		size := int64(-1)
		if typ == "blob" {
			if size, err = repo.Storer.EncodedObjectSize(e.Hash); err != nil {
				return nil, err
			}
		}
		entries = append(entries, web.TreeEntry{Name: e.Name, Mode: fmt.Sprintf("%06o", uint32(e.Mode)), Type: typ, Size: size})
	}
	return entries, nil
}

func (g *goGitWeb) Blob(ctx context.Context, r store.Repo, ref, path string, max int64) (web.Blob, error) {
	if path == "" {
		return web.Blob{}, web.ErrNotFound
	}
	repo, done, err := g.open(r)
	if err != nil {
		return web.Blob{}, err
	}
	defer done()
	c, err := g.commit(repo, ref)
	if err != nil {
		return web.Blob{}, err
	}
	t, err := c.Tree()
	if err != nil {
		return web.Blob{}, err
	}
	e, err := t.FindEntry(path)
	if err != nil || entryType(e.Mode) != "blob" {
		return web.Blob{}, web.ErrNotFound
	}
	return readBlob(repo, e.Hash, max)
}

func readBlob(repo *git.Repository, h plumbing.Hash, max int64) (web.Blob, error) {
	size, err := repo.Storer.EncodedObjectSize(h)
	if err != nil {
		return web.Blob{}, err
	}
	if size > max {
		return web.Blob{Size: size}, nil
	}
	b, err := repo.BlobObject(h)
	if err != nil {
		return web.Blob{}, err
	}
	rd, err := b.Reader()
	if err != nil {
		return web.Blob{}, err
	}
	defer rd.Close()
	content, err := io.ReadAll(rd)
	if err != nil {
		return web.Blob{}, err
	}
	return web.Blob{Size: size, Content: content}, nil
}

// subject is git's %s: the first paragraph, its lines joined by spaces.
func subject(msg string) string {
	para, _, _ := strings.Cut(strings.TrimLeft(msg, "\n"), "\n\n")
	lines := strings.Split(strings.TrimRight(para, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, " ")
}

func (g *goGitWeb) Log(ctx context.Context, r store.Repo, ref string, skip, n int) ([]web.Commit, error) {
	repo, done, err := g.open(r)
	if err != nil {
		return nil, err
	}
	defer done()
	c, err := g.commit(repo, ref)
	if err != nil {
		return nil, err
	}
	it, err := repo.Log(&git.LogOptions{From: c.Hash, Order: git.LogOrderCommitterTime})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var commits []web.Commit
	errStop := errors.New("stop")
	err = it.ForEach(func(c *object.Commit) error {
		if skip > 0 {
			skip--
			return nil
		}
		if len(commits) == n {
			return errStop
		}
		commits = append(commits, web.Commit{Hash: c.Hash.String(), Author: c.Author.Name,
			When: c.Author.When.UTC().Truncate(1e9), Subject: subject(c.Message)})
		return nil
	})
	if err != nil && err != errStop {
		return nil, err
	}
	return commits, nil
}

func (g *goGitWeb) Readme(ctx context.Context, r store.Repo) (web.Readme, error) {
	repo, done, err := g.open(r)
	if err != nil {
		return web.Readme{}, err
	}
	defer done()
	refs, err := repo.References()
	if err != nil {
		return web.Readme{}, err
	}
	anyBranch := false
	refs.ForEach(func(ref *plumbing.Reference) error {
		if ref.Name().IsBranch() {
			anyBranch = true
			return errors.New("found")
		}
		return nil
	})
	if !anyBranch {
		return web.Readme{Empty: true}, nil
	}
	c, err := g.commit(repo, "refs/heads/"+r.DefaultBranch)
	if err != nil {
		return web.Readme{NoBranch: true}, nil
	}
	t, err := c.Tree()
	if err != nil {
		return web.Readme{}, err
	}
	found := map[string]object.TreeEntry{}
	for _, e := range t.Entries {
		if entryType(e.Mode) != "blob" {
			continue
		}
		if _, seen := found[strings.ToLower(e.Name)]; !seen {
			found[strings.ToLower(e.Name)] = e
		}
	}
	for _, want := range readmeNames {
		e, ok := found[want]
		if !ok {
			continue
		}
		b, err := readBlob(repo, e.Hash, maxReadmeBytes)
		if err != nil {
			return web.Readme{}, err
		}
		if b.Content == nil {
			return web.Readme{Name: e.Name, Content: []byte(fmt.Sprintf("(%s is too large to show: %d bytes)", e.Name, b.Size))}, nil
		}
		return web.Readme{Name: e.Name, Content: b.Content}, nil
	}
	return web.Readme{}, nil
}
