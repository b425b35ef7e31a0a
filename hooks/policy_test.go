package hooks_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gitserver/hooks"
)

// ancestryTable answers Ancestry from a fixed table of old->new pairs that
// are fast-forwards; any pair in errs fails. It records every question.
type ancestryTable struct {
	ff    map[[2]string]bool
	errs  map[[2]string]bool
	asked [][2]string
}

func (a *ancestryTable) isAncestor(old, new string) (bool, error) {
	k := [2]string{old, new}
	a.asked = append(a.asked, k)
	if a.errs[k] {
		return false, errors.New("cannot tell")
	}
	return a.ff[k], nil
}

func hexID(n, length int) string { return fmt.Sprintf("%0*x", length, n) }

func TestCheckTable(t *testing.T) {
	for _, idLen := range []int{40, 64} {
		t.Run(fmt.Sprint(idLen), func(t *testing.T) {
			z := strings.Repeat("0", idLen)
			c1, c2, c3, bad := hexID(0xc1, idLen), hexID(0xc2, idLen), hexID(0xc3, idLen), hexID(0xbad, idLen)
			anc := &ancestryTable{
				ff:   map[[2]string]bool{{c1, c2}: true, {c2, c3}: true, {c1, c3}: true},
				errs: map[[2]string]bool{{bad, c1}: true},
			}
			cases := []struct {
				name   string
				u      hooks.RefUpdate
				reason string // "" = accepted
			}{
				{"branch creation", hooks.RefUpdate{z, c1, "refs/heads/feature"}, ""},
				{"default branch creation", hooks.RefUpdate{z, c1, "refs/heads/main"}, ""},
				{"fast-forward", hooks.RefUpdate{c1, c2, "refs/heads/main"}, ""},
				{"fast-forward other branch", hooks.RefUpdate{c1, c3, "refs/heads/feature"}, ""},
				{"no-op update", hooks.RefUpdate{c2, c2, "refs/heads/main"}, ""},
				{"non-fast-forward", hooks.RefUpdate{c2, c1, "refs/heads/main"}, hooks.ReasonNonFastForward},
				{"non-fast-forward other branch", hooks.RefUpdate{c3, c1, "refs/heads/feature"}, hooks.ReasonNonFastForward},
				{"ancestry error", hooks.RefUpdate{bad, c1, "refs/heads/feature"}, hooks.ReasonCheckFailed},
				{"default branch deletion", hooks.RefUpdate{c1, z, "refs/heads/main"}, hooks.ReasonDeleteDefault},
				{"other branch deletion", hooks.RefUpdate{c1, z, "refs/heads/feature"}, ""},
				{"branch named like default deletion", hooks.RefUpdate{c1, z, "refs/heads/main2"}, ""},
				{"nested default-like deletion", hooks.RefUpdate{c1, z, "refs/heads/x/main"}, ""},
				{"tag creation", hooks.RefUpdate{z, c1, "refs/tags/v1"}, ""},
				{"tag move forward", hooks.RefUpdate{c1, c2, "refs/tags/v1"}, hooks.ReasonTagMove},
				{"tag move backward", hooks.RefUpdate{c2, c1, "refs/tags/v1"}, hooks.ReasonTagMove},
				{"tag deletion", hooks.RefUpdate{c1, z, "refs/tags/v1"}, hooks.ReasonTagDelete},
				{"tag named like default", hooks.RefUpdate{c1, z, "refs/tags/main"}, hooks.ReasonTagDelete},
				{"reserved create", hooks.RefUpdate{z, c1, "refs/gitserver/x"}, hooks.ReasonReserved},
				{"reserved pin create", hooks.RefUpdate{z, c1, "refs/gitserver/pins/" + c1}, hooks.ReasonReserved},
				{"reserved update ff", hooks.RefUpdate{c1, c2, "refs/gitserver/pins/x"}, hooks.ReasonReserved},
				{"reserved delete", hooks.RefUpdate{c1, z, "refs/gitserver/pins/" + c1}, hooks.ReasonReserved},
				{"notes ff", hooks.RefUpdate{c1, c2, "refs/notes/commits"}, ""},
				{"notes non-ff", hooks.RefUpdate{c2, c1, "refs/notes/commits"}, hooks.ReasonNonFastForward},
				{"similar to reserved", hooks.RefUpdate{z, c1, "refs/heads/gitserver/x"}, ""},
			}
			for _, c := range cases {
				got := hooks.Check([]hooks.RefUpdate{c.u}, "main", anc.isAncestor)
				switch {
				case c.reason == "" && len(got) != 0:
					t.Errorf("%s: rejected %v, want accepted", c.name, got)
				case c.reason != "" && len(got) != 1:
					t.Errorf("%s: %d rejections %v, want one (%s)", c.name, len(got), got, c.reason)
				case c.reason != "" && (got[0].Ref != c.u.Ref || got[0].Reason != c.reason):
					t.Errorf("%s: rejection %+v, want %s: %s", c.name, got[0], c.u.Ref, c.reason)
				}
			}
			// Ancestry is only asked about real branch updates.
			for _, q := range anc.asked {
				if hooks.IsZero(q[0]) || hooks.IsZero(q[1]) || q[0] == q[1] {
					t.Errorf("ancestry asked about a creation, deletion or no-op: %v", q)
				}
			}
		})
	}
}

func TestCheckManyRefsOneRejectionEach(t *testing.T) {
	z := strings.Repeat("0", 40)
	c1, c2 := hexID(1, 40), hexID(2, 40)
	anc := func(old, new string) (bool, error) { return old == c1 && new == c2, nil }
	var updates []hooks.RefUpdate
	var wantBad []string
	for i := 0; i < 200; i++ {
		switch i % 4 {
		case 0: // fast-forward: fine
			updates = append(updates, hooks.RefUpdate{c1, c2, fmt.Sprintf("refs/heads/ok-%d", i)})
		case 1: // rewind: refused
			ref := fmt.Sprintf("refs/heads/bad-%d", i)
			updates = append(updates, hooks.RefUpdate{c2, c1, ref})
			wantBad = append(wantBad, ref)
		case 2: // tag creation: fine
			updates = append(updates, hooks.RefUpdate{z, c1, fmt.Sprintf("refs/tags/t-%d", i)})
		case 3: // tag deletion: refused
			ref := fmt.Sprintf("refs/tags/gone-%d", i)
			updates = append(updates, hooks.RefUpdate{c1, z, ref})
			wantBad = append(wantBad, ref)
		}
	}
	got := hooks.Check(updates, "master", anc)
	if len(got) != len(wantBad) {
		t.Fatalf("%d rejections, want %d", len(got), len(wantBad))
	}
	for i, r := range got {
		if r.Ref != wantBad[i] {
			t.Errorf("rejection %d for %s, want %s (input order)", i, r.Ref, wantBad[i])
		}
		if want := "rejected " + r.Ref + ": " + r.Reason; r.String() != want {
			t.Errorf("String() = %q, want %q", r.String(), want)
		}
	}
	if got := hooks.Check(nil, "master", anc); len(got) != 0 {
		t.Errorf("empty push rejected: %v", got)
	}
}

func TestRejectionLine(t *testing.T) {
	r := hooks.Rejection{Ref: "refs/heads/master", Reason: hooks.ReasonNonFastForward}
	if got, want := r.String(), "rejected refs/heads/master: non-fast-forward update would rewrite history"; got != want {
		t.Errorf("line %q, want the contract's %q", got, want)
	}
}

// gitRepo is a real temp repository with a small history:
//
//	base -- ff          (main)
//	    \-- side        (side)
type gitRepo struct {
	dir            string
	base, ff, side string
	env            []string
}

func newGitRepo(t *testing.T) *gitRepo {
	t.Helper()
	dir := t.TempDir()
	home := t.TempDir()
	r := &gitRepo{dir: dir, env: append(os.Environ(),
		"HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "XDG_CONFIG_HOME="+home,
		"GIT_AUTHOR_NAME=T", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=T", "GIT_COMMITTER_EMAIL=t@example.com")}
	r.git(t, "init", "-q", "-b", "main", ".")
	r.base = r.commit(t, "base")
	r.ff = r.commit(t, "ff")
	r.git(t, "checkout", "-q", "-b", "side", r.base)
	r.side = r.commit(t, "side")
	return r
}

func (r *gitRepo) git(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	cmd.Env = r.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (r *gitRepo) commit(t *testing.T, msg string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(r.dir, msg+".txt"), []byte(msg), 0o644); err != nil {
		t.Fatal(err)
	}
	r.git(t, "add", ".")
	r.git(t, "commit", "-q", "-m", msg)
	return r.git(t, "rev-parse", "HEAD")
}

// realAncestry is the pre-receive hook's own ancestry check, run in dir.
func realAncestry(dir string) hooks.Ancestry {
	return hooks.GitAncestry(context.Background(), "git", dir)
}

func TestCheckWithRealGitAncestry(t *testing.T) {
	r := newGitRepo(t)
	z := strings.Repeat("0", 40)
	missing := strings.Repeat("d", 40)
	updates := []hooks.RefUpdate{
		{r.base, r.ff, "refs/heads/main"},       // fast-forward
		{r.ff, r.side, "refs/heads/feature"},    // sideways: not a fast-forward
		{r.ff, r.base, "refs/heads/rewind"},     // rewind
		{missing, r.ff, "refs/heads/unknown"},   // unknown object: cannot tell
		{z, r.side, "refs/heads/new"},           // creation
		{r.side, z, "refs/heads/side"},          // deletion of another branch
		{r.base, r.side, "refs/heads/feature2"}, // fast-forward onto side
	}
	got := hooks.Check(updates, "main", realAncestry(r.dir))
	want := []hooks.Rejection{
		{"refs/heads/feature", hooks.ReasonNonFastForward},
		{"refs/heads/rewind", hooks.ReasonNonFastForward},
		{"refs/heads/unknown", hooks.ReasonCheckFailed},
	}
	if len(got) != len(want) {
		t.Fatalf("rejections %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("rejection %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestPreReceiveWithRealGit(t *testing.T) {
	r := newGitRepo(t)
	// PreReceive runs git with the inherited environment, as inside a hook.
	t.Setenv("GIT_DIR", filepath.Join(r.dir, ".git"))
	env := hooks.Env{RepoID: 1, Repo: "o/n", DefaultBranch: "main", Pusher: "alice", RequestID: "req-123"}
	z := strings.Repeat("0", 40)
	ctx := context.Background()

	t.Run("accepted", func(t *testing.T) {
		in := fmt.Sprintf("%s %s refs/heads/main\n%s %s refs/heads/new\n", r.base, r.ff, z, r.side)
		var stderr bytes.Buffer
		if code := hooks.PreReceive(ctx, env, "git", strings.NewReader(in), &stderr); code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr.String())
		}
		if stderr.Len() != 0 {
			t.Errorf("accepted push printed %q", stderr.String())
		}
	})
	t.Run("one line per refused ref", func(t *testing.T) {
		in := fmt.Sprintf("%s %s refs/heads/main\n%s %s refs/heads/ok\n%s %s refs/tags/v1\n%s %s refs/heads/main\n",
			r.ff, r.base, r.base, r.ff, r.base, z, r.ff, z)
		var stderr bytes.Buffer
		if code := hooks.PreReceive(ctx, env, "git", strings.NewReader(in), &stderr); code == 0 {
			t.Fatal("a push with refused refs was accepted")
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		want := []string{
			"rejected refs/heads/main: " + hooks.ReasonNonFastForward,
			"rejected refs/tags/v1: " + hooks.ReasonTagDelete,
			"rejected refs/heads/main: " + hooks.ReasonDeleteDefault,
		}
		if strings.Join(lines, "\n") != strings.Join(want, "\n") {
			t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), strings.Join(want, "\n"))
		}
	})
	t.Run("ancestry error leaks nothing", func(t *testing.T) {
		in := fmt.Sprintf("%s %s refs/heads/main\n", strings.Repeat("e", 40), r.ff)
		var stderr bytes.Buffer
		if code := hooks.PreReceive(ctx, env, "git", strings.NewReader(in), &stderr); code == 0 {
			t.Fatal("an unverifiable update was accepted")
		}
		out := stderr.String()
		if !strings.Contains(out, "rejected refs/heads/main: "+hooks.ReasonCheckFailed) || !strings.Contains(out, "req-123") {
			t.Errorf("stderr %q: want the rejection and the request id", out)
		}
		if strings.Contains(out, r.dir) || strings.Contains(out, "merge-base") || strings.Contains(out, "fatal") {
			t.Errorf("internal detail shown to the pusher: %q", out)
		}
	})
	t.Run("malformed input", func(t *testing.T) {
		var stderr bytes.Buffer
		if code := hooks.PreReceive(ctx, env, "git", strings.NewReader("nonsense\n"), &stderr); code == 0 {
			t.Fatal("malformed input accepted")
		}
		if !strings.HasPrefix(stderr.String(), "rejected") {
			t.Errorf("stderr %q", stderr.String())
		}
	})
}
