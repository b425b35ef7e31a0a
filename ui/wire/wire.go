package wire

import (
	"encoding/json"
	"strings"
	"time"

	"gitserver/store"
)

// Time is a timestamp as the API writes it: RFC 3339 with nanoseconds, in
// UTC, or null when it is unset (the zero time).
type Time struct{ time.Time }

// MarshalJSON writes t in UTC, or null for the zero time.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format(time.RFC3339Nano))
}

// UnmarshalJSON reads what MarshalJSON writes (for clients and tests).
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	*t = Time{v}
	return nil
}

// User is the signed-in account (GET /api/v1/user).
type User struct {
	Admin     bool   `json:"admin"`
	CreatedAt Time   `json:"created_at"`
	Disabled  bool   `json:"disabled"`
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	// TokenScopes are the scopes of the token the request was signed
	// with; absent for any other credential.
	TokenScopes []store.Scope `json:"token_scopes,omitzero"`
}

// NewUser is the account u, as seen through tok (nil unless the request was
// signed with a token).
func NewUser(u store.Account, tok *store.Token) User {
	out := User{Admin: u.IsAdmin, CreatedAt: Time{u.CreatedAt}, Disabled: u.Disabled, ID: u.ID, Name: u.Name}
	if tok != nil {
		out.TokenScopes = append([]store.Scope{}, tok.Scopes...) // never nil: present
	}
	return out
}

// TokenInfo is a token as listed (GET /api/v1/user/tokens): never its
// secret.
type TokenInfo struct {
	CreatedAt Time          `json:"created_at"`
	ID        int64         `json:"id"`
	Name      string        `json:"name"`
	Scopes    []store.Scope `json:"scopes"`
}

// NewTokenInfo is t without its secret.
func NewTokenInfo(t store.Token) TokenInfo {
	return TokenInfo{CreatedAt: Time{t.CreatedAt}, ID: t.ID, Name: t.Name, Scopes: t.Scopes}
}

// Token is a token as created (POST /api/v1/user/tokens): the only object
// that carries its secret, shown this once.
type Token struct {
	CreatedAt Time          `json:"created_at"`
	ID        int64         `json:"id"`
	Name      string        `json:"name"`
	Scopes    []store.Scope `json:"scopes"`
	Token     string        `json:"token"`
}

// NewToken is the token t with its secret.
func NewToken(t store.Token, secret string) Token {
	return Token{CreatedAt: Time{t.CreatedAt}, ID: t.ID, Name: t.Name, Scopes: t.Scopes, Token: secret}
}

// Key is an SSH key: a user's, or a repository's deploy key.
type Key struct {
	CreatedAt   Time   `json:"created_at"`
	Fingerprint string `json:"fingerprint"`
	ID          int64  `json:"id"`
	Key         string `json:"key"`
	// ReadOnly is set for deploy keys only.
	ReadOnly *bool  `json:"read_only,omitempty"`
	Title    string `json:"title"`
}

// NewKey is the key k.
func NewKey(k store.Key) Key {
	out := Key{CreatedAt: Time{k.CreatedAt}, Fingerprint: k.Fingerprint, ID: k.ID, Key: k.PublicKey, Title: k.Title}
	if k.RepoID != 0 {
		ro := k.ReadOnly
		out.ReadOnly = &ro
	}
	return out
}

// NewKeys are keys, as a list that is never null.
func NewKeys(keys []store.Key) []Key {
	out := make([]Key, 0, len(keys))
	for _, k := range keys {
		out = append(out, NewKey(k))
	}
	return out
}

// Org is an organisation (POST /api/v1/orgs).
type Org struct {
	CreatedAt Time   `json:"created_at"`
	ID        int64  `json:"id"`
	Name      string `json:"name"`
}

// NewOrg is the organisation org.
func NewOrg(org store.Account) Org {
	return Org{CreatedAt: Time{org.CreatedAt}, ID: org.ID, Name: org.Name}
}

// Membership is a user's role in an organisation
// (PUT /api/v1/orgs/{org}/members/{user}).
type Membership struct {
	Org  string     `json:"org"`
	Role store.Role `json:"role"`
	User string     `json:"user"`
}

// NewMembership is user's role in org.
func NewMembership(org, user string, role store.Role) Membership {
	return Membership{Org: org, Role: role, User: user}
}

// Repo is a repository.
type Repo struct {
	CloneURLHTTP  string           `json:"clone_url_http"`
	CloneURLSSH   string           `json:"clone_url_ssh"` // "" when SSH is off
	CreatedAt     Time             `json:"created_at"`
	DefaultBranch string           `json:"default_branch"`
	FullName      string           `json:"full_name"`
	ID            int64            `json:"id"`
	Mirror        *Mirror          `json:"mirror,omitempty"` // only for mirrored repositories
	Name          string           `json:"name"`
	Owner         string           `json:"owner"`
	Remote        *Remote          `json:"remote,omitempty"` // only for provider-hosted repositories
	Visibility    store.Visibility `json:"visibility"`
}

// Remote is the repository on the provider of a provider-hosted
// repository (docs/api.md §10).
type Remote struct {
	DefaultBranch string `json:"default_branch"`
	FullName      string `json:"full_name"`
	HTMLURL       string `json:"html_url"`
	ID            string `json:"id"`
}

// NewRemote is mirror m's remote repository, nil for a plain mirror.
func NewRemote(m store.Mirror) *Remote {
	if m.SCMConfigID == 0 || m.Remote.ID == "" {
		return nil
	}
	return &Remote{DefaultBranch: m.Remote.DefaultBranch, FullName: m.Remote.FullName, HTMLURL: m.Remote.HTMLURL, ID: m.Remote.ID}
}

// Repair is the answer of POST /api/v1/repos/{owner}/{name}/mirror/repair:
// what was found upstream and done.
type Repair struct {
	DeployKey string  `json:"deploy_key"` // "present" or "added"
	Remote    *Remote `json:"remote"`
	Webhook   string  `json:"webhook"` // "present", "added" or "none" (polled)
}

// Mirror is the state of a mirrored repository (docs/api.md §9): on its
// repo object, and the answer of GET /api/v1/repos/{owner}/{name}/mirror.
// It holds no secret.
type Mirror struct {
	DeployKey           string             `json:"deploy_key"`
	HostKeyFingerprints []string           `json:"host_key_fingerprints"`
	Interval            string             `json:"interval"`
	LastDeliveryAt      Time               `json:"last_delivery_at"`
	LastError           *MirrorError       `json:"last_error"`
	LastRewrite         string             `json:"last_rewrite"`
	LastSyncAt          Time               `json:"last_sync_at"`
	Status              store.MirrorStatus `json:"status"`
	URL                 string             `json:"url"`
	WebhookURL          string             `json:"webhook_url"`
}

// MirrorError is a mirror's last sync error.
type MirrorError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// MirrorWebhook is the inbound webhook of a mirror, with its secret (GET
// /api/v1/repos/{owner}/{name}/mirror/webhook, owners only).
type MirrorWebhook struct {
	Secret string `json:"secret"`
	URL    string `json:"url"`
}

// WebhookURL is the inbound webhook URL of hook id on the server at
// baseURL.
func WebhookURL(baseURL, hookID string) string {
	return strings.TrimRight(baseURL, "/") + "/hooks/scm/" + hookID
}

// NewMirror is mirror m of a repository on the server at baseURL.
func NewMirror(m store.Mirror, baseURL string) *Mirror {
	out := &Mirror{
		DeployKey: m.PublicKey, HostKeyFingerprints: m.HostKeyFingerprints, Interval: store.FormatInterval(m.Interval),
		LastDeliveryAt: Time{m.LastDeliveryAt}, LastRewrite: m.LastRewrite, LastSyncAt: Time{m.LastSyncAt},
		Status: m.Status, URL: m.URL, WebhookURL: WebhookURL(baseURL, m.HookID),
	}
	if out.HostKeyFingerprints == nil {
		out.HostKeyFingerprints = []string{}
	}
	if m.LastErrorCode != "" {
		out.LastError = &MirrorError{Code: m.LastErrorCode, Message: m.LastErrorMessage}
	}
	return out
}

// NewRepo is the repository rp with its clone URLs (see HTTPCloneURL and
// SSHCloneURL).
func NewRepo(rp store.Repo, cloneHTTP, cloneSSH string) Repo {
	return Repo{
		CloneURLHTTP: cloneHTTP, CloneURLSSH: cloneSSH, CreatedAt: Time{rp.CreatedAt},
		DefaultBranch: rp.DefaultBranch, FullName: rp.FullName(), ID: rp.ID, Name: rp.Name, Owner: rp.Owner,
		Visibility: rp.Visibility,
	}
}

// HTTPCloneURL is the smart-HTTP clone URL of the repository fullName
// ("owner/name") on the server at baseURL (--base-url).
func HTTPCloneURL(baseURL, fullName string) string {
	return strings.TrimRight(baseURL, "/") + "/git/" + fullName + ".git"
}

// SSHCloneURL is the SSH clone URL of the repository fullName on the SSH
// server at sshURL ("ssh://git@host:port"), or "" when SSH is off
// (sshURL "").
func SSHCloneURL(sshURL, fullName string) string {
	if sshURL == "" {
		return ""
	}
	return sshURL + "/" + fullName + ".git"
}

// Build is a build (docs/api.md §7): what GET /api/v1/builds/{id} returns,
// and what the outbound build notice carries. It holds no secret; a claim
// answers a Claim.
type Build struct {
	Attempt     int    `json:"attempt"`
	Branch      string `json:"branch"`
	CloneURL    string `json:"clone_url"`
	Commit      string `json:"commit"`
	CommitCount int    `json:"commit_count"`
	FinishedAt  Time   `json:"finished_at"`
	ID          int64  `json:"id"`
	// LeaseExpiresAt is present only while the build is running.
	LeaseExpiresAt *Time             `json:"lease_expires_at,omitempty"`
	LogURL         string            `json:"log_url"`
	Message        string            `json:"message"`
	PreviousCommit string            `json:"previous_commit"`
	PushedBy       string            `json:"pushed_by"`
	QueuedAt       Time              `json:"queued_at"`
	Repo           string            `json:"repo"` // owner/name
	StartedAt      Time              `json:"started_at"`
	Status         store.BuildStatus `json:"status"`
	Worker         string            `json:"worker"`
}

// NewBuild is the build b; cloneURL is its repository's HTTPCloneURL.
func NewBuild(b store.Build, cloneURL string) Build {
	out := Build{
		Attempt: b.Attempt, Branch: b.Branch, CloneURL: cloneURL, Commit: b.Commit, CommitCount: b.CommitCount,
		FinishedAt: Time{b.FinishedAt}, ID: b.ID, LogURL: b.LogURL, Message: b.Message,
		PreviousCommit: b.PreviousCommit, PushedBy: b.PushedBy, QueuedAt: Time{b.QueuedAt}, Repo: b.Repo,
		StartedAt: Time{b.StartedAt}, Status: b.Status, Worker: b.Worker,
	}
	if b.Status == store.BuildRunning {
		out.LeaseExpiresAt = &Time{b.LeaseExpiresAt}
	}
	return out
}

// Claim is a claimed build (POST /api/v1/builds/claim): the build, and the
// two secrets only its claimer is told.
type Claim struct {
	Build
	// CloneToken is the read-only git credential for the build's
	// repository, valid while the lease lives.
	CloneToken string `json:"clone_token"`
	// LeaseToken proves the lease in heartbeats and the completion.
	LeaseToken string `json:"lease_token"`
}

// NewClaim is the claimed build b (store.BuildQueue.ClaimBuild's answer).
func NewClaim(b store.Build, cloneURL string) Claim {
	return Claim{Build: NewBuild(b, cloneURL), CloneToken: b.CloneToken, LeaseToken: b.LeaseToken}
}

// Version is a published version (docs/api.md §8).
type Version struct {
	BuildID      int64  `json:"build_id"`
	Commit       string `json:"commit"`
	PublishedAt  Time   `json:"published_at"`
	PublishedBy  string `json:"published_by"`
	ReleaseNotes string `json:"release_notes"`
	Version      string `json:"version"` // MAJOR.MINOR.PATCH
}

// NewVersion is the version v.
func NewVersion(v store.Version) Version {
	return Version{
		BuildID: v.BuildID, Commit: v.Commit, PublishedAt: Time{v.PublishedAt}, PublishedBy: v.PublishedBy,
		ReleaseNotes: v.ReleaseNotes, Version: v.String(),
	}
}
