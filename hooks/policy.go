package hooks

import "strings"

// ReservedPrefix is the server's own ref namespace (version pins). Clients
// never see it and can never update it.
const ReservedPrefix = "refs/gitserver/"

// Rejection reasons, as shown to the pusher.
const (
	ReasonNonFastForward = "non-fast-forward update would rewrite history"
	ReasonDeleteDefault  = "deleting the default branch is not allowed"
	ReasonTagMove        = "moving a tag would rewrite history"
	ReasonTagDelete      = "deleting a tag would rewrite history"
	ReasonReserved       = "refs/gitserver/ is reserved for the server"
	ReasonCheckFailed    = "could not verify ancestry"
)

// MirrorReason is the reason every update of a mirror is refused with.
func MirrorReason(upstream string) string {
	return "this repository mirrors " + upstream + "; push there"
}

// Rejection is a refused ref update.
type Rejection struct {
	Ref    string
	Reason string
}

// String is the line shown to the pusher (git prefixes it with "remote: ").
func (r Rejection) String() string { return "rejected " + r.Ref + ": " + r.Reason }

// Ancestry answers whether old is an ancestor of new (a fast-forward).
// An error means it could not tell; the update is then refused.
type Ancestry func(old, new string) (bool, error)

// Check applies docs/api.md §6 to a push. It returns one rejection per refused
// update; the push is accepted only if the result is empty. Refs outside
// refs/heads/ and refs/tags/ (refs/notes/..., say) follow the branch rules.
func Check(updates []RefUpdate, defaultBranch string, isAncestor Ancestry) []Rejection {
	var out []Rejection
	defaultRef := "refs/heads/" + defaultBranch
	for _, u := range updates {
		reason := ""
		switch {
		case strings.HasPrefix(u.Ref, ReservedPrefix):
			reason = ReasonReserved
		case strings.HasPrefix(u.Ref, "refs/tags/"):
			switch {
			case u.Deleted():
				reason = ReasonTagDelete
			case !u.Created() && u.Old != u.New:
				reason = ReasonTagMove
			}
		case u.Deleted():
			if u.Ref == defaultRef {
				reason = ReasonDeleteDefault
			}
		case u.Created(), u.Old == u.New:
		default:
			ok, err := isAncestor(u.Old, u.New)
			switch {
			case err != nil:
				reason = ReasonCheckFailed
			case !ok:
				reason = ReasonNonFastForward
			}
		}
		if reason != "" {
			out = append(out, Rejection{Ref: u.Ref, Reason: reason})
		}
	}
	return out
}
