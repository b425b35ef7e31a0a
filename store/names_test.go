package store

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"A", true},
		{"0", true},
		{"alice", true},
		{"My_Repo-2.0", true},
		{"a.b.c", true},
		{"a--", true},
		{"git", true},
		{"a.gitx", true},
		{"a.git-x", true},
		{strings.Repeat("a", 100), true},
		{strings.Repeat("a", 101), false},
		{"", false},
		{"_a", false},
		{"-a", false},
		{".a", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"a\\b", false},
		{"a b", false},
		{"a%2fb", false},
		{"a\x00", false},
		{"a\n", false},
		{"é", false},
		{"a.git", false},
		{"a.GIT", false},
		{"a.Git", false},
		{"a.git.git", false},
		{".git", false},
		{"a:b", false},
		{"a~1", false},
	} {
		if got := ValidName(tc.name); got != tc.ok {
			t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func TestCheckNameErrorIsInvalidAndBounded(t *testing.T) {
	long := strings.Repeat("x", 5000) + "/"
	err := CheckName("repository", long)
	if err == nil || !strings.Contains(err.Error(), "invalid") {
		t.Fatalf("CheckName = %v", err)
	}
	if len(err.Error()) > 400 {
		t.Fatalf("error echoes the whole input (%d bytes)", len(err.Error()))
	}
	if err := CheckName("repository", "fine"); err != nil {
		t.Fatalf("CheckName(fine) = %v", err)
	}
}

func TestValidBranchName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"master", true},
		{"main", true},
		{"release/1.0", true},
		{"feature/x-y_z", true},
		{"", false},
		{"HEAD", false},
		{"-x", false},
		{"/x", false},
		{"x/", false},
		{"x.", false},
		{"x.lock", false},
		{"a..b", false},
		{"a//b", false},
		{"a@{1}", false},
		{".hidden", false},
		{"a/.b", false},
		{"a b", false},
		{"a\tb", false},
		{"a~b", false},
		{"a^b", false},
		{"a:b", false},
		{"a?b", false},
		{"a*b", false},
		{"a[b", false},
		{"a\\b", false},
		{"a\x7f", false},
		{"a.lock/b", false},
		{"a/b.lock/c", false},
		{"a/.b/c", false},
		{"a.b/c.d", true},
		{strings.Repeat("b", 200), true},
		{strings.Repeat("b", 201), false},
	} {
		if got := ValidBranchName(tc.name); got != tc.ok {
			t.Errorf("ValidBranchName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

// TestBranchNameAgreesWithGit: the default-branch check accepts what git
// accepts as refs/heads/NAME and refuses the rest, each refusal with a
// reason.
func TestBranchNameAgreesWithGit(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git")
	}
	for _, b := range []string{
		"master", "a/b", "a.lock/b", "a/b.lock", "x.lockx", ".a", "a/.b", "a..b", "a.", "a/", "a//b",
		"a@{1}", "@", "a@b", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[", "a\\b", "é", "a.b/c.d",
	} {
		gitOK := exec.Command(git, "check-ref-format", "refs/heads/"+b).Run() == nil
		problem := BranchNameProblem(b)
		if (problem == "") != gitOK {
			t.Errorf("BranchNameProblem(%q) = %q, git accepts it: %v", b, problem, gitOK)
		}
	}
}

func TestDefaultBranchMessage(t *testing.T) {
	nr := NewRepo{Name: "r", Visibility: Restricted, DefaultBranch: "a.lock/b"}
	err := nr.Normalize()
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `component "a.lock" ends in ".lock"`) {
		t.Fatalf("Normalize(default_branch a.lock/b) = %v, want ErrInvalid naming the .lock component", err)
	}
}
