package store

import (
	"fmt"
	"strings"
	"time"
)

// AccountKind says whether an account is a user or an organisation.
type AccountKind string

// Account kinds.
const (
	KindUser AccountKind = "user"
	KindOrg  AccountKind = "org"
)

// Valid reports whether k is a known account kind.
func (k AccountKind) Valid() bool { return k == KindUser || k == KindOrg }

// Account is a user or an organisation. Organisations have no password and
// cannot sign in.
type Account struct {
	ID      int64
	Name    string
	Kind    AccountKind
	IsAdmin bool
	// Disabled is set by an admin: the account's password, tokens and SSH
	// keys are refused (its repositories' deploy keys are not).
	Disabled  bool
	CreatedAt time.Time
}

// Role is a user's role in an organisation; "" means not a member.
type Role string

// Org roles.
const (
	RoleOwner  Role = "owner"
	RoleMember Role = "member"
)

// Member is a user's membership of an organisation.
type Member struct {
	User Account
	Role Role
}

// Valid reports whether r is a role a member can hold (not "").
func (r Role) Valid() bool { return r == RoleOwner || r == RoleMember }

// Scope is what a token allows its holder (docs/api.md §4).
type Scope string

// Token scopes.
const (
	ScopeRepoRead  Scope = "repo:read"
	ScopeRepoWrite Scope = "repo:write"
	ScopeBuilds    Scope = "builds"
	ScopeAdmin     Scope = "admin"
)

// Valid reports whether s is a known token scope.
func (s Scope) Valid() bool {
	switch s {
	case ScopeRepoRead, ScopeRepoWrite, ScopeBuilds, ScopeAdmin:
		return true
	}
	return false
}

// JoinScopes is scopes, space-separated ("repo:read repo:write"), as the
// CLI, the audit log and the database write them.
func JoinScopes(scopes []Scope) string {
	ss := make([]string, len(scopes))
	for i, sc := range scopes {
		ss[i] = string(sc)
	}
	return strings.Join(ss, " ")
}

// DefaultScopes are given to a token created without explicit scopes.
var DefaultScopes = []Scope{ScopeRepoRead, ScopeRepoWrite}

// CleanScopes validates a token's requested scopes and removes duplicates;
// no scopes means DefaultScopes. An unknown scope is ErrInvalid.
func CleanScopes(scopes []Scope) ([]Scope, error) {
	if len(scopes) == 0 {
		scopes = DefaultScopes
	}
	seen := map[Scope]bool{}
	var clean []Scope
	for _, sc := range scopes {
		if !sc.Valid() {
			return nil, fmt.Errorf("%w: unknown scope %q (known: repo:read, repo:write, builds, admin)", ErrInvalid, Truncate(string(sc), 40))
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
	Scopes    []Scope
	CreatedAt time.Time
}

// HasScope reports whether the token carries scope sc.
func (t *Token) HasScope(sc Scope) bool {
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
