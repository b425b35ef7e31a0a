package store

import (
	"fmt"
	"strings"
)

// RefNameProblem says why git would refuse the full ref name name
// (check_refname_format, as receive-pack applies it to what follows
// "refs/", without one-level names), or returns "" if git accepts it.
// It is the one Go copy of git's rules: the push policy (hooks) and the
// default-branch validation both use it.
func RefNameProblem(name string) string {
	rest, ok := strings.CutPrefix(name, "refs/")
	switch {
	case !ok:
		return "it does not start with refs/"
	case !strings.Contains(rest, "/"):
		return "it has a single component after refs/"
	case strings.HasSuffix(name, "."):
		return `it ends in "."`
	case strings.Contains(name, ".."):
		return `it contains ".."`
	case strings.Contains(name, "@{"):
		return `it contains "@{"`
	}
	for _, c := range strings.Split(rest, "/") {
		switch {
		case c == "":
			return "it has an empty component (a leading, trailing or doubled /)"
		case c[0] == '.':
			return fmt.Sprintf("component %q starts with \".\"", Truncate(c, 60))
		case strings.HasSuffix(c, ".lock"):
			return fmt.Sprintf("component %q ends in \".lock\"", Truncate(c, 60))
		}
	}
	for i := 0; i < len(name); i++ {
		switch b := name[i]; {
		case b < 0x20 || b == 0x7f:
			return "it contains a control character"
		case strings.IndexByte(" ~^:?*[\\", b) >= 0:
			return fmt.Sprintf("it contains %q", string(b))
		}
	}
	return ""
}

// ValidRefName reports whether git's receive-pack would accept the full
// ref name name (see RefNameProblem).
func ValidRefName(name string) bool { return RefNameProblem(name) == "" }

// BranchNameProblem says why b is not acceptable as a branch name (a
// repository's default branch), or returns "": git's ref-name rules for
// refs/heads/b, and what git refuses for a branch besides (a leading "-",
// "HEAD"), at most 200 bytes.
func BranchNameProblem(b string) string {
	switch {
	case b == "":
		return "it is empty"
	case len(b) > 200:
		return "it is longer than 200 bytes"
	case b == "HEAD":
		return `"HEAD" is not a branch name`
	case strings.HasPrefix(b, "-"):
		return `it starts with "-"`
	}
	p := RefNameProblem("refs/heads/" + b)
	if p == "it has an empty component (a leading, trailing or doubled /)" {
		return "it has an empty path component (a leading, trailing or doubled /)"
	}
	return p
}

// ValidBranchName reports whether b is acceptable as a branch name (see
// BranchNameProblem).
func ValidBranchName(b string) bool { return BranchNameProblem(b) == "" }
