package sqlite

import (
	"context"

	"gitserver/store"
)

// AccessTo resolves the facts for p and r from the database and applies
// Decide.
func (s *DB) AccessTo(ctx context.Context, p store.Principal, r store.Repo, anonymousRead bool) (store.Access, error) {
	f := store.Facts{AnonymousRead: anonymousRead}
	if p.User != nil && r.OwnerKind == store.KindOrg {
		role, err := s.Role(ctx, r.OwnerID, p.User.ID)
		if err != nil {
			return store.NoAccess, err
		}
		f.Member = role != ""
	}
	return store.Decide(p, r, f), nil
}
