package store

import (
	"context"
	"time"
)

// OIDCLink ties a user account to an identity of an OpenID Connect
// provider: the ID token's issuer and subject (docs/api.md §12). The link
// also keeps the latest refresh token (sealed at rest), with which the
// server asks the provider, from time to time, whether it still accepts
// the user.
type OIDCLink struct {
	UserID  int64
	Issuer  string
	Subject string
	// RefreshToken is the provider's latest refresh token ("" when it gave
	// none).
	RefreshToken string
	// Generation counts the refresh-token writes: ClaimOIDCRefresh hands it
	// out and SetOIDCRefreshToken writes only over the generation claimed.
	Generation int64
	// RefreshedAt is the last sign-in or refresh claim.
	RefreshedAt time.Time
	CreatedAt   time.Time
}

// OIDCState is a pending OpenID Connect sign-in: the state sent to the
// provider (stored as its hash), the nonce the ID token must carry, the
// PKCE verifier (sealed), where to go after sign-in, and until when it may
// be completed.
type OIDCState struct {
	State     string
	Nonce     string
	Verifier  string
	ReturnTo  string
	ExpiresAt time.Time
}

// NewOIDCUser is what OIDC sign-in creates or links: the link, and for a
// creation the account's name and admin flag.
type NewOIDCUser struct {
	Name         string
	Admin        bool
	Issuer       string
	Subject      string
	RefreshToken string
}

// OIDC is the accounts' links to an OpenID Connect provider and the
// pending sign-ins.
type OIDC interface {
	// CreateOIDCState stores a pending sign-in; expired ones are pruned. An
	// empty state, nonce or verifier is ErrInvalid; a state stored already
	// ErrExists.
	CreateOIDCState(ctx context.Context, st OIDCState) error
	// ConsumeOIDCState removes and returns the pending sign-in of state:
	// whatever the number of callers and Store values, a state is consumed
	// once. An unknown, already consumed or expired state is ErrNotFound.
	ConsumeOIDCState(ctx context.Context, state string) (OIDCState, error)

	// OIDCUser finds the user linked to issuer and subject, and the link:
	// ErrNotFound when there is none.
	OIDCUser(ctx context.Context, issuer, subject string) (Account, OIDCLink, error)
	// OIDCLinkOf returns user userID's link, or ErrNotFound (a local
	// account).
	OIDCLinkOf(ctx context.Context, userID int64) (OIDCLink, error)
	// CreateOIDCUser creates a user account without a password (password
	// sign-in refuses it until a password is set) and its link, in one
	// transaction with the audit entries. A bad name is ErrInvalid; a name
	// taken by any account, or an issuer and subject linked already,
	// ErrExists.
	CreateOIDCUser(ctx context.Context, nu NewOIDCUser, audit ...AuditEntry) (Account, error)
	// LinkOIDCUser links the existing user nu.Name (its password, tokens
	// and keys unchanged) to nu.Issuer and nu.Subject: ErrNotFound when no
	// user has that name, ErrExists when the user or the identity is
	// linked already. nu.Admin is ignored.
	LinkOIDCUser(ctx context.Context, nu NewOIDCUser, audit ...AuditEntry) (Account, error)
	// OIDCSignedIn records a sign-in of a linked user: the new refresh
	// token (kept when ""), RefreshedAt now, and, when admin is not nil,
	// the admin flag. Demoting the last enabled admin is ErrConflict
	// (nothing changes; guarded as SetDisabled). ErrNotFound when userID
	// has no link.
	OIDCSignedIn(ctx context.Context, userID int64, refreshToken string, admin *bool, audit ...AuditEntry) (Account, error)
	// ClaimOIDCRefresh claims the refresh of user userID's session with
	// the provider when its last claim (or sign-in) is older than
	// olderThan: it sets RefreshedAt to now and returns the link (with its
	// refresh token) and true. Of concurrent claimers on any number of
	// Store values one wins; the others (and any caller when the last
	// claim is recent) get false. ErrNotFound when userID has no link.
	ClaimOIDCRefresh(ctx context.Context, userID int64, olderThan time.Duration) (OIDCLink, bool, error)
	// OIDCRefreshesDue lists up to limit users (ids, oldest claim first)
	// that are linked, not disabled, and whose last claim or sign-in is
	// older than olderThan: those a sweep should ClaimOIDCRefresh.
	OIDCRefreshesDue(ctx context.Context, olderThan time.Duration, limit int) ([]int64, error)
	// SetOIDCRefreshToken replaces the refresh token a claim returned, if
	// no other write came since (generation is the claim's Generation):
	// it reports whether it wrote.
	SetOIDCRefreshToken(ctx context.Context, userID, generation int64, refreshToken string) (bool, error)
}
