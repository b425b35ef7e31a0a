package scm

import (
	"context"
	"errors"
	"time"

	"golang.org/x/oauth2"
)

// Kind is an SCM configuration's provider.
type Kind string

// The provider kinds (docs/api.md §10).
const (
	GitHub          Kind = "github" // github.com and GitHub Enterprise Server
	GitLab          Kind = "gitlab"
	BitbucketCloud  Kind = "bitbucket-cloud"
	BitbucketServer Kind = "bitbucket-server" // Bitbucket Data Center
	Gitea           Kind = "gitea"            // also Forgejo
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	switch k {
	case GitHub, GitLab, BitbucketCloud, BitbucketServer, Gitea:
		return true
	}
	return false
}

// Mode is how a Bitbucket Server configuration learns of pushes.
type Mode string

// Modes (only Bitbucket Server has a choice; every other kind is ModeWebhook).
const (
	ModeWebhook Mode = "webhook" // build on check-in: the provider calls our webhook
	ModeAPI     Mode = "api"     // the server polls the default branch through the REST API
)

// Config is what an admin saves: where the provider is and the
// credentials this server uses with it. Secrets (ClientSecret,
// AccessToken) are plaintext here; the store seals them.
type Config struct {
	Kind       Kind
	Mode       Mode
	WebsiteURL string // e.g. https://github.com, https://gitea.example.com
	APIURL     string // e.g. https://api.github.com, https://gitea.example.com/api/v1
	SSHURL     string // e.g. ssh://git@github.com:22 (its host keys are pinned when saved)
	// OAuth application (every kind but Bitbucket Server).
	ClientID     string
	ClientSecret string
	// Bitbucket Server: the project repositories are created in, and the
	// personal access token of the account that creates them.
	ProjectKey  string
	AccessToken string
}

// Owner is an account a user may create repositories under: the user
// themselves, or an organisation, group, workspace or project.
type Owner struct {
	Name string // as the provider spells it in URLs (login, group full path, workspace slug, project key)
	Kind string // "user", "org", "group", "workspace", "project"
}

// RemoteRepo is a repository on the provider.
type RemoteRepo struct {
	ID            string // stable across renames and transfers
	Owner         string
	Name          string
	FullName      string // owner/name (GitLab: the full path)
	HTMLURL       string
	SSHURL        string // what the mirror fetches
	DefaultBranch string
	Private       bool
}

// DeployKey is a key added to a repository.
type DeployKey struct {
	ID       string
	Title    string
	Key      string // authorized_keys line (type and base64; no comment)
	ReadOnly bool
}

// Webhook is a hook on a repository.
type Webhook struct {
	ID     string
	URL    string
	Active bool
}

// Errors every adapter maps the provider's answers to; the wrapped error
// carries the provider's own message (never a token).
var (
	ErrUnauthorized = errors.New("the provider refused the credentials") // 401: expired or revoked token
	ErrForbidden    = errors.New("the provider refused the operation")   // 403: missing scope or permission
	ErrNotFound     = errors.New("not found on the provider")            // 404
	ErrExists       = errors.New("already exists on the provider")       // 409/422 "name already exists"
	ErrInvalid      = errors.New("the provider refused the request")     // 400/422 validation
	ErrRateLimited  = errors.New("the provider's rate limit was reached")
	ErrUnavailable  = errors.New("the provider could not be reached")
	// ErrNotSupported: the provider has no API for the operation (Revoke
	// on Bitbucket Cloud, Bitbucket Server and Gitea); the wrapped error
	// says what the user does by hand instead.
	ErrNotSupported = errors.New("the provider has no API for this")
)

// RateLimitError is ErrRateLimited with the provider's Retry-After.
type RateLimitError struct{ RetryAfter time.Duration }

func (e *RateLimitError) Error() string { return ErrRateLimited.Error() }
func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

// Provider is one configured SCM.
type Provider interface {
	Kind() Kind
	// OAuth2 is the authorization-code configuration (endpoints, scopes the
	// server needs: create repositories, deploy keys, webhooks, read
	// organisations); nil for Bitbucket Server, whose users store a
	// personal access token instead.
	OAuth2(redirectURL string) *oauth2.Config
	// Check validates the configuration against the provider: the API
	// answers, and (Bitbucket Server) the access token and project are
	// accepted. Its error quotes the provider's answer.
	Check(ctx context.Context) error
	// Client acts with a user's access token (Bitbucket Server: the user's
	// personal access token, or the configuration's own).
	Client(accessToken string) Client
	// Revoke revokes a user's authorization of the OAuth application:
	// GitHub (and GHES) deletes the grant, which revokes every token of
	// the application for that user (and, GitHub documents, deletes the
	// deploy keys those tokens added); GitLab revokes the refresh token
	// (refreshToken, "" for none) and the access token (RFC 7009). A token
	// the provider no longer knows is revoked already (nil). The
	// application's credentials authenticate the request and the tokens
	// travel in its body, never in its URL. ErrNotSupported where the
	// provider has no such API (Bitbucket Cloud, Gitea 1.26) or the token
	// is not ours to revoke (Bitbucket Server: the user's own personal
	// access token).
	Revoke(ctx context.Context, accessToken, refreshToken string) error
}

// Client is what the server does on a provider on a user's behalf. Every
// method paginates where the provider does and respects rate limits.
type Client interface {
	CurrentUser(ctx context.Context) (Owner, error)
	// Owners are the accounts the user may create repositories under: the
	// user first, then organisations / groups / workspaces / projects.
	Owners(ctx context.Context) ([]Owner, error)
	// CreateRepo creates owner/name (private unless public). ErrExists
	// when the name is taken (the caller then looks it up with RepoByName
	// to complete an interrupted creation).
	CreateRepo(ctx context.Context, owner Owner, name string, private bool) (RemoteRepo, error)
	RepoByName(ctx context.Context, owner, name string) (RemoteRepo, error)
	RepoByID(ctx context.Context, id string) (RemoteRepo, error)
	AddDeployKey(ctx context.Context, repo RemoteRepo, title, publicKey string, readOnly bool) (DeployKey, error)
	DeployKeys(ctx context.Context, repo RemoteRepo) ([]DeployKey, error)
	// DeleteDeployKey and DeleteWebhook succeed when the key or hook is
	// already gone (deletes are idempotent).
	DeleteDeployKey(ctx context.Context, repo RemoteRepo, id string) error
	// AddWebhook adds a JSON push (+ repository where the provider has
	// it) webhook to url signed with secret.
	AddWebhook(ctx context.Context, repo RemoteRepo, url, secret string) (Webhook, error)
	Webhooks(ctx context.Context, repo RemoteRepo) ([]Webhook, error)
	DeleteWebhook(ctx context.Context, repo RemoteRepo, id string) error
	// BranchHead is the commit a branch points at (Bitbucket Server's api
	// mode polls it).
	BranchHead(ctx context.Context, repo RemoteRepo, branch string) (string, error)
}
