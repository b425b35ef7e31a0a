package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Config is a relying party's settings (cmd fills it from --oidc-*).
type Config struct {
	// Issuer is the provider's issuer URL; discovery reads
	// Issuer + "/.well-known/openid-configuration", and every ID token
	// must name exactly this issuer.
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is this server's callback (<base URL>/oidc/callback).
	RedirectURL string
	// Scopes requested ("openid" is always among them); DefaultScopes when
	// empty.
	Scopes []string
	// UsernameClaim names the account (DefaultUsernameClaim when empty);
	// without it (or when it is empty) the e-mail claim; a value with an
	// "@" is cut at it (the local part).
	UsernameClaim string
	// AdminClaim and AdminValue: a user whose ID token has claim AdminClaim
	// equal to AdminValue (a string), or containing it (a list), is an
	// admin; any other user is not. Empty AdminClaim: sign-in never
	// changes the admin flag.
	AdminClaim, AdminValue string
	// AllowedDomains, when not empty, admits only users whose (verified)
	// e-mail is in one of these domains.
	AllowedDomains []string
	// AllowedGroups, when not empty, admits only users whose GroupsClaim
	// (DefaultGroupsClaim when empty) contains one of these.
	AllowedGroups []string
	GroupsClaim   string
	// HTTPClient talks to the provider (http.DefaultClient when nil).
	HTTPClient *http.Client
	// Now is the clock the ID token's expiry is checked against (time.Now
	// when nil).
	Now func() time.Time
}

// Defaults.
const (
	DefaultUsernameClaim = "preferred_username"
	DefaultGroupsClaim   = "groups"
)

// DefaultScopes are requested when Config.Scopes is empty.
var DefaultScopes = []string{gooidc.ScopeOpenID, "profile", "email"}

// Client is a relying party of one provider. Discovery happens on first
// use, not in New, so the server starts while the provider is down; a
// failed discovery is retried on the next sign-in.
type Client struct {
	cfg Config

	mu       sync.Mutex
	provider *gooidc.Provider
	verifier *gooidc.IDTokenVerifier
	oauth    *oauth2.Config
}

// Identity is what a verified ID token says of its user.
type Identity struct {
	Issuer  string
	Subject string
	// Username is the account name the token proposes (not validated
	// here); "" when neither the username claim nor the e-mail gives one.
	Username string
	// NameRefusal, when not nil, is why the token names no account (an
	// e-mail the provider did not verify): it matters only to a first
	// sign-in, which needs a name; an identity linked already signs in.
	NameRefusal *Refusal
	Email       string
	// Admin is the admin claim's verdict; nil without an admin claim.
	Admin *bool
	// RefreshToken is the provider's refresh token ("" when it gave none).
	RefreshToken string
}

// Refusal is a sign-in the provider completed but this server refuses (or
// could not complete): Msg is safe to show the user, Err the detail for
// the log.
type Refusal struct {
	Msg string
	Err error
}

func (r *Refusal) Error() string {
	if r.Err != nil {
		return r.Msg + ": " + r.Err.Error()
	}
	return r.Msg
}

func (r *Refusal) Unwrap() error { return r.Err }

// ErrRevoked is a refresh the provider refused for good (invalid_grant):
// the provider no longer accepts the user's grant.
var ErrRevoked = errors.New("oidc: the identity provider no longer accepts this sign-in (invalid_grant)")

// New checks cfg; it does not contact the provider.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("the OIDC issuer %q must be an absolute http(s) URL", cfg.Issuer)
	}
	if cfg.ClientID == "" {
		return nil, errors.New("the OIDC client id is required with an issuer")
	}
	if cfg.RedirectURL == "" {
		return nil, errors.New("the OIDC redirect URL is required")
	}
	if cfg.UsernameClaim == "" {
		cfg.UsernameClaim = DefaultUsernameClaim
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = DefaultGroupsClaim
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = DefaultScopes
	}
	if !slices.Contains(cfg.Scopes, gooidc.ScopeOpenID) {
		cfg.Scopes = append([]string{gooidc.ScopeOpenID}, cfg.Scopes...)
	}
	if (cfg.AdminClaim == "") != (cfg.AdminValue == "") {
		return nil, errors.New("the OIDC admin claim needs a name and a value (NAME=VALUE)")
	}
	for i, d := range cfg.AllowedDomains {
		cfg.AllowedDomains[i] = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "@"))
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg}, nil
}

// Issuer is the configured issuer URL.
func (c *Client) Issuer() string { return c.cfg.Issuer }

func (c *Client) ctx(ctx context.Context) context.Context {
	return gooidc.ClientContext(ctx, c.cfg.HTTPClient)
}

// discover returns the provider's endpoints, discovering them once.
func (c *Client) discover(ctx context.Context) (*oauth2.Config, *gooidc.IDTokenVerifier, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.oauth, c.verifier, nil
	}
	dctx, cancel := context.WithTimeout(c.ctx(ctx), 15*time.Second)
	defer cancel()
	// NewProvider checks that the discovery document names this issuer.
	p, err := gooidc.NewProvider(dctx, c.cfg.Issuer)
	if err != nil {
		return nil, nil, &Refusal{Msg: "The identity provider could not be reached or did not describe itself correctly. Try again later, or ask an administrator.", Err: err}
	}
	c.provider = p
	// The verifier checks the signature (keys from the provider's JWKS),
	// the issuer, the audience (this client id) and the expiry.
	c.verifier = p.Verifier(&gooidc.Config{ClientID: c.cfg.ClientID, Now: c.cfg.Now})
	c.oauth = &oauth2.Config{ClientID: c.cfg.ClientID, ClientSecret: c.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: c.cfg.RedirectURL, Scopes: c.cfg.Scopes}
	return c.oauth, c.verifier, nil
}

// AuthCodeURL is where the browser goes to sign in: the authorization
// endpoint with state, nonce and the PKCE challenge of verifier (S256).
func (c *Client) AuthCodeURL(ctx context.Context, state, nonce, verifier string) (string, error) {
	o, _, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	return o.AuthCodeURL(state, gooidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), nil
}

// Exchange redeems code (with the PKCE verifier) at the token endpoint,
// verifies the ID token (signature, issuer, audience, expiry, and that it
// carries nonce) and returns its identity, after the allowed-domain and
// group checks. Every failure is a *Refusal (a name the token cannot give
// is not a failure here: Identity.NameRefusal).
func (c *Client) Exchange(ctx context.Context, code, verifier, nonce string) (Identity, error) {
	o, v, err := c.discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	xctx, cancel := context.WithTimeout(c.ctx(ctx), 30*time.Second)
	defer cancel()
	tok, err := o.Exchange(xctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		// A code used before, expired, issued to another client or for
		// another PKCE challenge: the provider answers 4xx (invalid_grant,
		// or, as Gitea does for a used code, unauthorized_client).
		if errors.As(err, &re) && (re.ErrorCode != "" || re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500) {
			return Identity{}, &Refusal{Msg: "The identity provider refused the sign-in code: it was already used, has expired, or was not issued for this server. Sign in again.", Err: err}
		}
		return Identity{}, &Refusal{Msg: "The identity provider did not complete the sign-in. Try again, or ask an administrator.", Err: err}
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return Identity{}, &Refusal{Msg: "The identity provider answered without an ID token (is the openid scope allowed?).", Err: errors.New("no id_token in the token response")}
	}
	idt, err := v.Verify(xctx, raw)
	if err != nil {
		var exp *gooidc.TokenExpiredError
		if errors.As(err, &exp) {
			return Identity{}, &Refusal{Msg: "The identity provider's ID token has expired. Sign in again (and check this server's clock).", Err: err}
		}
		return Identity{}, &Refusal{Msg: "The identity provider's ID token was refused: its signature, issuer or audience is not the one this server expects.", Err: err}
	}
	if idt.Nonce == "" || idt.Nonce != nonce {
		return Identity{}, &Refusal{Msg: "The ID token does not belong to this sign-in (nonce mismatch). Sign in again.", Err: errors.New("nonce mismatch")}
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, &Refusal{Msg: "The ID token's claims could not be read.", Err: err}
	}
	if err := authorizedParty(idt.Audience, claims["azp"], c.cfg.ClientID); err != nil {
		return Identity{}, &Refusal{Msg: "The identity provider's ID token was issued to another client (azp). Sign in again, or ask an administrator.", Err: err}
	}
	id := Identity{Issuer: idt.Issuer, Subject: idt.Subject, RefreshToken: tok.RefreshToken}
	id.Email, _ = claims["email"].(string)
	if err := c.admit(claims, id.Email); err != nil {
		return Identity{}, err
	}
	if id.Username, err = c.username(claims, id.Email); err != nil {
		errors.As(err, &id.NameRefusal)
	}
	if c.cfg.AdminClaim != "" {
		admin := HasValue(claims[c.cfg.AdminClaim], c.cfg.AdminValue)
		id.Admin = &admin
	}
	return id, nil
}

// authorizedParty applies OpenID Connect Core 3.1.3.7 items 4 and 5 (the
// audience itself is go-oidc's check): a token for several audiences must
// name its authorized party, and an azp present must be this client.
func authorizedParty(aud []string, azp any, clientID string) error {
	switch v := azp.(type) {
	case nil:
		if len(aud) > 1 {
			return fmt.Errorf("ID token for %d audiences without azp", len(aud))
		}
		return nil
	case string:
		if v != clientID {
			return fmt.Errorf("ID token's azp %q is not this client", v)
		}
		return nil
	}
	return fmt.Errorf("ID token's azp is a %T, not a string", azp)
}

// username is the account name the claims propose: the username claim,
// else the e-mail's (a Refusal when the provider says it did not verify
// it); a value with an "@" is cut at it.
func (c *Client) username(claims map[string]any, email string) (string, error) {
	name, _ := claims[c.cfg.UsernameClaim].(string)
	name = strings.TrimSpace(name)
	if name == "" {
		if email != "" && unverified(claims["email_verified"]) {
			// Anyone can type an address the provider did not verify:
			// it names no account (nor links to a local one).
			return "", &Refusal{Msg: "The identity provider gives no user name, and your e-mail address is not verified by it, so it cannot name your account here. Verify your e-mail address at the identity provider, or ask an administrator.",
				Err: fmt.Errorf("no %q claim and an unverified e-mail", c.cfg.UsernameClaim)}
		}
		name = email
	}
	// An e-mail-like name (Entra's preferred_username is the UPN) names
	// the account by its local part.
	name, _, _ = strings.Cut(name, "@")
	return name, nil
}

// admit applies the allowed domains and groups.
func (c *Client) admit(claims map[string]any, email string) error {
	if len(c.cfg.AllowedDomains) > 0 {
		_, domain, _ := strings.Cut(email, "@")
		if email == "" || !slices.Contains(c.cfg.AllowedDomains, strings.ToLower(domain)) || unverified(claims["email_verified"]) {
			return &Refusal{Msg: "Your e-mail address is not in a domain allowed to sign in here (or is not verified by the identity provider).",
				Err: fmt.Errorf("e-mail domain %q not allowed", domain)}
		}
	}
	if len(c.cfg.AllowedGroups) > 0 {
		ok := false
		for _, g := range c.cfg.AllowedGroups {
			if HasValue(claims[c.cfg.GroupsClaim], g) {
				ok = true
				break
			}
		}
		if !ok {
			return &Refusal{Msg: "You are not in a group allowed to sign in here.", Err: fmt.Errorf("no allowed group in claim %q", c.cfg.GroupsClaim)}
		}
	}
	return nil
}

// unverified reports whether an email_verified claim says no: false, or
// the string "false" (some providers, e.g. Amazon Cognito, send strings).
// An absent claim is not a no (Entra ID sends none).
func unverified(claim any) bool {
	switch v := claim.(type) {
	case bool:
		return !v
	case string:
		return strings.EqualFold(strings.TrimSpace(v), "false")
	}
	return false
}

// HasValue reports whether a claim's value is want (a string, a number or
// a boolean, compared as text) or a list containing it.
func HasValue(claim any, want string) bool {
	switch v := claim.(type) {
	case nil:
		return false
	case string:
		return v == want
	case []any:
		for _, e := range v {
			if HasValue(e, want) && !isList(e) {
				return true
			}
		}
		return false
	case bool, float64:
		return fmt.Sprint(v) == want
	}
	return false
}

func isList(v any) bool { _, ok := v.([]any); return ok }

// Refresh asks the provider to refresh the grant behind refreshToken and
// returns the refresh token to keep (the provider's new one, or the same).
// ErrRevoked when the provider refuses for good (invalid_grant): the user
// left, or the grant was revoked. Any other error is transient.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (string, error) {
	o, _, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	rctx, cancel := context.WithTimeout(c.ctx(ctx), 15*time.Second)
	defer cancel()
	tok, err := o.TokenSource(rctx, &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			return "", fmt.Errorf("%w: %v", ErrRevoked, err)
		}
		return "", fmt.Errorf("oidc: refresh: %w", err)
	}
	if tok.RefreshToken == "" {
		return refreshToken, nil
	}
	return tok.RefreshToken, nil
}
