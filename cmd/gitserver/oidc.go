package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"gitserver/ui/oidc"
	"gitserver/ui/web"
)

// oidcConfig is the single sign-on settings (--oidc-*; docs/api.md §12).
type oidcConfig struct {
	Issuer     string
	ClientID   string
	SecretFile string
	// Secret comes from GITSERVER_OIDC_CLIENT_SECRET, oidc-client-secret in
	// the config file, or --oidc-client-secret-file; never from argv.
	Secret          string
	ProviderName    string
	Scopes          string
	UsernameClaim   string
	AdminClaim      string
	AllowedDomains  string
	AllowedGroups   string
	GroupsClaim     string
	AllowLinking    bool
	RefreshInterval time.Duration
}

func oidcFlags(fs *flag.FlagSet, c *oidcConfig) {
	fs.StringVar(&c.Issuer, "oidc-issuer", "", "OpenID Connect issuer URL: turns on single sign-on (discovery at <URL>/.well-known/openid-configuration)")
	fs.StringVar(&c.ClientID, "oidc-client-id", "", "OpenID Connect client id of this server at the provider")
	fs.StringVar(&c.SecretFile, "oidc-client-secret-file", "", "file whose content (one line) is the OpenID Connect client secret")
	fs.StringVar(&c.Secret, "oidc-client-secret", "", "the OpenID Connect client secret: environment or config file only, never the command line")
	fs.StringVar(&c.ProviderName, "oidc-provider-name", "", "name on the sign-in page's \"Sign in with NAME\" (default: the issuer's host)")
	fs.StringVar(&c.Scopes, "oidc-scopes", strings.Join(oidc.DefaultScopes, " "), "scopes to request, space- or comma-separated (openid is always requested; add offline_access where the provider needs it for a refresh token)")
	fs.StringVar(&c.UsernameClaim, "oidc-username-claim", oidc.DefaultUsernameClaim, "ID token claim that names the account (without it: the e-mail; a value with an @ is cut at it)")
	fs.StringVar(&c.AdminClaim, "oidc-admin-claim", "", "NAME=VALUE: users whose claim NAME is VALUE (or a list containing it) are admins, others not (e.g. groups=gitserver-admins)")
	fs.StringVar(&c.AllowedDomains, "oidc-allowed-domains", "", "comma-separated e-mail domains allowed to sign in (empty: any)")
	fs.StringVar(&c.AllowedGroups, "oidc-allowed-groups", "", "comma-separated groups (values of --oidc-groups-claim) allowed to sign in (empty: any)")
	fs.StringVar(&c.GroupsClaim, "oidc-groups-claim", oidc.DefaultGroupsClaim, "ID token claim listing the user's groups (for --oidc-allowed-groups)")
	fs.BoolVar(&c.AllowLinking, "oidc-allow-linking", false, "let a first sign-in take over the local account of the same name (off: such a sign-in is refused)")
	fs.DurationVar(&c.RefreshInterval, "oidc-refresh-interval", web.DefaultRefreshInterval, "how often a signed-in user's grant is refreshed with the provider (a refused refresh disables the account)")
}

// load reads the secret and checks the settings; set is the flags given on
// the command line.
func (c *oidcConfig) load(set map[string]bool) error {
	if set["oidc-client-secret"] {
		return errors.New("--oidc-client-secret is not accepted on the command line (visible in ps, /proc): " +
			"set GITSERVER_OIDC_CLIENT_SECRET, oidc-client-secret in the config file, or --oidc-client-secret-file")
	}
	if c.Issuer == "" {
		if c.ClientID != "" || c.SecretFile != "" || c.Secret != "" || c.AdminClaim != "" {
			return errors.New("the --oidc-* settings need --oidc-issuer (without it single sign-on is off)")
		}
		return nil
	}
	u, err := url.Parse(c.Issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--oidc-issuer %q must be an absolute http(s) URL", c.Issuer)
	}
	if c.ClientID == "" {
		return errors.New("--oidc-issuer needs --oidc-client-id")
	}
	if c.SecretFile != "" {
		if c.Secret != "" {
			return errors.New("give the OIDC client secret once: GITSERVER_OIDC_CLIENT_SECRET (or the config file) or --oidc-client-secret-file, not both")
		}
		if c.Secret, err = readSecretFile(c.SecretFile); err != nil {
			return fmt.Errorf("--oidc-client-secret-file: %w", err)
		}
	}
	if c.Secret == "" {
		return errors.New("--oidc-issuer needs the client secret: --oidc-client-secret-file, GITSERVER_OIDC_CLIENT_SECRET, or oidc-client-secret in the config file")
	}
	if c.AdminClaim != "" {
		if k, v, ok := strings.Cut(c.AdminClaim, "="); !ok || strings.TrimSpace(k) == "" || strings.TrimSpace(v) == "" {
			return fmt.Errorf("--oidc-admin-claim %q: want NAME=VALUE", c.AdminClaim)
		}
	}
	if c.UsernameClaim == "" {
		return errors.New("--oidc-username-claim must not be empty")
	}
	if c.RefreshInterval <= 0 {
		return errors.New("--oidc-refresh-interval must be positive")
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// sso builds the pages' single sign-on, nil when it is off.
func (c *oidcConfig) sso(baseURL string) (*web.SSO, error) {
	if c.Issuer == "" {
		return nil, nil
	}
	cfg := oidc.Config{Issuer: c.Issuer, ClientID: c.ClientID, ClientSecret: c.Secret,
		RedirectURL: strings.TrimRight(baseURL, "/") + "/oidc/callback", Scopes: splitList(c.Scopes),
		UsernameClaim: c.UsernameClaim, AllowedDomains: splitList(c.AllowedDomains), AllowedGroups: splitList(c.AllowedGroups),
		GroupsClaim: c.GroupsClaim}
	if c.AdminClaim != "" {
		k, v, _ := strings.Cut(c.AdminClaim, "=")
		cfg.AdminClaim, cfg.AdminValue = strings.TrimSpace(k), strings.TrimSpace(v)
	}
	client, err := oidc.New(cfg)
	if err != nil {
		return nil, err
	}
	name := c.ProviderName
	if name == "" {
		u, _ := url.Parse(c.Issuer)
		name = u.Host
	}
	return &web.SSO{Client: client, ProviderName: name, AllowLinking: c.AllowLinking, RefreshInterval: c.RefreshInterval}, nil
}

// sweepGrants checks, once per refresh interval, the grants of linked users
// who did not use the pages lately (a leaver who only uses git is disabled
// too), until ctx ends.
func sweepGrants(ctx context.Context, pages *web.Pages, log *slog.Logger) {
	t := time.NewTicker(pages.SSO.SweepInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := pages.SweepGrants(ctx, 500)
		if err != nil && ctx.Err() == nil {
			log.Warn("oidc: sweep the grants of linked users", "err", err)
		}
		if n > 0 {
			log.Warn("oidc: disabled accounts the identity provider no longer accepts", "count", n)
		}
	}
}
