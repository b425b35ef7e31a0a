package store

import (
	"fmt"
	"time"
)

// Account kinds.
const (
	KindUser = "user"
	KindOrg  = "org"
)

// Account is a user or an organisation. Organisations have no password and
// cannot sign in.
type Account struct {
	ID      int64
	Name    string
	Kind    string
	IsAdmin bool
	// Disabled is set by an admin: the account's password, tokens and SSH
	// keys are refused (its repositories' deploy keys are not).
	Disabled  bool
	CreatedAt time.Time
}

// Org roles.
const (
	RoleOwner  = "owner"
	RoleMember = "member"
)

// Token scopes.
const (
	ScopeRepoRead  = "repo:read"
	ScopeRepoWrite = "repo:write"
	ScopeBuilds    = "builds"
	ScopeAdmin     = "admin"
)

// ValidScope reports whether s is a known token scope.
func ValidScope(s string) bool {
	switch s {
	case ScopeRepoRead, ScopeRepoWrite, ScopeBuilds, ScopeAdmin:
		return true
	}
	return false
}

// DefaultScopes are given to a token created without explicit scopes.
var DefaultScopes = []string{ScopeRepoRead, ScopeRepoWrite}

// CleanScopes validates a token's requested scopes and removes duplicates;
// no scopes means DefaultScopes. An unknown scope is ErrInvalid.
func CleanScopes(scopes []string) ([]string, error) {
	if len(scopes) == 0 {
		scopes = DefaultScopes
	}
	seen := map[string]bool{}
	var clean []string
	for _, sc := range scopes {
		if !ValidScope(sc) {
			return nil, fmt.Errorf("%w: unknown scope %q (known: repo:read, repo:write, builds, admin)", ErrInvalid, Truncate(sc, 40))
		}
		if !seen[sc] {
			seen[sc] = true
			clean = append(clean, sc)
		}
	}
	return clean, nil
}

// Token is an API/git access token. The secret itself is never stored.
type Token struct {
	ID        int64
	UserID    int64
	Name      string
	Scopes    []string
	CreatedAt time.Time
}

// HasScope reports whether the token carries scope sc.
func (t *Token) HasScope(sc string) bool {
	for _, s := range t.Scopes {
		if s == sc {
			return true
		}
	}
	return false
}

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 8

// TokenPrefix starts every token so that secret scanners can recognise it.
const TokenPrefix = "gst_"

// CloneTokenPrefix starts every clone token, so that authenticators can tell
// one from an account token (TokenPrefix) without a lookup, and secret
// scanners can recognise it.
const CloneTokenPrefix = "gsc_"

// AuditEvent records who did what, when.
type AuditEvent struct {
	ID     int64
	At     time.Time
	Actor  string
	Action string
	Target string
	Detail string
}

// AuditEntry is an audit event to record together with a change: the
// mutating methods of a Store take any number of them and append them to the
// audit log in the change's own transaction, so that no change commits
// without its audit events and no event is recorded for a change that did
// not happen.
type AuditEntry struct {
	Actor  string // who: a user's name, "cli", "system", ...
	Action string // what: "repo.create", "version.publish", ...
	Target string // on what: "owner/name", a user's name, ...
	Detail string
}
