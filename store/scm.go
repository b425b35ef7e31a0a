package store

import (
	"context"
	"time"
)

// SCMConfig is an external SCM an admin configured (docs/api.md §10).
// ClientSecret and AccessToken are secrets: the store keeps them sealed
// (Sealer) and returns them opened; they never go into logs or API
// answers. Kind and Mode hold the strings of gitserver/scm's Kind and Mode
// (the store does not interpret them, except that the pair (WebsiteURL,
// ProjectKey) is unique among configurations of kind "bitbucket-server").
type SCMConfig struct {
	ID            int64
	Name          string
	Kind          string
	Mode          string
	WebsiteURL    string
	APIURL        string
	SSHURL        string
	ClientID      string
	ClientSecret  string
	ProjectKey    string
	AccessToken   string
	AllowedOwners []string // empty: every owner the user may create under
	// KnownHosts are the pinned host keys of SSHURL (known_hosts lines),
	// HostKeyFingerprints their SHA256 fingerprints.
	KnownHosts          string
	HostKeyFingerprints []string
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// SCMBitbucketServer is the kind whose (WebsiteURL, ProjectKey) is unique.
const SCMBitbucketServer = "bitbucket-server"

// SCMConnection is a user's connection to an SCM configuration: the
// tokens the server acts with on the user's behalf. AccessToken and
// RefreshToken are sealed at rest.
type SCMConnection struct {
	UserID       int64
	ConfigID     int64
	Login        string // the user's login on the provider
	AccessToken  string
	RefreshToken string // "" when the provider issued none (or a personal access token)
	TokenType    string
	Expiry       time.Time // zero: does not expire
	// Version changes with every write of the tokens; a refresh writes only
	// over the version it read (UpdateSCMToken).
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// SCMToken is a refreshed token (UpdateSCMToken).
type SCMToken struct {
	AccessToken  string
	RefreshToken string
	TokenType    string
	Expiry       time.Time
}

// OAuthState is a pending OAuth authorization: the state sent to the
// provider (stored as its hash), the PKCE verifier (sealed), who asked and
// for which configuration, where to return, and until when it may be used.
type OAuthState struct {
	State     string
	UserID    int64
	ConfigID  int64
	Verifier  string
	ReturnTo  string
	ExpiresAt time.Time
}

// SCM holds the SCM configurations, the users' connections and the
// pending OAuth states.
type SCM interface {
	// CreateSCMConfig records a configuration (validated by the caller)
	// and returns it with its id. A name taken (case-insensitively), or
	// for kind "bitbucket-server" a (WebsiteURL, ProjectKey) pair taken, is
	// ErrExists.
	CreateSCMConfig(ctx context.Context, c SCMConfig, audit ...AuditEntry) (SCMConfig, error)
	// UpdateSCMConfig replaces every field of configuration c.ID but its
	// id and creation time, with the errors of CreateSCMConfig, or
	// ErrNotFound.
	UpdateSCMConfig(ctx context.Context, c SCMConfig, audit ...AuditEntry) (SCMConfig, error)
	// SCMConfigByID returns one configuration, or ErrNotFound.
	SCMConfigByID(ctx context.Context, id int64) (SCMConfig, error)
	// SCMConfigs lists every configuration, ordered by id (never nil).
	SCMConfigs(ctx context.Context) ([]SCMConfig, error)
	// SCMConfigRepos lists the repositories whose mirror was created
	// through configuration id, ordered by id (never nil).
	SCMConfigRepos(ctx context.Context, id int64) ([]Repo, error)
	// LinkMirrorSCMConfig records that repository repoID's mirror belongs
	// to configuration configID (0 clears the link). ErrNotFound for a
	// repository without a mirror or an unknown configuration.
	LinkMirrorSCMConfig(ctx context.Context, repoID, configID int64, audit ...AuditEntry) error
	// SetMirrorRemote records repository repoID's mirror as hosted on
	// configuration configID with remote repository r (and links it as
	// LinkMirrorSCMConfig does, with its errors).
	SetMirrorRemote(ctx context.Context, repoID, configID int64, r MirrorRemote, audit ...AuditEntry) error
	// RelocateMirror records that a provider-hosted repository's remote
	// moved (renamed or transferred): its fetch URL (unchanged when "")
	// and remote columns become url and r. ErrNotFound for a repository
	// without a mirror.
	RelocateMirror(ctx context.Context, repoID int64, url string, r MirrorRemote, audit ...AuditEntry) error
	// DeleteSCMConfig removes a configuration with its connections and
	// pending states. While repositories use it, it is ErrConflict naming
	// them, unless force: then their mirrors become plain mirrors (the
	// link is cleared) in the same transaction. It returns the
	// repositories that were unlinked. ErrNotFound for an unknown id.
	DeleteSCMConfig(ctx context.Context, id int64, force bool, audit ...AuditEntry) ([]Repo, error)

	// PutSCMConnection creates or replaces user c.UserID's connection to
	// configuration c.ConfigID. ErrNotFound for an unknown user or
	// configuration.
	PutSCMConnection(ctx context.Context, c SCMConnection, audit ...AuditEntry) (SCMConnection, error)
	// SCMConnection returns a user's connection to a configuration, or
	// ErrNotFound.
	SCMConnection(ctx context.Context, userID, configID int64) (SCMConnection, error)
	// SCMConnections lists a user's connections, ordered by configuration
	// id (never nil).
	SCMConnections(ctx context.Context, userID int64) ([]SCMConnection, error)
	// UpdateSCMToken replaces a connection's tokens after a refresh, only
	// if its Version is still version (else ErrConflict: another request
	// refreshed first; read the connection again). ErrNotFound when the
	// connection is gone.
	UpdateSCMToken(ctx context.Context, userID, configID, version int64, tok SCMToken) (SCMConnection, error)
	// DeleteSCMConnection removes a user's connection, or ErrNotFound.
	DeleteSCMConnection(ctx context.Context, userID, configID int64, audit ...AuditEntry) error

	// CreateOAuthState stores a pending authorization; expired ones are
	// pruned. An empty state or verifier is ErrInvalid; an unknown user or
	// configuration ErrNotFound.
	CreateOAuthState(ctx context.Context, st OAuthState) error
	// ConsumeOAuthState removes and returns the pending authorization of
	// state: whatever the number of callers and Store values, a state is
	// consumed once. An unknown, already consumed or expired state is
	// ErrNotFound.
	ConsumeOAuthState(ctx context.Context, state string) (OAuthState, error)
}
