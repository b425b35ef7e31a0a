package hooks

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const z40 = "0000000000000000000000000000000000000000"

func create(ref string) RefUpdate {
	return RefUpdate{Old: z40, New: strings.Repeat("a", 40), Ref: ref}
}

func TestCheckConflicts(t *testing.T) {
	del := RefUpdate{Old: strings.Repeat("b", 40), New: z40, Ref: "refs/heads/gone"}
	upd := RefUpdate{Old: strings.Repeat("b", 40), New: strings.Repeat("c", 40), Ref: "refs/heads/master"}
	for _, tc := range []struct {
		name     string
		updates  []RefUpdate
		existing []string
		want     []string // rejected refs
	}{
		{"none", []RefUpdate{upd, create("refs/heads/a"), create("refs/heads/b/c")}, []string{"refs/heads/b/d"}, nil},
		{"within the push", []RefUpdate{upd, create("refs/heads/new"), create("refs/heads/new/x")}, nil,
			[]string{"refs/heads/new", "refs/heads/new/x"}},
		{"deep within the push", []RefUpdate{create("refs/heads/a/b/c"), create("refs/heads/a")}, nil,
			[]string{"refs/heads/a/b/c", "refs/heads/a"}},
		{"under an existing ref", []RefUpdate{upd, create("refs/heads/df/x/y")}, []string{"refs/heads/df"},
			[]string{"refs/heads/df/x/y"}},
		{"over existing refs", []RefUpdate{upd, create("refs/heads/dir")}, []string{"refs/heads/dir/sub", "refs/heads/dir/sub2"},
			[]string{"refs/heads/dir"}},
		{"existing deleted in the same push", []RefUpdate{del, create("refs/heads/gone/x")}, []string{"refs/heads/gone"},
			[]string{"refs/heads/gone/x"}},
		{"prefix without a slash", []RefUpdate{create("refs/heads/ab")}, []string{"refs/heads/a", "refs/heads/abc"}, nil},
		{"same ref exists (a race)", []RefUpdate{create("refs/heads/a")}, []string{"refs/heads/a"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, r := range CheckConflicts(tc.updates, tc.existing) {
				got = append(got, r.Ref)
				if !strings.HasPrefix(r.Reason, "conflicts with refs/") {
					t.Errorf("reason %q", r.Reason)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("rejected %v, want %v", got, tc.want)
			}
		})
	}
	pats := ConflictPatterns([]RefUpdate{upd, del, create("refs/heads/a/b/c"), create("refs/tags/v1")})
	if want := []string{"refs/heads/a", "refs/heads/a/b", "refs/heads/a/b/c", "refs/tags/v1"}; !slices.Equal(pats, want) {
		t.Errorf("patterns %v, want %v", pats, want)
	}
}

// TestValidRefNameAgreesWithGit: every name ValidRefName accepts, git's
// receive-pack accepts (check-ref-format without --allow-onelevel on what
// follows refs/), and conversely.
func TestValidRefNameAgreesWithGit(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git")
	}
	for _, name := range []string{
		"refs/heads/master", "refs/heads/a/b", "refs/tags/v1.0", "refs/notes/commits", "refs/foo",
		"refs/heads/.hidden", "refs/heads/a..b", "refs/heads/a.lock", "refs/heads/a.lock/b", "refs/heads/a/",
		"refs/heads//a", "refs/heads/a.", "refs/heads/a@{1}", "refs/heads/@", "refs/heads/a b", "refs/heads/a~1",
		"refs/heads/a^", "refs/heads/a:b", "refs/heads/a?", "refs/heads/a*", "refs/heads/a[", "refs/heads/a\\b",
		"refs/heads/a\x7f", "refs/heads/é", "refs/heads/a@b", "refs/heads/-x", "refs/heads/a.b.", "refs/heads/x.lockx",
	} {
		gitOK := exec.Command(git, "check-ref-format", strings.TrimPrefix(name, "refs/")).Run() == nil
		if got := ValidRefName(name); got != gitOK {
			t.Errorf("ValidRefName(%q) = %v, git says %v", name, got, gitOK)
		}
	}
}
