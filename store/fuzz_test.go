package store

import (
	"regexp"
	"strings"
	"testing"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)

// FuzzValidName: ValidName is exactly the contract's regexp minus names
// ending in ".git" (case-insensitively), and an accepted name is safe to use
// as a path element and in a URL.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{
		"", "a", "A", "0", "-a", ".a", "_a", "a-b.c_d", "repo.git", "repo.GIT", "repo.Git", "repo.gi", "git", ".git",
		"a.git.", "a..b", "..", ".", "a/b", "a\\b", "a b", "a\x00", "ä", "a\n", "a%2f", strings.Repeat("a", 100),
		strings.Repeat("a", 101), strings.Repeat("a", 96) + ".git", strings.Repeat("a", 97) + ".git",
		"con", "a:b", "a@b", "a~1", "HEAD", "x.lock",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := ValidName(s)
		want := nameRE.MatchString(s) && !strings.HasSuffix(strings.ToLower(s), ".git")
		if got != want {
			t.Fatalf("ValidName(%q) = %v, want %v", s, got, want)
		}
		if !got {
			if err := CheckName("repository", s); err == nil {
				t.Fatalf("CheckName(%q) accepted an invalid name", s)
			}
			return
		}
		if CheckName("repository", s) != nil {
			t.Fatalf("CheckName(%q) refused a valid name", s)
		}
		if strings.ContainsAny(s, "/\\\x00 %?#:") || s == "." || s == ".." || strings.HasPrefix(s, ".") || strings.HasPrefix(s, "-") {
			t.Fatalf("valid name %q is unsafe as a path element or URL segment", s)
		}
		if len(s) > 100 {
			t.Fatalf("valid name %q longer than 100 bytes", s)
		}
		for _, r := range s {
			if r > 0x7e {
				t.Fatalf("valid name %q has a non-ASCII character", s)
			}
		}
	})
}
