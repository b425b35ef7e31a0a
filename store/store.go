package store

import (
	"context"
	"time"
)

// Store is the whole persistence of gitserver: every role below, plus the
// database's life cycle and clock.
//
// Every method that takes audit ...AuditEntry appends those entries to the
// audit log in the same transaction as its change: both commit, or, when
// the method returns an error, neither does (see AuditEntry). Implementations (store/sqlite) are safe
// for concurrent use, and correct when several Store values (processes,
// nodes) share one database: every guard is in the database, none in the
// process. The contract, errors included, is tested by store/storetest.
type Store interface {
	Accounts
	Credentials
	Orgs
	Repos
	BuildQueue
	Versions
	Mirrors
	SCM
	Audit
	Secrets
	Sessions
	OIDC

	// Close releases the database.
	Close() error
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Now is the store's clock (the one leases and timestamps use).
	Now() time.Time
	// Changed returns a channel that is closed the next time a build
	// becomes claimable through this Store value (an enqueue or a lease
	// expiry it performed). Long-polling claimers wait on it. Whether
	// builds queued through another Store value on the same database close
	// it depends on the implementation (store/sqlite: no; store/postgres:
	// yes, through LISTEN/NOTIFY, best effort), so a claimer also polls.
	Changed() <-chan struct{}
}

// Accounts are users (and the account namespace organisations share).
type Accounts interface {
	// CountUsers returns the number of user accounts.
	CountUsers(ctx context.Context) (int, error)
	// CreateUser creates a user account with the given password. A bad
	// name or a password shorter than MinPasswordLen is ErrInvalid; a name
	// taken by any account (case-insensitively) is ErrExists.
	CreateUser(ctx context.Context, name, password string, admin bool, audit ...AuditEntry) (Account, error)
	// SetPassword replaces a user's password: ErrInvalid for a short
	// password, ErrNotFound when no user has that name.
	SetPassword(ctx context.Context, name, password string, audit ...AuditEntry) error
	// AccountByName finds a user or organisation by name
	// (case-insensitive), or ErrNotFound.
	AccountByName(ctx context.Context, name string) (Account, error)
	// AccountByID finds an account by id, or ErrNotFound.
	AccountByID(ctx context.Context, id int64) (Account, error)
	// UserByName finds a user (not an organisation) by name, or
	// ErrNotFound.
	UserByName(ctx context.Context, name string) (Account, error)
	// SetDisabled disables or re-enables user name and returns the
	// account: a disabled account's password, tokens and SSH keys are
	// refused by CheckPassword, CheckToken and the transports from the
	// next request on. ErrNotFound when no user has that name;
	// ErrConflict when disabling an enabled admin would leave no enabled
	// admin (checked in the same statement, so two concurrent disables of
	// the last two admins cannot both succeed).
	SetDisabled(ctx context.Context, name string, disabled bool, audit ...AuditEntry) (Account, error)
	// ListAccounts lists the accounts of kind (KindUser or KindOrg),
	// ordered by name case-insensitively (never nil).
	ListAccounts(ctx context.Context, kind AccountKind) ([]Account, error)
	// SetAdmin makes user name a site admin, or no longer one, and returns
	// the account. ErrNotFound when no user has that name; ErrConflict
	// when demoting an enabled admin would leave no enabled admin (checked
	// in the same statement, as SetDisabled's guard). A demoted admin's
	// tokens keep their scopes on paper, but the admin and builds scopes
	// count only while the account is an admin (gitserver/access).
	SetAdmin(ctx context.Context, name string, admin bool, audit ...AuditEntry) (Account, error)
}

// Credentials are what proves an identity: passwords, tokens, SSH keys
// (user and deploy keys) and builds' clone tokens.
type Credentials interface {
	// CheckPassword verifies a user's password. Any failure to
	// authenticate (a disabled account included) is ErrBadCredentials, and
	// takes the same time whether or not the user exists.
	CheckPassword(ctx context.Context, name, password string) (Account, error)
	// UserWithPasswordHash returns an account and its stored password hash
	// in one read; the hash changes whenever the password does (the
	// sign-in cache keys on it, and checks Account.Disabled). ErrNotFound
	// for an unknown id.
	UserWithPasswordHash(ctx context.Context, userID int64) (Account, string, error)
	// CreateToken creates a token for a user and returns its secret
	// (TokenPrefix...), which is not stored and cannot be shown again. An
	// unknown scope or a name over 100 bytes is ErrInvalid, an unknown user
	// ErrNotFound, and the builds or admin scope for a non-admin
	// ErrForbidden.
	CreateToken(ctx context.Context, userID int64, name string, scopes []Scope, audit ...AuditEntry) (string, Token, error)
	// CheckToken finds the token with the given secret; if name is not
	// empty the token must belong to that user, and the user must not be
	// disabled. Anything else is ErrBadCredentials.
	CheckToken(ctx context.Context, name, secret string) (Account, Token, error)
	// Tokens lists a user's tokens, oldest first (never nil); secrets are
	// not stored, so none is listed.
	Tokens(ctx context.Context, userID int64) ([]Token, error)
	// DeleteToken revokes token id of user userID, or ErrNotFound.
	DeleteToken(ctx context.Context, userID, id int64, audit ...AuditEntry) error
	// AddKey stores an SSH key (see NewKey.Normalize for ErrInvalid). A key
	// already stored anywhere (same fingerprint) is ErrExists.
	AddKey(ctx context.Context, nk NewKey, audit ...AuditEntry) (Key, error)
	// KeyByFingerprint finds a key by its SHA256 fingerprint, or
	// ErrNotFound.
	KeyByFingerprint(ctx context.Context, fp string) (Key, error)
	// UserKeys lists a user's keys, oldest first (never nil).
	UserKeys(ctx context.Context, userID int64) ([]Key, error)
	// DeployKeys lists a repository's deploy keys, oldest first (never
	// nil).
	DeployKeys(ctx context.Context, repoID int64) ([]Key, error)
	// DeleteUserKey removes key id of user userID, or ErrNotFound.
	DeleteUserKey(ctx context.Context, userID, id int64, audit ...AuditEntry) error
	// DeleteDeployKey removes deploy key id of repository repoID, or
	// ErrNotFound.
	DeleteDeployKey(ctx context.Context, repoID, id int64, audit ...AuditEntry) error
	// CheckCloneToken finds the build whose live lease the clone token
	// secret belongs to: the build must be running and its lease not
	// expired (a heartbeat extends both). Anything else is
	// ErrBadCredentials.
	CheckCloneToken(ctx context.Context, secret string) (BuildGrant, error)
}

// Orgs are organisations and their memberships.
type Orgs interface {
	// CreateOrg creates an organisation whose first owner is creatorID. A
	// bad name is ErrInvalid, a taken one ErrExists.
	CreateOrg(ctx context.Context, name string, creatorID int64, audit ...AuditEntry) (Account, error)
	// SetMembership adds a user to an organisation or changes their role
	// (RoleOwner, RoleMember; anything else is ErrInvalid). Demoting the
	// organisation's only owner is ErrConflict: an organisation always
	// keeps an owner, whatever the number of concurrent writers (the guard
	// is in the statement).
	SetMembership(ctx context.Context, orgID, userID int64, role Role, audit ...AuditEntry) error
	// RemoveMember removes a user from an organisation: ErrNotFound when
	// not a member, ErrConflict when they are its only owner (guarded as
	// SetMembership's demotion).
	RemoveMember(ctx context.Context, orgID, userID int64, audit ...AuditEntry) error
	// Role returns a user's role in an organisation, or "" (and no error)
	// if not a member.
	Role(ctx context.Context, orgID, userID int64) (Role, error)
	// Members lists an organisation's members and their roles, ordered by
	// name case-insensitively (never nil; ErrNotFound for no such
	// organisation).
	Members(ctx context.Context, orgID int64) ([]Member, error)
	// UserOrgs lists the organisations user userID is a member of (any
	// role), by name (never nil).
	UserOrgs(ctx context.Context, userID int64) ([]Account, error)
}

// Repos are the hosted repositories' records (their directories are the
// caller's).
type Repos interface {
	// CreateRepo records a new repository (see NewRepo.Normalize for
	// ErrInvalid). A name the owner already uses (case-insensitively) is
	// ErrExists.
	CreateRepo(ctx context.Context, nr NewRepo, audit ...AuditEntry) (Repo, error)
	// RepoByName finds owner/name (case-insensitive), or ErrNotFound.
	RepoByName(ctx context.Context, owner, name string) (Repo, error)
	// RepoByID finds a repository by id, or ErrNotFound.
	RepoByID(ctx context.Context, id int64) (Repo, error)
	// Repos lists every repository, ordered by id.
	Repos(ctx context.Context) ([]Repo, error)
	// DeleteRepo removes a repository's records (builds, versions, deploy
	// keys), or ErrNotFound.
	DeleteRepo(ctx context.Context, id int64, audit ...AuditEntry) error
	// UpdateRepo changes a repository's visibility and default branch
	// (see RepoUpdate; nil fields are unchanged) with the audit entries,
	// and returns it: ErrInvalid for a bad value, ErrNotFound for an
	// unknown id.
	UpdateRepo(ctx context.Context, id int64, u RepoUpdate, audit ...AuditEntry) (Repo, error)
}

// BuildQueue is the build queue: one build per pushed default-branch head,
// claimed by workers under a lease.
type BuildQueue interface {
	// BuildBase returns the commit a build queued now would follow: the
	// previous commit of the repository's queued build (which the new one
	// supersedes), else the commit of its newest build that was not
	// superseded, else oldHead (the branch's value before the push, "" for
	// a creation or when unknown). The caller counts the commits since it,
	// outside any transaction, and passes both to EnqueueBuild.
	BuildBase(ctx context.Context, repoID int64, oldHead string) (string, error)
	// EnqueueBuild queues a build of nb.Commit unless one exists for that
	// commit already (then it returns that build and false): whatever the
	// number of callers and Store values, a commit gets one build. A
	// queued, unclaimed build of the same repository is superseded. When
	// the repository's base (BuildBase) is no longer nb.PreviousCommit, it
	// queues nothing and returns ErrConflict: the caller counts again.
	EnqueueBuild(ctx context.Context, nb NewBuild) (Build, bool, error)
	// HasBuildFor reports whether any build exists for commit.
	HasBuildFor(ctx context.Context, repoID int64, commit string) (bool, error)
	// BuildByID returns one build, or ErrNotFound.
	BuildByID(ctx context.Context, id int64) (Build, error)
	// Builds lists a repository's builds, newest first, optionally only
	// those in one status (never nil).
	Builds(ctx context.Context, repoID int64, status BuildStatus, limit int) ([]Build, error)
	// CountBuilds counts the builds of every repository in status (the
	// queue's depth for BuildQueued).
	CountBuilds(ctx context.Context, status BuildStatus) (int, error)
	// ClaimBuild hands the oldest queued build to worker with a lease and
	// a fresh clone token (Build.CloneToken). A build is claimed once, by
	// one claimer, whatever the number of Store values. It first expires
	// leases (as ExpireLeases). ErrNotFound when nothing is queued.
	ClaimBuild(ctx context.Context, worker string, lease time.Duration) (Build, error)
	// ExpireLeases returns running builds whose lease ran out to the queue
	// (attempt + 1), folds them into a newer queued build of the same
	// repository, or fails them after MaxAttempts. It reports how many
	// went back to the queue.
	ExpireLeases(ctx context.Context) (int, error)
	// Heartbeat extends a running build's lease by its original length.
	// ErrNotFound for an unknown build; ErrConflict when the build is not
	// running or token is not its current lease token (a lease that
	// expired was re-queued first).
	Heartbeat(ctx context.Context, id int64, token string) (Build, error)
	// CompleteBuild records a running build's result (BuildSucceeded or
	// BuildFailed, else ErrInvalid), with the errors of Heartbeat.
	CompleteBuild(ctx context.Context, id int64, token string, status BuildStatus, message, logURL string) (Build, error)
}

// Versions are the published versions of repositories.
type Versions interface {
	// Publish records the next version (bump: BumpMajor, BumpMinor,
	// BumpPatch) of a repository for a succeeded build. A bad bump or
	// notes over MaxReleaseNotes are ErrInvalid, a build not of this
	// repository ErrNotFound, a build that did not succeed or is already
	// published ErrConflict. The caller pins the commit before calling.
	// Each audit entry's Detail is the version recorded
	// ("MAJOR.MINOR.PATCH", followed by the entry's own Detail, if any).
	Publish(ctx context.Context, repoID, buildID int64, bump, notes, by string, audit ...AuditEntry) (Version, error)
	// Versions lists a repository's versions, newest first (never nil).
	Versions(ctx context.Context, repoID int64) ([]Version, error)
	// PinnedCommits lists every published commit of a repository.
	PinnedCommits(ctx context.Context, repoID int64) ([]string, error)
}

// Mirrors are the links of mirrored repositories to their upstreams
// (docs/api.md §9). Their secrets (PrivateKey, WebhookSecret) are sealed
// at rest with the implementation's Sealer, bound to their row and column.
type Mirrors interface {
	// CreateMirror records a repository (as CreateRepo, with its errors)
	// and its mirror, with a fresh random hook id, in one transaction with
	// the audit entries. A bad NewMirror is ErrInvalid.
	CreateMirror(ctx context.Context, nr NewRepo, nm NewMirror, audit ...AuditEntry) (Repo, Mirror, error)
	// MirrorByRepo returns the mirror of a repository, or ErrNotFound
	// (the repository is not a mirror).
	MirrorByRepo(ctx context.Context, repoID int64) (Mirror, error)
	// MirrorByHookID finds the mirror of an inbound webhook id, or
	// ErrNotFound.
	MirrorByHookID(ctx context.Context, hookID string) (Mirror, error)
	// Mirrors lists every mirror, ordered by repository id (never nil).
	Mirrors(ctx context.Context) ([]Mirror, error)
	// DueMirrors lists up to limit mirrors whose NextSyncAt is at or
	// before now and that are not syncing, the most overdue first.
	DueMirrors(ctx context.Context, now time.Time, limit int) ([]Mirror, error)
	// UpdateMirror changes a mirror's synchronisation state (see
	// MirrorUpdate) and returns it. ErrNotFound for a repository without
	// a mirror, ErrConflict when u.From is set and the status is not
	// u.From, ErrInvalid for an unknown status.
	UpdateMirror(ctx context.Context, repoID int64, u MirrorUpdate) (Mirror, error)
	// RecordDelivery remembers an inbound webhook delivery id of hookID
	// and reports whether it is new: whatever the number of callers and
	// Store values, one id is new once. It also sets the mirror's
	// LastDeliveryAt and forgets ids older than MirrorDeliveryRetention.
	// ErrNotFound for an unknown hook id.
	RecordDelivery(ctx context.Context, hookID, deliveryID string) (bool, error)
}

// Audit is the append-only audit log.
type Audit interface {
	// Audit appends an audit event on its own. A change that a mutating
	// method makes should be audited through that method's audit entries
	// instead, in the change's transaction.
	Audit(ctx context.Context, actor, action, target, detail string) error
	// AuditEvents returns up to limit audit events, newest first.
	AuditEvents(ctx context.Context, limit int) ([]AuditEvent, error)
}
