package scm_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"gitserver/gitserver/scm"
	"gitserver/gitserver/scm/scmtest"
)

// fakeProvider is kind's adapter pointed at a new fake of kind.
func fakeProvider(t *testing.T, kind scm.Kind, mode scm.Mode, tweak func(*scm.Config)) (*fakeSCM, scm.Provider) {
	f := newFake(t, kind)
	cfg := scm.Config{Kind: kind, Mode: mode, WebsiteURL: f.srv.URL, APIURL: f.apiURL(),
		ClientID: fakeClientID, ClientSecret: fakeSecret}
	if kind == scm.BitbucketServer {
		cfg.ClientID, cfg.ClientSecret = "", ""
		cfg.ProjectKey, cfg.AccessToken = fakeProject, fakeToken
	}
	if tweak != nil {
		tweak(&cfg)
	}
	p, err := scm.New(cfg, &http.Client{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return f, p
}

// TestContract runs the provider contract over every adapter against its
// fake.
func TestContract(t *testing.T) {
	for _, tc := range []struct {
		kind scm.Kind
		mode scm.Mode
	}{
		{scm.GitHub, ""}, {scm.GitLab, ""}, {scm.BitbucketCloud, ""},
		{scm.BitbucketServer, scm.ModeWebhook}, {scm.BitbucketServer, scm.ModeAPI}, {scm.Gitea, ""},
	} {
		t.Run(string(tc.kind)+"/"+string(tc.mode), func(t *testing.T) {
			t.Parallel()
			f, p := fakeProvider(t, tc.kind, tc.mode, nil)
			// The same configuration with a wrong OAuth secret (Bitbucket
			// Server: an expired access token).
			refused, _ := scm.New(scm.Config{Kind: tc.kind, Mode: tc.mode, WebsiteURL: f.srv.URL, APIURL: f.apiURL(),
				ClientID: fakeClientID, ClientSecret: "wrong", ProjectKey: fakeProject, AccessToken: fakeBadToken}, nil)
			owners := []scm.Owner{{Name: fakeUser, Kind: "user"}}
			kindOf := map[scm.Kind]string{scm.GitHub: "org", scm.Gitea: "org", scm.GitLab: "group", scm.BitbucketCloud: "workspace"}[tc.kind]
			for _, o := range fakeOrgs {
				owners = append(owners, scm.Owner{Name: o, Kind: kindOf})
			}
			existing := scmtest.RepoRef{Owner: fakeUser, Name: "existing", Branch: "main", Head: fakeHead}
			missing := "999999"
			foreign := fakeForeign
			switch tc.kind {
			case scm.BitbucketServer:
				owners = []scm.Owner{{Name: fakeProject, Kind: "project"}}
				existing.Owner = fakeProject
				foreign = "OTHER"
			case scm.BitbucketCloud:
				missing = "{00000000-0000-4000-8000-999999999999}"
			}
			scmtest.Run(t, scmtest.Fixture{
				Provider: p, Refused: refused, Token: fakeToken, BadToken: fakeBadToken,
				Owners: owners, Foreign: foreign, MissingID: missing, Existing: existing,
				HookURL: "https://ci.example/hooks/scm/7", HookSecret: fakeHookSec,
				Fault: f.setFault, Polled: tc.mode == scm.ModeAPI,
			})
		})
	}
}

// TestOAuth2: each kind's endpoints and scopes, and an authorization code
// exchanged and refreshed through x/oauth2 against the fake's token
// endpoint (client authentication in the body, or Basic for Bitbucket Cloud).
func TestOAuth2(t *testing.T) {
	for kind, want := range map[scm.Kind]struct{ auth, token, scopes string }{
		scm.GitHub:         {"/login/oauth/authorize", "/login/oauth/access_token", "repo read:org"},
		scm.GitLab:         {"/oauth/authorize", "/oauth/token", "api"},
		scm.BitbucketCloud: {"/site/oauth2/authorize", "/site/oauth2/access_token", ""},
		scm.Gitea:          {"/login/oauth/authorize", "/login/oauth/access_token", "write:repository write:user write:organization"},
	} {
		t.Run(string(kind), func(t *testing.T) {
			f, p := fakeProvider(t, kind, "", nil)
			o := p.OAuth2("https://ci.example/scm/3/callback")
			if o.Endpoint.AuthURL != f.srv.URL+want.auth || o.Endpoint.TokenURL != f.srv.URL+want.token ||
				strings.Join(o.Scopes, " ") != want.scopes || o.ClientID != fakeClientID {
				t.Fatalf("OAuth2 = %+v", o)
			}
			verifier := oauth2.GenerateVerifier()
			u := o.AuthCodeURL("state-1", oauth2.S256ChallengeOption(verifier))
			if !strings.Contains(u, "code_challenge_method=S256") || !strings.Contains(u, "state=state-1") {
				t.Errorf("AuthCodeURL %s", u)
			}
			ctx := context.Background()
			tok, err := o.Exchange(ctx, "good-code", oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if tok.AccessToken != "access-1" || tok.RefreshToken != "refresh-1" {
				t.Fatalf("Exchange = %+v", tok)
			}
			tok.Expiry = time.Now().Add(-time.Minute) // expired: the source refreshes
			fresh, err := o.TokenSource(ctx, tok).Token()
			if err != nil || fresh.AccessToken != "access-2" || fresh.RefreshToken != "refresh-2" {
				t.Fatalf("refreshed token %+v, %v", fresh, err)
			}
		})
	}
	_, p := fakeProvider(t, scm.BitbucketServer, "", nil)
	if o := p.OAuth2("x"); o != nil {
		t.Errorf("bitbucket-server OAuth2 = %+v, want nil", o)
	}
}

func TestNewValidates(t *testing.T) {
	ok := scm.Config{Kind: scm.GitHub, WebsiteURL: "https://github.com"}
	for _, tc := range []struct {
		name string
		edit func(*scm.Config)
		want string
	}{
		{"unknown kind", func(c *scm.Config) { c.Kind = "svn" }, `unknown kind "svn"`},
		{"mode api on github", func(c *scm.Config) { c.Mode = scm.ModeAPI }, "only for bitbucket-server"},
		{"unknown mode", func(c *scm.Config) { c.Mode = "poll" }, `unknown mode "poll"`},
		{"no website", func(c *scm.Config) { c.WebsiteURL = "" }, "website_url is required"},
		{"ftp", func(c *scm.Config) { c.WebsiteURL = "ftp://github.com" }, `http or https URL, not "ftp:"`},
		{"relative", func(c *scm.Config) { c.WebsiteURL = "github.com" }, "http or https URL"},
		{"userinfo", func(c *scm.Config) { c.APIURL = "https://user:pw@api.github.com" }, "api_url must not carry credentials"},
		{"query", func(c *scm.Config) { c.APIURL = "https://api.github.com/?x=1" }, "query or fragment"},
		{"no host", func(c *scm.Config) { c.WebsiteURL = "https://" }, "has no host"},
		{"bbs without project", func(c *scm.Config) { c.Kind = scm.BitbucketServer }, "needs project_key"},
		{"bbs bad project", func(c *scm.Config) { c.Kind, c.ProjectKey = scm.BitbucketServer, "a b" }, "needs project_key"},
	} {
		cfg := ok
		tc.edit(&cfg)
		_, err := scm.New(cfg, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("%s: the error quotes the password: %v", tc.name, err)
		}
	}
	for _, cfg := range []scm.Config{ok, {Kind: scm.BitbucketServer, Mode: scm.ModeAPI, WebsiteURL: "https://bb.example/ctx/", ProjectKey: "PROJ"},
		{Kind: scm.Gitea, WebsiteURL: "http://127.0.0.1:3000"}} {
		if _, err := scm.New(cfg, nil); err != nil {
			t.Errorf("New(%+v): %v", cfg, err)
		}
	}
}

// TestUnreachable: a provider that does not answer is ErrUnavailable, and
// the error names neither the token nor the Authorization header.
func TestUnreachable(t *testing.T) {
	f := newFake(t, scm.GitHub)
	url := f.srv.URL
	f.srv.Close()
	p, err := scm.New(scm.Config{Kind: scm.GitHub, WebsiteURL: url, APIURL: url + "/api/v3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Client(fakeToken).CurrentUser(context.Background())
	if !errors.Is(err, scm.ErrUnavailable) || strings.Contains(err.Error(), fakeToken) || strings.Contains(err.Error(), "Bearer") {
		t.Fatalf("CurrentUser of a closed server: %v", err)
	}
	if err := p.Check(context.Background()); !errors.Is(err, scm.ErrUnavailable) {
		t.Fatalf("Check of a closed server: %v", err)
	}
}

// TestNextPageElsewhere: a next-page link to another host is refused, so
// the token never leaves the configured API.
func TestNextPageElsewhere(t *testing.T) {
	f, p := fakeProvider(t, scm.GitHub, "", nil)
	f.mu.Lock()
	f.mux = http.NewServeMux()
	f.mux.HandleFunc("GET /api/v3/user", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"login": fakeUser})
	})
	f.mux.HandleFunc("GET /api/v3/user/orgs", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", `<https://evil.example/api/v3/user/orgs?page=2>; rel="next"`)
		writeJSON(w, 200, []any{map[string]any{"login": "acme"}})
	})
	f.mu.Unlock()
	_, err := p.Client(fakeToken).Owners(context.Background())
	if !errors.Is(err, scm.ErrInvalid) || !strings.Contains(err.Error(), "evil.example") {
		t.Fatalf("Owners with a foreign next page: %v", err)
	}
}
