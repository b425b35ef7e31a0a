package service

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"gitserver/gitserver/access"
	"gitserver/gitserver/scm"
	"gitserver/store"
)

// SCMFactory builds the provider of a configuration (scm.New in cmd).
type SCMFactory func(scm.Config) (scm.Provider, error)

// HostKeyScanner pins the SSH host keys of an SCM's ssh_url (cmd wires
// gitserver/mirror's scan).
type HostKeyScanner interface {
	// ScanHostKeys returns the host's keys as known_hosts lines and their
	// SHA256 fingerprints; refusals wrap store.ErrInvalid.
	ScanHostKeys(ctx context.Context, sshURL string) (knownHosts string, fingerprints []string, err error)
}

// ErrNoSCM: this build has no SCM adapters (cmd gave no factory).
var ErrNoSCM = errors.New("SCM adapters are not available in this build")

// ProviderError is a provider's answer to an operation: its Err wraps one
// of gitserver/scm's errors (ErrUnavailable, ErrUnauthorized, ...) and
// quotes the provider. The API answers 502 when the provider could not be
// reached or is rate limiting, 400 when it refused.
type ProviderError struct {
	Op  string // what was asked, e.g. "checking the configuration"
	Err error
}

func (e *ProviderError) Error() string {
	return "the provider's answer to " + e.Op + ": " + e.Err.Error()
}
func (e *ProviderError) Unwrap() error { return e.Err }

// Unavailable reports whether the provider could not answer (rather than
// refused).
func (e *ProviderError) Unavailable() bool {
	return errors.Is(e.Err, scm.ErrUnavailable) || errors.Is(e.Err, scm.ErrRateLimited)
}

// OAuthStateTTL is how long an authorization may take.
const OAuthStateTTL = 10 * time.Minute

// tokenRefreshMargin: an access token is refreshed this long before it
// expires, so an operation does not start with a token about to expire.
const tokenRefreshMargin = 5 * time.Minute

// SCMConfigInput is a configuration to create, or the fields to change
// (nil: unchanged; on creation: empty).
type SCMConfigInput struct {
	Name, Kind, Mode           *string
	WebsiteURL, APIURL, SSHURL *string
	ClientID, ClientSecret     *string
	ProjectKey, AccessToken    *string
	AllowedOwners              *[]string
}

func set(dst *string, src *string) {
	if src != nil {
		*dst = strings.TrimSpace(*src)
	}
}

func (in SCMConfigInput) apply(c *store.SCMConfig) {
	set(&c.Name, in.Name)
	set(&c.Kind, in.Kind)
	set(&c.Mode, in.Mode)
	set(&c.WebsiteURL, in.WebsiteURL)
	set(&c.APIURL, in.APIURL)
	set(&c.SSHURL, in.SSHURL)
	set(&c.ClientID, in.ClientID)
	set(&c.ClientSecret, in.ClientSecret)
	set(&c.ProjectKey, in.ProjectKey)
	set(&c.AccessToken, in.AccessToken)
	if in.AllowedOwners != nil {
		c.AllowedOwners = []string{}
		for _, o := range *in.AllowedOwners {
			if o = strings.TrimSpace(o); o != "" && !slices.Contains(c.AllowedOwners, o) {
				c.AllowedOwners = append(c.AllowedOwners, o)
			}
		}
	}
}

func invalidf(format string, args ...any) error {
	return refuse(store.ErrInvalid, fmt.Sprintf(format, args...))
}

func checkHTTPURL(field, s string) error {
	u, err := url.Parse(s)
	if s == "" {
		return invalidf("%s is required", field)
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || len(s) > 2048 {
		return invalidf("%s must be an http(s) URL without credentials, query or fragment, e.g. https://scm.example.com", field)
	}
	return nil
}

func checkSSHURL(s string) error {
	if s == "" {
		return invalidf("ssh_url is required, e.g. ssh://git@scm.example.com:22")
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "ssh" || u.Hostname() == "" || strings.HasPrefix(u.Hostname(), "-") || len(s) > 2048 {
		return invalidf("ssh_url must be an ssh:// URL, e.g. ssh://git@scm.example.com:22")
	}
	if _, has := u.User.Password(); has {
		return invalidf("ssh_url must not hold a password")
	}
	return nil
}

// validateSCMConfig checks c as the API documents (docs/api.md §10).
func validateSCMConfig(c *store.SCMConfig) error {
	kind := scm.Kind(c.Kind)
	if !kind.Valid() {
		return invalidf("kind %q is not known: use github, gitlab, bitbucket-cloud, bitbucket-server or gitea", store.Truncate(c.Kind, 40))
	}
	if c.Name == "" || len(c.Name) > 100 || strings.ContainsFunc(c.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return invalidf("name is required (at most 100 characters, no control characters)")
	}
	if kind == scm.BitbucketServer {
		if c.Mode == "" {
			c.Mode = string(scm.ModeWebhook)
		}
		if c.Mode != string(scm.ModeWebhook) && c.Mode != string(scm.ModeAPI) {
			return invalidf("mode must be webhook (build on check-in) or api (the server polls the default branch)")
		}
	} else {
		if c.Mode != "" && c.Mode != string(scm.ModeWebhook) {
			return invalidf("mode is only for bitbucket-server configurations")
		}
		c.Mode = string(scm.ModeWebhook)
	}
	c.WebsiteURL = strings.TrimRight(c.WebsiteURL, "/")
	c.APIURL = strings.TrimRight(c.APIURL, "/")
	if err := checkHTTPURL("website_url", c.WebsiteURL); err != nil {
		return err
	}
	if err := checkHTTPURL("api_url", c.APIURL); err != nil {
		return err
	}
	if err := checkSSHURL(c.SSHURL); err != nil {
		return err
	}
	if kind == scm.BitbucketServer {
		if c.ProjectKey == "" || c.AccessToken == "" {
			return invalidf("bitbucket-server configurations need project_key and access_token")
		}
		if c.ClientID != "" || c.ClientSecret != "" {
			return invalidf("bitbucket-server configurations use project_key and access_token, not client_id and client_secret")
		}
	} else {
		if c.ClientID == "" || c.ClientSecret == "" {
			return invalidf("%s configurations need client_id and client_secret (the OAuth application registered on the provider)", c.Kind)
		}
		if c.ProjectKey != "" || c.AccessToken != "" {
			return invalidf("project_key and access_token are only for bitbucket-server configurations")
		}
	}
	if len(c.AllowedOwners) > 100 {
		return invalidf("allowed_owners: at most 100")
	}
	return nil
}

// SCMProviderConfig is the provider configuration of c.
func SCMProviderConfig(c store.SCMConfig) scm.Config {
	return scm.Config{Kind: scm.Kind(c.Kind), Mode: scm.Mode(c.Mode), WebsiteURL: c.WebsiteURL, APIURL: c.APIURL, SSHURL: c.SSHURL,
		ClientID: c.ClientID, ClientSecret: c.ClientSecret, ProjectKey: c.ProjectKey, AccessToken: c.AccessToken}
}

func (s *Service) provider(c store.SCMConfig) (scm.Provider, error) {
	if s.SCM == nil {
		return nil, ErrNoSCM
	}
	p, err := s.SCM(SCMProviderConfig(c))
	if err != nil {
		return nil, invalidf("SCM configuration %q: %v", c.Name, err)
	}
	return p, nil
}

// checkProvider validates c against the provider and pins its host keys.
func (s *Service) checkProvider(ctx context.Context, c *store.SCMConfig, sshChanged bool) error {
	p, err := s.provider(*c)
	if err != nil {
		return err
	}
	if err := p.Check(ctx); err != nil {
		return &ProviderError{Op: "checking the configuration", Err: err}
	}
	if sshChanged {
		if s.HostKeys == nil {
			return refuse(store.ErrInvalid, "this server cannot pin SSH host keys")
		}
		kh, fps, err := s.HostKeys.ScanHostKeys(ctx, c.SSHURL)
		if err != nil {
			return err
		}
		c.KnownHosts, c.HostKeyFingerprints = kh, fps
	}
	return nil
}

// CreateSCMConfig validates a configuration, checks it against the
// provider, pins the host keys of its ssh_url and records it (admins).
func (s *Service) CreateSCMConfig(ctx context.Context, actor Actor, in SCMConfigInput) (store.SCMConfig, error) {
	if err := s.checkScoped(actor, access.OpAdmin); err != nil {
		return store.SCMConfig{}, err
	}
	var c store.SCMConfig
	in.apply(&c)
	if c.AllowedOwners == nil {
		c.AllowedOwners = []string{}
	}
	if err := validateSCMConfig(&c); err != nil {
		return store.SCMConfig{}, err
	}
	if err := s.checkProvider(ctx, &c, true); err != nil {
		return store.SCMConfig{}, err
	}
	return s.Store.CreateSCMConfig(ctx, c, actor.audit("scm.config.create", c.Name, c.Kind+" "+c.WebsiteURL))
}

// SCMConfigs lists every configuration (admins).
func (s *Service) SCMConfigs(ctx context.Context, actor Actor) ([]store.SCMConfig, error) {
	if err := s.checkScoped(actor, access.OpAdmin); err != nil {
		return nil, err
	}
	return s.Store.SCMConfigs(ctx)
}

// SCMConfig returns one configuration (admins).
func (s *Service) SCMConfig(ctx context.Context, actor Actor, id int64) (store.SCMConfig, error) {
	if err := s.checkScoped(actor, access.OpAdmin); err != nil {
		return store.SCMConfig{}, err
	}
	return s.Store.SCMConfigByID(ctx, id)
}

// UpdateSCMConfig changes the given fields of a configuration, checks it
// against the provider again and pins the host keys again when ssh_url
// changed (admins). Changing the kind is refused.
func (s *Service) UpdateSCMConfig(ctx context.Context, actor Actor, id int64, in SCMConfigInput) (store.SCMConfig, error) {
	if err := s.checkScoped(actor, access.OpAdmin); err != nil {
		return store.SCMConfig{}, err
	}
	old, err := s.Store.SCMConfigByID(ctx, id)
	if err != nil {
		return store.SCMConfig{}, err
	}
	c := old
	in.apply(&c)
	if c.Kind != old.Kind {
		return store.SCMConfig{}, invalidf("the kind of a configuration cannot change; add another configuration")
	}
	if err := validateSCMConfig(&c); err != nil {
		return store.SCMConfig{}, err
	}
	if err := s.checkProvider(ctx, &c, c.SSHURL != old.SSHURL); err != nil {
		return store.SCMConfig{}, err
	}
	var changed []string
	for _, f := range []struct {
		name string
		p    any
	}{{"name", in.Name}, {"mode", in.Mode}, {"website_url", in.WebsiteURL}, {"api_url", in.APIURL}, {"ssh_url", in.SSHURL},
		{"client_id", in.ClientID}, {"client_secret", in.ClientSecret}, {"project_key", in.ProjectKey}, {"access_token", in.AccessToken},
		{"allowed_owners", in.AllowedOwners}} {
		switch v := f.p.(type) {
		case *string:
			if v != nil {
				changed = append(changed, f.name)
			}
		case *[]string:
			if v != nil {
				changed = append(changed, f.name)
			}
		}
	}
	return s.Store.UpdateSCMConfig(ctx, c, actor.audit("scm.config.update", c.Name, "changed "+strings.Join(changed, ",")))
}

// DeleteSCMConfig removes a configuration (admins): refused (conflict,
// naming them) while repositories use it, unless force turns them into
// plain mirrors. It returns the repositories unlinked.
func (s *Service) DeleteSCMConfig(ctx context.Context, actor Actor, id int64, force bool) ([]store.Repo, error) {
	if err := s.checkScoped(actor, access.OpAdmin); err != nil {
		return nil, err
	}
	c, err := s.Store.SCMConfigByID(ctx, id)
	if err != nil {
		return nil, err
	}
	detail := c.Kind + " " + c.WebsiteURL
	if force {
		detail += " force"
	}
	return s.Store.DeleteSCMConfig(ctx, id, force, actor.audit("scm.config.delete", c.Name, detail))
}

// SCMConfigSummary is what any signed-in user sees of a configuration.
type SCMConfigSummary struct {
	ID        int64
	Name      string
	Kind      string
	Connected bool
}

func (s *Service) signedIn(actor Actor) (store.Account, error) {
	if actor.Principal.User == nil {
		return store.Account{}, refuse(store.ErrForbidden, "not a user")
	}
	return *actor.Principal.User, nil
}

// SCMConfigsForUser lists the configurations with whether the user is
// connected to each.
func (s *Service) SCMConfigsForUser(ctx context.Context, actor Actor) ([]SCMConfigSummary, error) {
	u, err := s.signedIn(actor)
	if err != nil {
		return nil, err
	}
	cs, err := s.Store.SCMConfigs(ctx)
	if err != nil {
		return nil, err
	}
	conns, err := s.Store.SCMConnections(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	out := []SCMConfigSummary{}
	for _, c := range cs {
		connected := slices.ContainsFunc(conns, func(x store.SCMConnection) bool { return x.ConfigID == c.ID })
		out = append(out, SCMConfigSummary{ID: c.ID, Name: c.Name, Kind: c.Kind, Connected: connected})
	}
	return out, nil
}

// CallbackPath is where the provider returns the user to.
func CallbackPath(configID int64) string { return fmt.Sprintf("/scm/%d/callback", configID) }

func (s *Service) redirectURL(configID int64) string {
	return strings.TrimRight(s.BaseURL, "/") + CallbackPath(configID)
}

// SafeReturnTo reports whether p may be returned to after an
// authorization: a path on this server ("/..."), never another site
// ("//host", "/\\host", a scheme).
func SafeReturnTo(p string) bool {
	if p == "" || len(p) > 2048 || p[0] != '/' || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") ||
		strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return false
	}
	u, err := url.Parse(p)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil
}

func (s *Service) oauthConfig(c store.SCMConfig) (*oauth2.Config, scm.Provider, error) {
	p, err := s.provider(c)
	if err != nil {
		return nil, nil, err
	}
	oc := p.OAuth2(s.redirectURL(c.ID))
	if oc == nil {
		return nil, p, refuse(store.ErrInvalid, fmt.Sprintf("%s uses personal access tokens: PUT /api/v1/user/scm/%d {\"access_token\"}", c.Name, c.ID))
	}
	return oc, p, nil
}

// StartConnect begins the authorization of user actor with configuration
// configID: a single-use state bound to the user and configuration, and a
// PKCE verifier, are stored; the answer is the provider's authorize URL.
// returnTo ("" for "/") must be a path on this server.
func (s *Service) StartConnect(ctx context.Context, actor Actor, configID int64, returnTo string) (string, error) {
	if err := s.checkScoped(actor, access.OpManageAccount); err != nil {
		return "", err
	}
	u, err := s.signedIn(actor)
	if err != nil {
		return "", err
	}
	if returnTo == "" {
		returnTo = "/"
	}
	if !SafeReturnTo(returnTo) {
		return "", invalidf("return_to must be a path on this server, e.g. /settings")
	}
	c, err := s.Store.SCMConfigByID(ctx, configID)
	if err != nil {
		return "", err
	}
	oc, _, err := s.oauthConfig(c)
	if err != nil {
		return "", err
	}
	b := make([]byte, 32)
	rand.Read(b)
	state := base64.RawURLEncoding.EncodeToString(b)
	verifier := oauth2.GenerateVerifier()
	if err := s.Store.CreateOAuthState(ctx, store.OAuthState{State: state, UserID: u.ID, ConfigID: c.ID, Verifier: verifier, ReturnTo: returnTo,
		ExpiresAt: s.Store.Now().Add(OAuthStateTTL)}); err != nil {
		return "", err
	}
	return oc.AuthCodeURL(state, oauth2.AccessTypeOffline, oauth2.S256ChallengeOption(verifier)), nil
}

// CallbackInput is what the provider sent back (the callback's query).
type CallbackInput struct {
	Code, State, Error, ErrorDescription string
}

// ErrStateRefused: the callback's state is unknown, expired, already
// used, or not the user's or configuration's.
var ErrStateRefused = errors.New("this authorization is unknown, expired or already used; start again")

// FinishConnect completes an authorization: the state is consumed (once),
// the code exchanged with the PKCE verifier, the provider's login read,
// and the connection stored. It returns where to send the user. Every
// refusal is an *Error or a *ProviderError with a message for the user.
func (s *Service) FinishConnect(ctx context.Context, actor Actor, configID int64, in CallbackInput) (string, error) {
	u, err := s.signedIn(actor)
	if err != nil {
		return "", err
	}
	if in.State == "" {
		return "", &Error{Kind: store.ErrInvalid, Msg: ErrStateRefused.Error()}
	}
	st, err := s.Store.ConsumeOAuthState(ctx, in.State)
	if errors.Is(err, store.ErrNotFound) || err == nil && (st.UserID != u.ID || st.ConfigID != configID) {
		return "", &Error{Kind: store.ErrInvalid, Msg: ErrStateRefused.Error()}
	}
	if err != nil {
		return "", err
	}
	c, err := s.Store.SCMConfigByID(ctx, configID)
	if err != nil {
		return "", err
	}
	if in.Error != "" {
		msg := fmt.Sprintf("%s did not authorize the connection (%s)", c.Name, store.Truncate(in.Error, 100))
		if in.Error == "access_denied" {
			msg = fmt.Sprintf("the authorization was denied on %s: nothing was connected", c.Name)
		}
		if in.ErrorDescription != "" {
			msg += ": " + store.Truncate(in.ErrorDescription, 300)
		}
		return "", refuse(store.ErrInvalid, msg)
	}
	if in.Code == "" {
		return "", invalidf("%s sent no authorization code", c.Name)
	}
	oc, p, err := s.oauthConfig(c)
	if err != nil {
		return "", err
	}
	tok, err := oc.Exchange(s.httpContext(ctx), in.Code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		return "", &ProviderError{Op: "exchanging the authorization code", Err: oauthError(err)}
	}
	me, err := p.Client(tok.AccessToken).CurrentUser(ctx)
	if err != nil {
		return "", &ProviderError{Op: "reading the connected account", Err: err}
	}
	if _, err := s.Store.PutSCMConnection(ctx, store.SCMConnection{UserID: u.ID, ConfigID: c.ID, Login: me.Name, AccessToken: tok.AccessToken,
		RefreshToken: tok.RefreshToken, TokenType: tok.TokenType, Expiry: tok.Expiry},
		actor.audit("scm.connect", u.Name, c.Name+" as "+me.Name)); err != nil {
		return "", err
	}
	return st.ReturnTo, nil
}

// oauthError is the provider's answer in an oauth2 error, without the
// response body beyond its error code and description.
func oauthError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		msg := re.ErrorCode
		if re.ErrorDescription != "" {
			msg += ": " + re.ErrorDescription
		}
		if msg == "" && re.Response != nil {
			msg = re.Response.Status
		}
		kind := scm.ErrInvalid
		if re.Response != nil && re.Response.StatusCode >= 500 {
			kind = scm.ErrUnavailable
		}
		return fmt.Errorf("%w: %s", kind, store.Truncate(msg, 300))
	}
	return fmt.Errorf("%w: %s", scm.ErrUnavailable, store.Truncate(err.Error(), 300))
}

func (s *Service) httpContext(ctx context.Context) context.Context {
	if s.HTTPClient != nil {
		return context.WithValue(ctx, oauth2.HTTPClient, s.HTTPClient)
	}
	return ctx
}

// PutSCMToken stores user actor's personal access token for a Bitbucket
// Server configuration, after the provider accepted it.
func (s *Service) PutSCMToken(ctx context.Context, actor Actor, configID int64, token string) (store.SCMConnection, error) {
	if err := s.checkScoped(actor, access.OpManageAccount); err != nil {
		return store.SCMConnection{}, err
	}
	u, err := s.signedIn(actor)
	if err != nil {
		return store.SCMConnection{}, err
	}
	token = strings.TrimSpace(token)
	if token == "" || len(token) > 4096 {
		return store.SCMConnection{}, invalidf("access_token is required")
	}
	c, err := s.Store.SCMConfigByID(ctx, configID)
	if err != nil {
		return store.SCMConnection{}, err
	}
	p, err := s.provider(c)
	if err != nil {
		return store.SCMConnection{}, err
	}
	if p.OAuth2(s.redirectURL(c.ID)) != nil {
		return store.SCMConnection{}, invalidf("%s connects with OAuth: open /scm/%d/connect", c.Name, c.ID)
	}
	me, err := p.Client(token).CurrentUser(ctx)
	if err != nil {
		return store.SCMConnection{}, &ProviderError{Op: "checking the access token", Err: err}
	}
	return s.Store.PutSCMConnection(ctx, store.SCMConnection{UserID: u.ID, ConfigID: c.ID, Login: me.Name, AccessToken: token},
		actor.audit("scm.connect", u.Name, c.Name+" as "+me.Name+" (access token)"))
}

// SCMConnections lists user actor's connections.
func (s *Service) SCMConnections(ctx context.Context, actor Actor) ([]store.SCMConnection, error) {
	u, err := s.signedIn(actor)
	if err != nil {
		return nil, err
	}
	return s.Store.SCMConnections(ctx, u.ID)
}

// revokeTimeout bounds the revocation a disconnect asks of the provider.
const revokeTimeout = 10 * time.Second

// DisconnectSCM removes user actor's connection to a configuration. The
// provider is first asked to revoke the grant (best effort, bounded by
// revokeTimeout): GitHub and GitLab do; Bitbucket, Gitea and Bitbucket
// Server personal access tokens are left for the user to revoke in the
// provider's settings. The connection is forgotten here in any case; the
// outcome is logged and recorded in the audit entry.
func (s *Service) DisconnectSCM(ctx context.Context, actor Actor, configID int64) error {
	if err := s.checkScoped(actor, access.OpManageAccount); err != nil {
		return err
	}
	u, err := s.signedIn(actor)
	if err != nil {
		return err
	}
	c, err := s.Store.SCMConfigByID(ctx, configID)
	if err != nil {
		return err
	}
	conn, err := s.Store.SCMConnection(ctx, u.ID, configID)
	if err != nil {
		return err
	}
	outcome := s.revokeConnection(ctx, u, c, conn)
	return s.Store.DeleteSCMConnection(ctx, u.ID, configID, actor.audit("scm.disconnect", u.Name, c.Name+" ("+outcome+")"))
}

// revokeConnection asks the provider to revoke conn and says what
// happened, for the audit entry; failures are logged, never returned.
func (s *Service) revokeConnection(ctx context.Context, u store.Account, c store.SCMConfig, conn store.SCMConnection) string {
	log := s.log().With("user", u.Name, "scm_config", c.Name, "kind", c.Kind)
	p, err := s.provider(c)
	if err != nil {
		log.Warn("scm disconnect: grant not revoked", "err", err)
		return "not revoked"
	}
	if scm.Kind(c.Kind) == scm.GitHub {
		// GitHub deletes the deploy keys an OAuth application's token added
		// when the token is revoked: that would stop the mirrors created
		// through this connection.
		if names := s.reposCreatedBy(ctx, u, c); len(names) > 0 {
			log.Info("scm disconnect: grant not revoked: GitHub would delete the deploy keys it added", "repos", strings.Join(names, ", "))
			if len(names) > 5 {
				names = append(names[:5], fmt.Sprintf("and %d more", len(names)-5))
			}
			return "not revoked: deploy keys of " + strings.Join(names, ", ") + " depend on it"
		}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeTimeout)
	defer cancel()
	err = p.Revoke(rctx, conn.AccessToken, conn.RefreshToken)
	switch {
	case err == nil:
		log.Info("scm disconnect: grant revoked on the provider")
		return "revoked"
	case errors.Is(err, scm.ErrNotSupported):
		log.Info("scm disconnect: the provider cannot revoke the grant through its API", "detail", err)
		return "revoke by hand"
	default:
		log.Warn("scm disconnect: revoking the grant failed; the connection is forgotten anyway", "err", err)
		return "revocation failed"
	}
}

// reposCreatedBy names the repositories created through configuration c
// with u's connection (best effort: a store error names none).
func (s *Service) reposCreatedBy(ctx context.Context, u store.Account, c store.SCMConfig) []string {
	repos, err := s.Store.SCMConfigRepos(ctx, c.ID)
	if err != nil {
		s.log().Warn("scm disconnect: listing the configuration's repositories", "scm_config", c.Name, "err", err)
		return nil
	}
	var names []string
	for _, r := range repos {
		m, err := s.Store.MirrorByRepo(ctx, r.ID)
		if err == nil && m.Remote.UserID == u.ID {
			names = append(names, r.FullName())
		}
	}
	return names
}

// SCMOwners lists the owners user actor may create repositories under
// with a configuration: the provider's, filtered by the configuration's
// allowed_owners (empty: all); Bitbucket Server: the configured project.
func (s *Service) SCMOwners(ctx context.Context, actor Actor, configID int64) ([]scm.Owner, error) {
	u, err := s.signedIn(actor)
	if err != nil {
		return nil, err
	}
	c, err := s.Store.SCMConfigByID(ctx, configID)
	if err != nil {
		return nil, err
	}
	if c.Kind == store.SCMBitbucketServer {
		if _, err := s.connection(ctx, u, c); err != nil {
			return nil, err
		}
		return []scm.Owner{{Name: c.ProjectKey, Kind: "project"}}, nil
	}
	cl, err := s.ProviderClient(ctx, u, configID)
	if err != nil {
		return nil, err
	}
	owners, err := cl.Owners(ctx)
	if err != nil {
		return nil, &ProviderError{Op: "listing your accounts and organisations", Err: err}
	}
	out := []scm.Owner{}
	for _, o := range owners {
		if len(c.AllowedOwners) == 0 || slices.ContainsFunc(c.AllowedOwners, func(a string) bool { return strings.EqualFold(a, o.Name) }) {
			out = append(out, o)
		}
	}
	return out, nil
}

func (s *Service) connection(ctx context.Context, u store.Account, c store.SCMConfig) (store.SCMConnection, error) {
	conn, err := s.Store.SCMConnection(ctx, u.ID, c.ID)
	if errors.Is(err, store.ErrNotFound) {
		how := fmt.Sprintf("open /scm/%d/connect", c.ID)
		if c.Kind == store.SCMBitbucketServer {
			how = fmt.Sprintf("PUT /api/v1/user/scm/%d with your personal access token", c.ID)
		}
		return store.SCMConnection{}, refuse(store.ErrConflict, fmt.Sprintf("you are not connected to %s: %s", c.Name, how))
	}
	return conn, err
}

// ProviderClient is a client of configuration configID acting as user u,
// with a fresh token: one that expires within tokenRefreshMargin is
// refreshed first and the new token stored (a refresh another request
// made meanwhile is taken instead of refreshing twice).
func (s *Service) ProviderClient(ctx context.Context, u store.Account, configID int64) (scm.Client, error) {
	c, err := s.Store.SCMConfigByID(ctx, configID)
	if err != nil {
		return nil, err
	}
	conn, err := s.connection(ctx, u, c)
	if err != nil {
		return nil, err
	}
	p, err := s.provider(c)
	if err != nil {
		return nil, err
	}
	oc := p.OAuth2(s.redirectURL(c.ID))
	if oc == nil || conn.Expiry.IsZero() || conn.RefreshToken == "" {
		return p.Client(conn.AccessToken), nil
	}
	tok, err := s.freshToken(ctx, oc, c, conn)
	if err != nil {
		return nil, err
	}
	return p.Client(tok), nil
}

// freshToken returns conn's access token, refreshed when it expires within
// the margin.
func (s *Service) freshToken(ctx context.Context, oc *oauth2.Config, c store.SCMConfig, conn store.SCMConnection) (string, error) {
	for attempt := 0; ; attempt++ {
		if s.Store.Now().Add(tokenRefreshMargin).Before(conn.Expiry) {
			return conn.AccessToken, nil
		}
		// The expiry is moved forward by the margin so that x/oauth2
		// refreshes now rather than at the last second.
		old := &oauth2.Token{AccessToken: conn.AccessToken, RefreshToken: conn.RefreshToken, TokenType: conn.TokenType,
			Expiry: conn.Expiry.Add(-tokenRefreshMargin)}
		tok, err := oc.TokenSource(s.httpContext(ctx), old).Token()
		if err != nil {
			return "", &ProviderError{Op: "refreshing your connection to " + c.Name + " (connect again if it was revoked)", Err: oauthError(err)}
		}
		rt := tok.RefreshToken
		if rt == "" {
			rt = conn.RefreshToken
		}
		next, err := s.Store.UpdateSCMToken(ctx, conn.UserID, conn.ConfigID, conn.Version,
			store.SCMToken{AccessToken: tok.AccessToken, RefreshToken: rt, TokenType: tok.TokenType, Expiry: tok.Expiry})
		if errors.Is(err, store.ErrConflict) && attempt < 2 {
			// Another request refreshed first: use its token.
			if conn, err = s.Store.SCMConnection(ctx, conn.UserID, conn.ConfigID); err != nil {
				return "", err
			}
			continue
		}
		if err != nil {
			return "", err
		}
		return next.AccessToken, nil
	}
}
