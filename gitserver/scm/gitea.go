package scm

import (
	"context"
	"fmt"

	"golang.org/x/oauth2"
)

// gitea is Gitea and Forgejo (API v1). Its REST client is GitHub's (hub)
// with Gitea's differences: page size, hook body, branch commit field.
type gitea struct{ base }

func (g *gitea) OAuth2(redirectURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     g.cfg.ClientID,
		ClientSecret: g.cfg.ClientSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   g.web + "/login/oauth/authorize",
			TokenURL:  g.web + "/login/oauth/access_token",
			AuthStyle: oauth2.AuthStyleInParams,
		},
		RedirectURL: redirectURL,
		// Gitea ≥ 1.23 granular scopes: user repositories need the user and
		// repository categories, organisation repositories the organization
		// category; keys and hooks the repository category.
		Scopes: []string{"write:repository", "write:user", "write:organization"},
	}
}

// Check: GET /version answers without credentials, and the token endpoint
// accepts the OAuth application.
func (g *gitea) Check(ctx context.Context) error {
	if err := g.pingAPI(ctx, "/version"); err != nil {
		return err
	}
	return g.oauthProbe(ctx, g.web+"/login/oauth/access_token", false)
}

func (g *gitea) Client(token string) Client {
	return &hub{client{b: &g.base, auth: "Bearer " + token}, true}
}

// Revoke: Gitea 1.26 has no revocation API (its /login/oauth routes are
// authorize, access_token, userinfo, keys and introspect; grants are
// revoked only in the web UI).
func (g *gitea) Revoke(context.Context, string, string) error {
	return fmt.Errorf("%w (gitea: no OAuth revocation API; revoke the grant under Settings → Applications → Authorized OAuth2 Applications, %s/user/settings/applications)",
		ErrNotSupported, g.web)
}
