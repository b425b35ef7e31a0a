package history

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Branch is the generated repository's only branch (its HEAD).
const Branch = "main"

var gitEnv = []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0"}

func gitCmd(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), gitEnv...)
	return cmd
}

func gitRun(dir string, args ...string) error {
	out, err := gitCmd(dir, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Cached returns a bare repository with a linear history of n commits,
// generated once with `git fast-import` and cached under
// ~/.cache/gitserver-bench/history-N-v1.git (100k commits: about 35 s and
// 52 MB), kept as gitserver's maintenance keeps a repository (one pack,
// bitmap, packed refs, commit-graph). progress, when not nil, is told
// before a generation starts. The caller must not write to it.
//
// Tree: README.md and 400 files in 20 directories (d00..d19/f000.go ..);
// commit 1 adds them, every later commit changes one file (a few lines)
// and has one of 8 authors; a tag every 5000 commits. Deterministic: the
// same n gives the same commits.
func Cached(n int, progress func(string)) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "gitserver-bench", fmt.Sprintf("history-%d-v1.git", n))
	if _, err := os.Stat(filepath.Join(dir, "bench-complete")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "gen-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	repo := filepath.Join(tmp, "repo.git")
	if progress != nil {
		progress(fmt.Sprintf("generating a %d-commit repository in %s (once)", n, dir))
	}
	if err := Generate(repo, n); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(repo, "bench-complete"), nil, 0o644); err != nil {
		return "", err
	}
	os.RemoveAll(dir)
	if err := os.Rename(repo, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// Generate writes the n-commit history into a new bare repository dir.
func Generate(dir string, n int) error {
	if err := gitRun("", "init", "-q", "--bare", "-b", Branch, dir); err != nil {
		return err
	}
	cmd := gitCmd(dir, "fast-import", "--quiet")
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	w := bufio.NewWriterSize(in, 1<<20)
	Stream(w, n)
	w.Flush()
	in.Close()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("fast-import: %v: %s", err, stderr.String())
	}
	for _, args := range [][]string{
		{"-c", "pack.threads=1", "-c", "repack.writeBitmaps=true", "repack", "-a", "-d", "-f", "-q", "--window=10", "--depth=50"},
		{"pack-refs", "--all"},
		{"commit-graph", "write", "--reachable"},
	} {
		if err := gitRun(dir, args...); err != nil {
			return err
		}
	}
	return nil
}

// Stream writes the fast-import stream of an n-commit history.
func Stream(w *bufio.Writer, n int) {
	rnd := uint64(7)
	next := func() uint64 { rnd ^= rnd << 13; rnd ^= rnd >> 7; rnd ^= rnd << 17; return rnd }
	words := strings.Fields("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon")
	authors := strings.Fields("Ada Brian Chen Dana Emil Fatima Goran Hana")
	file := func(idx, version int) string {
		var b strings.Builder
		fmt.Fprintf(&b, "package d%02d\n\n// f%03d, version %d.\n", idx%20, idx, version)
		for l := 0; l < 30+idx%40; l++ {
			if l == version%7 {
				fmt.Fprintf(&b, "var changed = %q // %x\n", words[next()%20], next()%1000003)
			}
			fmt.Fprintf(&b, "var v%d = %q // %s %x\n", l, words[(idx+l)%20], words[(idx*7+l)%20], (idx*1009+l*31)%1000003)
		}
		return b.String()
	}
	readme := "# History\n\nA generated repository with a long linear history, for gitserver's page benchmarks.\n\n" +
		strings.Repeat("- "+strings.Join(words, " ")+"\n", 40)
	for i := 1; i <= n; i++ {
		a := authors[i%len(authors)]
		when := 1500000000 + i*600
		fmt.Fprintf(w, "commit refs/heads/main\nmark :%d\nauthor %s <%s@example.com> %d +0000\ncommitter %s <%s@example.com> %d +0000\n",
			i, a, strings.ToLower(a), when, a, strings.ToLower(a), when)
		msg := fmt.Sprintf("d%02d: change %d\n\nGenerated commit %d of %d.\n", i%20, i, i, n)
		fmt.Fprintf(w, "data %d\n%s", len(msg), msg)
		if i > 1 {
			fmt.Fprintf(w, "from :%d\n", i-1)
		}
		if i == 1 {
			fmt.Fprintf(w, "M 100644 inline README.md\ndata %d\n%s\n", len(readme), readme)
			for f := 0; f < 400; f++ {
				c := file(f, 0)
				fmt.Fprintf(w, "M 100644 inline d%02d/f%03d.go\ndata %d\n%s\n", f%20, f, len(c), c)
			}
		} else {
			f := int(next() % 400)
			c := file(f, i)
			fmt.Fprintf(w, "M 100644 inline d%02d/f%03d.go\ndata %d\n%s\n", f%20, f, len(c), c)
		}
		if i%5000 == 0 {
			fmt.Fprintf(w, "reset refs/tags/v%d\nfrom :%d\n\n", i/5000, i)
		}
	}
}
