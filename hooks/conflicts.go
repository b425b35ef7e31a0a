package hooks

import (
	"strings"

	"gitserver/store"
)

// Reasons for refusing what git itself would refuse after pre-receive, when
// only that ref would fail and the rest of the push would be applied.
const (
	ReasonBadName = "not a valid ref name"
)

// ReasonConflict is the reason for a directory/file conflict with other.
func ReasonConflict(other string) string {
	return "conflicts with " + other + " (a ref cannot be both a ref and a directory of refs)"
}

// ValidRefName reports whether git's receive-pack would accept name
// (check_refname_format on what follows "refs/", without one-level names):
// git refuses the others as "funny refname" after pre-receive, applying the
// rest of the push. The rules are store.ValidRefName's.
func ValidRefName(name string) bool { return store.ValidRefName(name) }

// CheckNames refuses ref names git would refuse.
func CheckNames(updates []RefUpdate) []Rejection {
	var out []Rejection
	for _, u := range updates {
		if !u.Deleted() && !ValidRefName(u.Ref) {
			out = append(out, Rejection{Ref: u.Ref, Reason: ReasonBadName})
		}
	}
	return out
}

// ExistingRefs lists the existing refs matching for-each-ref patterns (a
// pattern matches a ref of that name and the refs below it).
type ExistingRefs func(patterns []string) ([]string, error)

// ConflictPatterns are the for-each-ref patterns CheckConflicts needs: every
// created ref and each of its parents below refs/<kind>/.
func ConflictPatterns(updates []RefUpdate) []string {
	seen := map[string]bool{}
	var out []string
	for _, u := range updates {
		if !u.Created() || u.Deleted() {
			continue
		}
		for _, p := range append(parents(u.Ref), u.Ref) {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// parents are ref's proper prefixes at a '/' that could be refs
// (refs/heads/a for refs/heads/a/b), not refs/ or refs/heads/ themselves.
func parents(ref string) []string {
	var out []string
	for i := len("refs/"); i < len(ref); i++ {
		if ref[i] == '/' && strings.Count(ref[:i], "/") >= 2 {
			out = append(out, ref[:i])
		}
	}
	return out
}

// CheckConflicts refuses directory/file conflicts that git would find only
// when it updates the refs, i.e. after pre-receive, when it applies the rest
// of the push: a created ref that is a parent or a child of another created
// ref, or of an existing ref (existing lists them; see ConflictPatterns).
// An existing ref deleted by the same push still counts: git applies the
// commands one by one, in the client's order.
func CheckConflicts(updates []RefUpdate, existing []string) []Rejection {
	created := map[string]bool{}
	for _, u := range updates {
		if u.Created() && !u.Deleted() {
			created[u.Ref] = true
		}
	}
	conflict := map[string]string{} // created ref -> the ref it conflicts with
	note := func(ref, other string) {
		if _, ok := conflict[ref]; !ok {
			conflict[ref] = other
		}
	}
	for ref := range created {
		for _, p := range parents(ref) {
			if created[p] {
				note(ref, p)
				note(p, ref)
			}
		}
	}
	exists := map[string]bool{}
	for _, e := range existing {
		exists[e] = true
		for _, p := range parents(e) {
			if created[p] {
				note(p, e) // creating refs/heads/dir while refs/heads/dir/sub exists
			}
		}
	}
	for ref := range created {
		for _, p := range parents(ref) {
			if exists[p] {
				note(ref, p) // creating refs/heads/df/x while refs/heads/df exists
			}
		}
	}
	var out []Rejection
	for _, u := range updates {
		if other, ok := conflict[u.Ref]; ok && u.Created() && !u.Deleted() {
			out = append(out, Rejection{Ref: u.Ref, Reason: ReasonConflict(other)})
			delete(conflict, u.Ref)
		}
	}
	return out
}
