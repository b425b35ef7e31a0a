package main

// The large benchmark repository (issue 15): hundreds of thousands of
// objects, thousands of refs and a deep history, written by `git
// fast-import` from a generated stream and cached under
// ~/.cache/gitserver-bench keyed by the generator's version and size, so
// that only the first `make bench` pays for it.

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// genVersion changes whenever the generated repository would change; it
// is part of the cache directory's name.
const genVersion = 1

// genSize is the shape of the generated repository.
type genSize struct {
	Name    string
	Commits int // commits on main (topic commits and merges come on top)
	Dirs    int // top-level directories; each has Dirs/2 subdirectories of 10 files
}

var flagGenOnly = flag.Bool("gen-only", false, "only generate (or find in the cache) the large repository of -size, print its path and counts")
var flagSize = flag.String("size", "large", "generated repository: large (~450k objects, ~3k refs) or small (quicker run)")

var genSizes = map[string]genSize{
	// ~450k objects, ~4k refs, 50k commits on main.
	"large": {Name: "large", Commits: 50000, Dirs: 30},
	// ~60k objects, ~500 refs: -size small (a quicker run).
	"small": {Name: "small", Commits: 4000, Dirs: 12},
}

// genRepo returns a bare repository of the given size, generating it into
// the cache when it is not there yet.
func genRepo(size genSize) (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	base := filepath.Join(home, ".cache", "gitserver-bench")
	dir := filepath.Join(base, fmt.Sprintf("gen-v%d-%s-%d-%d.git", genVersion, size.Name, size.Commits, size.Dirs))
	if _, err := os.Stat(filepath.Join(dir, "gitserver-bench-complete")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(base, "gen-tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	repo := filepath.Join(tmp, "repo.git")
	t0 := time.Now()
	if err := fastImport(repo, size); err != nil {
		return "", err
	}
	logf("  fast-import: %.1fs", time.Since(t0).Seconds())
	// fast-import deltas a blob only against the blob written just before
	// it; repack once with a delta search so the pack looks like one a
	// real push leaves (no bitmap: gitserver and the plain "with bitmaps"
	// copy write their own).
	t1 := time.Now()
	if err := gitRun(repo, "-c", "pack.threads=2", "repack", "-a", "-d", "-f", "-q", "--window=10", "--depth=50", "--no-write-bitmap-index"); err != nil {
		return "", err
	}
	logf("  repack -adf: %.1fs", time.Since(t1).Seconds())
	if err := gitRun(repo, "pack-refs", "--all"); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(repo, "gitserver-bench-complete"), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return "", err
	}
	os.RemoveAll(dir) // an incomplete earlier attempt
	if err := os.Rename(repo, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// fastImport writes the history into a new bare repository.
//
// Shape: Dirs top-level directories, each with Dirs/2 subdirectories of 10
// text files (Dirs=24: 2880 files). Every main commit edits 1-4 files (a few
// lines each, as code changes do); every 40 main commits a topic branch of 3
// commits forks from main and is merged back (a merge commit), and its
// branch stays (refs/heads/topic/N); every 10 main commits get a tag (every
// other one annotated); every 120 a release branch (refs/heads/release/N).
func fastImport(repo string, size genSize) error {
	if err := gitRun("", "init", "-q", "--bare", "-b", "main", repo); err != nil {
		return err
	}
	cmd := gitCmd(repo, "fast-import", "--quiet", "--done")
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	werr := writeStream(in, size)
	in.Close()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("fast-import: %v: %s", err, stderr.String())
	}
	return werr
}

type genState struct {
	w     *bufio.Writer
	rnd   uint64
	files []string   // paths
	lines [][]string // current content of each file
	mark  int
	when  int64
}

func (g *genState) next() uint64 {
	g.rnd ^= g.rnd << 13
	g.rnd ^= g.rnd >> 7
	g.rnd ^= g.rnd << 17
	return g.rnd
}

var genWords = strings.Fields(`func return if else for range err nil string int byte struct type var const
	package import map chan go defer select case switch default break continue len append make new copy
	context ctx request response handler server client config value key index count buffer reader writer`)

func (g *genState) line() string {
	n := 3 + int(g.next()%8)
	var b strings.Builder
	b.WriteString(strings.Repeat("\t", int(g.next()%3)))
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(genWords[g.next()%uint64(len(genWords))])
	}
	if g.next()%4 == 0 {
		fmt.Fprintf(&b, " // %d", g.next()%100000)
	}
	return b.String()
}

func (g *genState) content(i int) string {
	return strings.Join(g.lines[i], "\n") + "\n"
}

// edit changes a few lines of file i (replace, insert, delete).
func (g *genState) edit(i int) {
	l := g.lines[i]
	for range 1 + int(g.next()%6) {
		p := int(g.next() % uint64(len(l)))
		switch g.next() % 3 {
		case 0:
			l[p] = g.line()
		case 1:
			l = append(l[:p], append([]string{g.line()}, l[p:]...)...)
		case 2:
			if len(l) > 20 {
				l = append(l[:p], l[p+1:]...)
			} else {
				l[p] = g.line()
			}
		}
	}
	g.lines[i] = l
}

func (g *genState) commit(ref string, msg string, from int, merge int, changed []int) int {
	g.mark++
	g.when += 97
	m := g.mark
	fmt.Fprintf(g.w, "commit %s\nmark :%d\nauthor Dev %d <dev%d@example.com> %d +0000\ncommitter Bench <bench@example.com> %d +0000\ndata %d\n%s\n",
		ref, m, m%37, m%37, g.when, g.when, len(msg), msg)
	if from > 0 {
		fmt.Fprintf(g.w, "from :%d\n", from)
	}
	if merge > 0 {
		fmt.Fprintf(g.w, "merge :%d\n", merge)
	}
	for _, f := range changed {
		c := g.content(f)
		fmt.Fprintf(g.w, "M 100644 inline %s\ndata %d\n%s\n", g.files[f], len(c), c)
	}
	return m
}

func writeStream(out io.Writer, size genSize) error {
	g := &genState{w: bufio.NewWriterSize(out, 1<<20), rnd: 0x9e3779b97f4a7c15, when: 1500000000}
	for d := range size.Dirs {
		for s := range size.Dirs / 2 {
			for f := range 10 {
				g.files = append(g.files, fmt.Sprintf("pkg%02d/sub%02d/file%d.go", d, s, f))
			}
		}
	}
	g.lines = make([][]string, len(g.files))
	for i := range g.files {
		n := 40 + int(g.next()%200)
		g.lines[i] = make([]string, n)
		for j := range g.lines[i] {
			g.lines[i][j] = g.line()
		}
	}
	all := make([]int, len(g.files))
	for i := range all {
		all[i] = i
	}
	pick := func() []int {
		n := 1 + int(g.next()%4)
		out := make([]int, n)
		// Changes cluster in one directory, as real commits do.
		base := int(g.next() % uint64(len(g.files)))
		for i := range out {
			f := (base + int(g.next()%30)) % len(g.files)
			g.edit(f)
			out[i] = f
		}
		return out
	}
	head := g.commit("refs/heads/main", "initial import\n", 0, 0, all)
	topics, tags := 0, 0
	for i := 1; i < size.Commits; i++ {
		if i%40 == 0 {
			// A topic branch: 3 commits, merged back into main.
			topics++
			ref := fmt.Sprintf("refs/heads/topic/%d", topics)
			t := head
			for k := range 3 {
				t = g.commit(ref, fmt.Sprintf("topic %d: step %d\n\nA longer explanation of the change.\n", topics, k), t, 0, pick())
			}
			head = g.commit("refs/heads/main", fmt.Sprintf("Merge branch 'topic/%d'\n", topics), head, t, nil)
			continue
		}
		head = g.commit("refs/heads/main", fmt.Sprintf("change %d: %s %s\n", i, genWords[g.next()%uint64(len(genWords))], genWords[g.next()%uint64(len(genWords))]), head, 0, pick())
		if i%10 == 0 {
			tags++
			if tags%2 == 0 {
				fmt.Fprintf(g.w, "tag v0.%d.%d\nfrom :%d\ntagger Bench <bench@example.com> %d +0000\ndata 12\nrelease tag\n\n", tags/100, tags%100, head, g.when)
			} else {
				fmt.Fprintf(g.w, "reset refs/tags/v0.%d.%d\nfrom :%d\n\n", tags/100, tags%100, head)
			}
		}
		if i%120 == 5 {
			fmt.Fprintf(g.w, "reset refs/heads/release/%d\nfrom :%d\n\n", i/120, head)
		}
	}
	fmt.Fprintf(g.w, "done\n")
	return g.w.Flush()
}

// repoStats counts objects and refs of a repository (for the report).
func repoStats(dir string) (objects, refs int, packMB float64, err error) {
	out := gitOut(dir, "count-objects", "-v")
	for _, l := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(l, ": ")
		n, _ := strconv.Atoi(v)
		switch k {
		case "count", "in-pack":
			objects += n
		case "size-pack":
			packMB = float64(n) / 1024
		}
	}
	refs = len(strings.Split(gitOut(dir, "for-each-ref", "--format=%(refname)"), "\n"))
	if objects == 0 {
		err = errors.New("no objects")
	}
	return
}

func genOnly() error {
	size, ok := genSizes[*flagSize]
	if !ok {
		return fmt.Errorf("-size %q: want large or small", *flagSize)
	}
	t0 := time.Now()
	dir, err := genRepo(size)
	if err != nil {
		return err
	}
	objects, refs, packMB, err := repoStats(dir)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d objects, %d refs, %.1f MiB pack (%.1fs)\n", dir, objects, refs, packMB, time.Since(t0).Seconds())
	return nil
}
