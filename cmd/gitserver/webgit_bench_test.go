package main

// go-git or git plumbing for the repository pages (issue 13): the same
// reads through webGit (the server's, git plumbing) and goGitWeb (go-git
// v5), on the go-git history and on a generated 100k-commit one.
//
//	go test -run '^$' -bench BenchmarkWebGit -benchtime 20x ./cmd/gitserver
//
// Results and the pick: docs/benchmarks.md "Web pages: go-git or plumbing".

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"gitserver/bench/history"
	"gitserver/gitserver"
	"gitserver/store"
	"gitserver/ui/web"
)

// webReader is the part of web.Git both implementations have.
type webReader interface {
	Readme(ctx context.Context, r store.Repo) (web.Readme, error)
	Tree(ctx context.Context, r store.Repo, ref, path string) ([]web.TreeEntry, error)
	Blob(ctx context.Context, r store.Repo, ref, path string, max int64) (web.Blob, error)
	Log(ctx context.Context, r store.Repo, ref string, skip, n int) ([]web.Commit, error)
}

// benchRepo is a repository under test and the reads its pages make.
type benchRepo struct {
	name   string
	dir    string
	branch string
	subdir string // a directory to list
	file   string // a file to read
}

// gogitMirror is a bare mirror of the go-git bundle kept as the server's
// maintenance keeps it (bitmap, commit-graph): cached beside the generated
// histories for the benchmark, in a temporary directory for tests.
func gogitMirror(tb testing.TB, cached bool) string {
	tb.Helper()
	bundle, err := findRepoFile(filepath.Join("shared", "data", "go-git.bundle"))
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("no go-git bundle: %v", err)
		}
		tb.Skipf("no go-git bundle: %v", err)
	}
	dir := filepath.Join(tb.TempDir(), "gogit.git")
	if cached {
		cache, err := os.UserCacheDir()
		if err != nil {
			tb.Fatal(err)
		}
		dir = filepath.Join(cache, "gitserver-bench", "gogit-v1.git")
		if _, err := os.Stat(filepath.Join(dir, "bench-complete")); err == nil {
			return dir
		}
		os.RemoveAll(dir)
	}
	g := NewGitEnv(tb)
	g.Must("", "clone", "-q", "--mirror", bundle, dir)
	g.Must(dir, "-c", "repack.writeBitmaps=true", "repack", "-a", "-d", "-q")
	g.Must(dir, "commit-graph", "write", "--reachable")
	if err := os.WriteFile(filepath.Join(dir, "bench-complete"), nil, 0o644); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// readers returns the implementations over a Repos whose repository 1 is
// dir (a symbolic link).
func readers(tb testing.TB, dir string) (map[string]webReader, store.Repo, []string) {
	tb.Helper()
	root := tb.TempDir()
	if err := os.Symlink(dir, filepath.Join(root, "1.git")); err != nil {
		tb.Fatal(err)
	}
	path, _, err := gitserver.FindGit()
	if err != nil {
		tb.Fatal(err)
	}
	repos := &gitserver.Repos{Root: root, Git: &gitserver.Git{Path: path, Home: tb.TempDir()}}
	impl := map[string]webReader{
		"plumbing":     webGit{git: repos.Git, repos: repos},
		"gogit-open":   &goGitWeb{repos: repos},
		"gogit-shared": &goGitWeb{repos: repos, shared: true},
	}
	return impl, store.Repo{ID: 1}, []string{"plumbing", "gogit-open", "gogit-shared"}
}

// resolve is the ref resolution each implementation does first.
func resolve(impl webReader, ctx context.Context, r store.Repo, ref string) error {
	switch g := impl.(type) {
	case webGit:
		_, err := g.resolve(ctx, g.repos.Dir(r), ref)
		return err
	case *goGitWeb:
		repo, done, err := g.open(r)
		if err != nil {
			return err
		}
		defer done()
		_, err = g.commit(repo, ref)
		return err
	}
	panic("unknown implementation")
}

func BenchmarkWebGit(b *testing.B) {
	repos := []benchRepo{{name: "gogit", dir: gogitMirror(b, true), branch: "master", subdir: "plumbing/object", file: "repository.go"}}
	if testing.Short() {
		b.Log("-short: the go-git history only")
	} else {
		dir, err := history.Cached(100000, func(s string) { b.Log(s) })
		if err != nil {
			b.Fatal(err)
		}
		repos = append(repos, benchRepo{name: "history100k", dir: dir, branch: history.Branch, subdir: "d05", file: "d05/f005.go"})
	}
	ctx := context.Background()
	for _, br := range repos {
		impls, r, order := readers(b, br.dir)
		r.DefaultBranch = br.branch
		reads := []struct {
			name string
			fn   func(webReader) error
		}{
			{"resolve", func(g webReader) error { return resolve(g, ctx, r, br.branch) }},
			{"readme", func(g webReader) error { _, err := g.Readme(ctx, r); return err }},
			{"tree-root", func(g webReader) error { _, err := g.Tree(ctx, r, br.branch, ""); return err }},
			{"tree-subdir", func(g webReader) error { _, err := g.Tree(ctx, r, br.branch, br.subdir); return err }},
			{"blob", func(g webReader) error { _, err := g.Blob(ctx, r, br.branch, br.file, 1<<20); return err }},
			{"log-page1", func(g webReader) error { _, err := g.Log(ctx, r, br.branch, 0, 50); return err }},
			{"log-page21", func(g webReader) error { _, err := g.Log(ctx, r, br.branch, 1000, 50); return err }},
			{"log-page101", func(g webReader) error { _, err := g.Log(ctx, r, br.branch, 5000, 50); return err }},
		}
		for _, rd := range reads {
			for _, name := range order {
				g := impls[name]
				b.Run(br.name+"/"+rd.name+"/"+name, func(b *testing.B) {
					if err := rd.fn(g); err != nil { // warm-up, and the check
						b.Fatal(err)
					}
					b.ResetTimer()
					for b.Loop() {
						if err := rd.fn(g); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// TestWebGitImplementationsAgree: on the go-git history (merges, tags,
// nested trees) and a generated linear one, go-git answers what plumbing
// answers, so the benchmark compares the same work.
func TestWebGitImplementationsAgree(t *testing.T) {
	t.Parallel()
	dir300 := filepath.Join(t.TempDir(), "history300.git")
	if err := history.Generate(dir300, 300); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	repos := []benchRepo{{name: "history300", dir: dir300, branch: history.Branch, subdir: "d05", file: "d05/f005.go"}}
	// The go-git history (merges, tags) is the shared test data beside the
	// checkout; a clone elsewhere (CI's) compares on the generated one only.
	if _, err := findRepoFile(filepath.Join("shared", "data", "go-git.bundle")); err == nil {
		repos = append(repos, benchRepo{name: "gogit", dir: gogitMirror(t, false), branch: "master", subdir: "plumbing/object", file: "plumbing/object/commit.go"})
	} else {
		t.Logf("go-git history skipped: %v", err)
	}
	for _, br := range repos {
		impls, r, order := readers(t, br.dir)
		r.DefaultBranch = br.branch
		want := impls["plumbing"]
		for _, name := range order[1:] {
			got := impls[name]
			check := func(what string, g, w any, gerr, werr error) {
				t.Helper()
				if gerr != nil || werr != nil {
					t.Fatalf("%s %s %s: errors %v (go-git) and %v (plumbing)", br.name, name, what, gerr, werr)
				}
				if !reflect.DeepEqual(g, w) {
					gv, wv := reflect.ValueOf(g), reflect.ValueOf(w)
					if gv.Kind() == reflect.Slice && wv.Kind() == reflect.Slice {
						for i := 0; i < min(gv.Len(), wv.Len()); i++ {
							if !reflect.DeepEqual(gv.Index(i).Interface(), wv.Index(i).Interface()) {
								g, w = gv.Index(i).Interface(), wv.Index(i).Interface()
								what = fmt.Sprintf("%s [%d of %d/%d]", what, i, gv.Len(), wv.Len())
								break
							}
						}
					}
					t.Errorf("%s %s %s:\n got %+v\nwant %+v", br.name, name, what, g, w)
				}
			}
			gr, gerr := got.Readme(ctx, r)
			wr, werr := want.Readme(ctx, r)
			// plumbing's Readme trims the README's surrounding space.
			gr.Content = bytes.TrimSpace(gr.Content)
			check("readme", gr, wr, gerr, werr)
			for _, p := range []string{"", br.subdir} {
				g, gerr := got.Tree(ctx, r, br.branch, p)
				w, werr := want.Tree(ctx, r, br.branch, p)
				check("tree "+p, g, w, gerr, werr)
			}
			gb, gerr := got.Blob(ctx, r, br.branch, br.file, 1<<20)
			wb, werr := want.Blob(ctx, r, br.branch, br.file, 1<<20)
			check("blob", gb, wb, gerr, werr)
			gb, gerr = got.Blob(ctx, r, br.branch, br.file, 10)
			wb, werr = want.Blob(ctx, r, br.branch, br.file, 10)
			check("blob over max", gb, wb, gerr, werr)
			for _, skip := range []int{0, 100} {
				g, gerr := got.Log(ctx, r, br.branch, skip, 50)
				w, werr := want.Log(ctx, r, br.branch, skip, 50)
				check("log", g, w, gerr, werr)
			}
			for _, bad := range []struct{ ref, path string }{{"nope", ""}, {br.branch, "nope"}, {br.branch, br.file}} {
				if _, err := got.Tree(ctx, r, bad.ref, bad.path); err != web.ErrNotFound {
					t.Errorf("%s %s: Tree(%q, %q) = %v, want ErrNotFound", br.name, name, bad.ref, bad.path, err)
				}
			}
			if _, err := got.Blob(ctx, r, br.branch, br.subdir, 1<<20); err != web.ErrNotFound {
				t.Errorf("%s %s: Blob of a directory = %v, want ErrNotFound", br.name, name, err)
			}
		}
	}
}
