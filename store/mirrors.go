package store

import (
	"fmt"
	"strings"
	"time"
)

// MirrorStatus is the state of a mirror's synchronisation.
type MirrorStatus string

// Mirror statuses (docs/api.md §9).
const (
	MirrorOK      MirrorStatus = "ok"
	MirrorSyncing MirrorStatus = "syncing"
	MirrorError   MirrorStatus = "error"
)

// Valid reports whether s is a known status.
func (s MirrorStatus) Valid() bool { return s == MirrorOK || s == MirrorSyncing || s == MirrorError }

// Mirror intervals: the default and the bounds a client may choose within.
const (
	DefaultMirrorInterval = 10 * time.Minute
	MinMirrorInterval     = time.Minute
	MaxMirrorInterval     = 24 * time.Hour
)

// Mirror is a mirrored repository's link to its upstream. PrivateKey and
// WebhookSecret are secrets: the store keeps them sealed (Sealer) and
// returns them opened; they never go into logs or API answers other than
// those docs/api.md §9 names.
type Mirror struct {
	RepoID int64
	// URL is the upstream, ssh:// or scp-like (validated by the caller).
	URL string
	// PublicKey is the deploy key's public half (authorized_keys line).
	PublicKey string
	// PrivateKey is the deploy key (OpenSSH PEM).
	PrivateKey []byte
	// KnownHosts are the pinned host keys, in known_hosts form (one line
	// per key).
	KnownHosts string
	// HostKeyFingerprints are the pinned keys' SHA256 fingerprints.
	HostKeyFingerprints []string
	// HookID is the opaque, random id of the inbound webhook URL.
	HookID        string
	WebhookSecret string
	// Provider is the webhook provider, "" when detected per delivery.
	Provider string
	Interval time.Duration

	Status           MirrorStatus
	LastSyncAt       time.Time
	LastErrorCode    string // "" when the last sync succeeded
	LastErrorMessage string
	LastRewrite      string // the last history rewrite seen upstream, "" for none
	LastDeliveryAt   time.Time
	NextSyncAt       time.Time

	// SCMConfigID is the SCM configuration a provider-hosted repository
	// was created through (0: a plain mirror), Remote its repository there.
	SCMConfigID int64
	Remote      MirrorRemote
}

// MirrorRemote is the remote repository of a provider-hosted repository
// (docs/api.md §10): "" fields for a plain mirror.
type MirrorRemote struct {
	ID            string // stable on the provider across renames and transfers
	FullName      string
	HTMLURL       string
	DefaultBranch string
	// UserID is the user whose connection created it (0: unknown or
	// deleted).
	UserID int64
}

// NewMirror is a mirror to create with its repository (CreateMirror). The
// store generates the hook id.
type NewMirror struct {
	URL                 string
	PublicKey           string
	PrivateKey          []byte
	KnownHosts          string
	HostKeyFingerprints []string
	WebhookSecret       string
	Provider            string
	Interval            time.Duration // 0: DefaultMirrorInterval
}

// Normalize validates what the store itself relies on (ErrInvalid); the
// URL and keys are validated by the mirror package before.
func (nm *NewMirror) Normalize() error {
	if nm.Interval == 0 {
		nm.Interval = DefaultMirrorInterval
	}
	switch {
	case nm.URL == "" || len(nm.URL) > 2048:
		return Errorf(ErrInvalid, "mirror url is required (at most 2048 bytes)")
	case len(nm.PrivateKey) == 0 || nm.PublicKey == "":
		return Errorf(ErrInvalid, "mirror needs a deploy key")
	case strings.TrimSpace(nm.KnownHosts) == "":
		return Errorf(ErrInvalid, "mirror needs pinned host keys")
	case nm.WebhookSecret == "":
		return Errorf(ErrInvalid, "mirror needs a webhook secret")
	case nm.Interval < MinMirrorInterval || nm.Interval > MaxMirrorInterval:
		return Errorf(ErrInvalid, "mirror interval must be between %s and %s", MinMirrorInterval, MaxMirrorInterval)
	}
	return nil
}

// MirrorUpdate is a change of a mirror's synchronisation state
// (UpdateMirror).
type MirrorUpdate struct {
	// From, when set, guards the update: it applies only while the
	// mirror's status is From (else ErrConflict).
	From   MirrorStatus
	Status MirrorStatus
	// Synced marks a finished sync: LastSyncAt becomes the store's now,
	// and the error code and message are replaced by ErrorCode and
	// ErrorMessage ("" for a success).
	Synced       bool
	ErrorCode    string
	ErrorMessage string
	// Rewrite, when not "", replaces LastRewrite.
	Rewrite string
	// NextSyncAt, when not zero, replaces NextSyncAt.
	NextSyncAt time.Time
	// DefaultBranch, when not "", becomes the mirrored repository's
	// default branch (the upstream changed its HEAD), with an audit entry
	// (actor "mirror", action "repo.default_branch"). Only a mirror's
	// repository can be changed this way.
	DefaultBranch string
}

func (u MirrorUpdate) validate() error {
	if !u.Status.Valid() || u.From != "" && !u.From.Valid() {
		return fmt.Errorf("%w: unknown mirror status", ErrInvalid)
	}
	if u.DefaultBranch != "" {
		if p := BranchNameProblem(u.DefaultBranch); p != "" {
			return fmt.Errorf("%w: default branch: %s", ErrInvalid, p)
		}
	}
	return nil
}

// Validate checks the update's statuses (ErrInvalid).
func (u MirrorUpdate) Validate() error { return u.validate() }

// MirrorDeliveryRetention is how long RecordDelivery remembers a delivery
// id; older ones are pruned (providers retry within hours).
const MirrorDeliveryRetention = 7 * 24 * time.Hour

// FormatInterval writes a mirror interval in its shortest form, as
// time.ParseDuration reads it: "10m", "1h", "1h30m", "90s".
func FormatInterval(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
