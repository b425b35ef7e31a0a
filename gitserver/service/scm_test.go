package service_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"gitserver/gitserver/scm"
	"gitserver/gitserver/service"
	"gitserver/store"
)

// oauthServer is an OAuth 2.0 provider's token endpoint: it checks the
// client secret and the PKCE verifier of each code, and refreshes.
type oauthServer struct {
	*httptest.Server
	mu         sync.Mutex
	challenges map[string]string // code -> S256 challenge
	refreshes  int
	expiresIn  int
	n          int
	revoked    []string // the tokens fakeProvider.Revoke was given
	revokeErr  error    // what Revoke answers
}

func newOAuthServer(t *testing.T) *oauthServer {
	o := &oauthServer{challenges: map[string]string{}, expiresIn: 3600}
	o.Server = httptest.NewServer(http.HandlerFunc(o.token))
	t.Cleanup(o.Close)
	return o
}

// authorize is what the provider does when the user approves: a code
// bound to the challenge.
func (o *oauthServer) authorize(t *testing.T, authURL string) (code, state string) {
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("client_id") != "cid" {
		t.Fatalf("authorize URL without PKCE or state: %s", authURL)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n++
	code = fmt.Sprintf("code-%d", o.n)
	o.challenges[code] = q.Get("code_challenge")
	return code, q.Get("state")
}

func (o *oauthServer) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	o.mu.Lock()
	defer o.mu.Unlock()
	fail := func(code string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": code})
	}
	if r.Form.Get("client_id") != "cid" || r.Form.Get("client_secret") != "csecret" {
		fail("invalid_client")
		return
	}
	switch r.Form.Get("grant_type") {
	case "authorization_code":
		ch, ok := o.challenges[r.Form.Get("code")]
		delete(o.challenges, r.Form.Get("code"))
		sum := sha256.Sum256([]byte(r.Form.Get("code_verifier")))
		if !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != ch {
			fail("invalid_grant")
			return
		}
	case "refresh_token":
		if !strings.HasPrefix(r.Form.Get("refresh_token"), "rt-") {
			fail("invalid_grant")
			return
		}
		o.refreshes++
	default:
		fail("unsupported_grant_type")
		return
	}
	o.n++
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprintf("at-%d", o.n), "refresh_token": fmt.Sprintf("rt-%d", o.n),
		"token_type": "bearer", "expires_in": o.expiresIn})
}

// fakeProvider is an scm.Provider over the oauthServer.
type fakeProvider struct {
	cfg      scm.Config
	oauth    *oauthServer
	checkErr error
}

func (p *fakeProvider) Kind() scm.Kind { return p.cfg.Kind }
func (p *fakeProvider) OAuth2(redirectURL string) *oauth2.Config {
	if p.cfg.Kind == scm.BitbucketServer {
		return nil
	}
	return &oauth2.Config{ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret, RedirectURL: redirectURL, Scopes: []string{"repo"},
		Endpoint: oauth2.Endpoint{AuthURL: p.cfg.WebsiteURL + "/authorize", TokenURL: p.oauth.URL + "/token", AuthStyle: oauth2.AuthStyleInParams}}
}
func (p *fakeProvider) Check(ctx context.Context) error { return p.checkErr }
func (p *fakeProvider) Client(tok string) scm.Client    { return &fakeClient{tok: tok} }
func (p *fakeProvider) Revoke(ctx context.Context, access, refresh string) error {
	p.oauth.mu.Lock()
	defer p.oauth.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		return errors.New("Revoke without a deadline")
	}
	p.oauth.revoked = append(p.oauth.revoked, access, refresh)
	return p.oauth.revokeErr
}

type fakeClient struct {
	scm.Client // the rest is not used here
	tok        string
}

func (c *fakeClient) CurrentUser(ctx context.Context) (scm.Owner, error) {
	if c.tok == "bad" {
		return scm.Owner{}, fmt.Errorf("%w: 401 Unauthorized: token revoked", scm.ErrUnauthorized)
	}
	return scm.Owner{Name: "octo-" + c.tok, Kind: "user"}, nil
}
func (c *fakeClient) Owners(ctx context.Context) ([]scm.Owner, error) {
	return []scm.Owner{{Name: "octo", Kind: "user"}, {Name: "team", Kind: "org"}, {Name: "other", Kind: "org"}}, nil
}

type fakeHostKeys struct{}

func (fakeHostKeys) ScanHostKeys(ctx context.Context, sshURL string) (string, []string, error) {
	return "scm.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost\n", []string{"SHA256:pinned"}, nil
}

func scmSetup(t *testing.T) (*fixture, *oauthServer, *error) {
	f := setup(t)
	o := newOAuthServer(t)
	var checkErr error
	f.svc.SCM = func(c scm.Config) (scm.Provider, error) {
		return &fakeProvider{cfg: c, oauth: o, checkErr: checkErr}, nil
	}
	f.svc.HostKeys = fakeHostKeys{}
	f.svc.BaseURL = "http://gitserver.test"
	return f, o, &checkErr
}

func sp(s string) *string { return &s }

func giteaInput() service.SCMConfigInput {
	return service.SCMConfigInput{Name: sp("gitea"), Kind: sp("gitea"), WebsiteURL: sp("https://scm.example"), APIURL: sp("https://scm.example/api/v1"),
		SSHURL: sp("ssh://git@scm.example:22"), ClientID: sp("cid"), ClientSecret: sp("csecret"), AllowedOwners: &[]string{"octo", "team"}}
}

func TestSCMConfigs(t *testing.T) {
	f, _, checkErr := scmSetup(t)
	ctx := f.ctx
	admin := user(f.admin)
	if _, err := f.svc.CreateSCMConfig(ctx, user(f.alice), giteaInput()); !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("non-admin: %v", err)
	}
	bad := giteaInput()
	bad.Kind = sp("svn")
	if _, err := f.svc.CreateSCMConfig(ctx, admin, bad); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("unknown kind: %v", err)
	}
	bad = giteaInput()
	bad.Mode = sp("api")
	if _, err := f.svc.CreateSCMConfig(ctx, admin, bad); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("mode on gitea: %v", err)
	}
	bad = giteaInput()
	bad.ClientSecret = nil
	if _, err := f.svc.CreateSCMConfig(ctx, admin, bad); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("no secret: %v", err)
	}
	bad = giteaInput()
	bad.WebsiteURL = sp("ftp://x")
	if _, err := f.svc.CreateSCMConfig(ctx, admin, bad); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad url: %v", err)
	}
	// The provider's answer is reported.
	*checkErr = fmt.Errorf("%w: 401 Unauthorized: bad credentials", scm.ErrUnauthorized)
	_, err := f.svc.CreateSCMConfig(ctx, admin, giteaInput())
	var pe *service.ProviderError
	if !errors.As(err, &pe) || pe.Unavailable() || !strings.Contains(err.Error(), "bad credentials") {
		t.Fatalf("provider refusal: %v", err)
	}
	*checkErr = nil
	c, err := f.svc.CreateSCMConfig(ctx, admin, giteaInput())
	if err != nil || c.Mode != "webhook" || c.HostKeyFingerprints[0] != "SHA256:pinned" || c.ClientSecret != "csecret" {
		t.Fatalf("create: %+v %v", c, err)
	}
	if ev := f.lastEvent(t); ev.Action != "scm.config.create" || strings.Contains(ev.Detail, "csecret") {
		t.Fatalf("audit: %+v", ev)
	}
	// Bitbucket Server: (website_url, project_key) unique.
	bb := service.SCMConfigInput{Name: sp("bb"), Kind: sp("bitbucket-server"), Mode: sp("api"), WebsiteURL: sp("https://bb.example"), APIURL: sp("https://bb.example/rest"),
		SSHURL: sp("ssh://git@bb.example:7999"), ProjectKey: sp("PRJ"), AccessToken: sp("pat")}
	if _, err := f.svc.CreateSCMConfig(ctx, admin, bb); err != nil {
		t.Fatal(err)
	}
	bb.Name = sp("bb2")
	if _, err := f.svc.CreateSCMConfig(ctx, admin, bb); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate project: %v", err)
	}
	// PATCH: only the given fields.
	up, err := f.svc.UpdateSCMConfig(ctx, admin, c.ID, service.SCMConfigInput{AllowedOwners: &[]string{}})
	if err != nil || len(up.AllowedOwners) != 0 || up.ClientSecret != "csecret" {
		t.Fatalf("patch: %+v %v", up, err)
	}
	if _, err := f.svc.UpdateSCMConfig(ctx, admin, c.ID, service.SCMConfigInput{Kind: sp("github")}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("kind change: %v", err)
	}
	// In use: 409 naming the repository, or forced.
	r, _, err := f.db.CreateMirror(ctx, store.NewRepo{OwnerID: f.alice.ID, Name: "app", Visibility: store.Restricted}, store.NewMirror{
		URL: "git@scm.example:octo/app.git", PublicKey: "ssh-ed25519 AAAA", PrivateKey: []byte("k"), KnownHosts: "h ssh-ed25519 AAAA", WebhookSecret: "w"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.LinkMirrorSCMConfig(ctx, r.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.DeleteSCMConfig(ctx, admin, c.ID, false); !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "alice/app") {
		t.Fatalf("delete in use: %v", err)
	}
	if unlinked, err := f.svc.DeleteSCMConfig(ctx, admin, c.ID, true); err != nil || len(unlinked) != 1 {
		t.Fatalf("forced: %v %v", unlinked, err)
	}
	if ev := f.lastEvent(t); ev.Action != "scm.config.delete" || !strings.Contains(ev.Detail, "force") {
		t.Fatalf("audit: %+v", ev)
	}
	// Without adapters.
	f.svc.SCM = nil
	if _, err := f.svc.CreateSCMConfig(ctx, admin, giteaInput()); !errors.Is(err, service.ErrNoSCM) {
		t.Fatalf("no adapters: %v", err)
	}
}

func TestSCMConnectFlow(t *testing.T) {
	f, o, _ := scmSetup(t)
	ctx := f.ctx
	c, err := f.svc.CreateSCMConfig(ctx, user(f.admin), giteaInput())
	if err != nil {
		t.Fatal(err)
	}
	alice := user(f.alice)
	if _, err := f.svc.StartConnect(ctx, alice, c.ID, "https://evil.example/"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("open redirect: %v", err)
	}
	authURL, err := f.svc.StartConnect(ctx, alice, c.ID, "/settings")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(authURL, url.QueryEscape("http://gitserver.test/scm/")) {
		t.Fatalf("no redirect_uri: %s", authURL)
	}
	code, state := o.authorize(t, authURL)
	// Forged state; someone else's state.
	if _, err := f.svc.FinishConnect(ctx, alice, c.ID, service.CallbackInput{Code: code, State: "forged"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("forged state: %v", err)
	}
	back, err := f.svc.FinishConnect(ctx, alice, c.ID, service.CallbackInput{Code: code, State: state})
	if err != nil || back != "/settings" {
		t.Fatalf("callback: %q %v", back, err)
	}
	conn, err := f.db.SCMConnection(ctx, f.alice.ID, c.ID)
	if err != nil || !strings.HasPrefix(conn.AccessToken, "at-") || !strings.HasPrefix(conn.RefreshToken, "rt-") || conn.Login != "octo-"+conn.AccessToken {
		t.Fatalf("connection: %+v %v", conn, err)
	}
	// Replayed.
	if _, err := f.svc.FinishConnect(ctx, alice, c.ID, service.CallbackInput{Code: code, State: state}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("replayed: %v", err)
	}
	// A state of another user is refused (and spent).
	authURL, _ = f.svc.StartConnect(ctx, alice, c.ID, "")
	code, state = o.authorize(t, authURL)
	if _, err := f.svc.FinishConnect(ctx, user(f.admin), c.ID, service.CallbackInput{Code: code, State: state}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("another user's state: %v", err)
	}
	// Denied.
	authURL, _ = f.svc.StartConnect(ctx, alice, c.ID, "")
	_, state = o.authorize(t, authURL)
	_, err = f.svc.FinishConnect(ctx, alice, c.ID, service.CallbackInput{State: state, Error: "access_denied"})
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "denied") {
		t.Fatalf("denied: %v", err)
	}
	// A wrong verifier (a code from another authorization) is the
	// provider's refusal.
	authURL, _ = f.svc.StartConnect(ctx, alice, c.ID, "")
	_, state = o.authorize(t, authURL)
	authURL2, _ := f.svc.StartConnect(ctx, alice, c.ID, "")
	code2, _ := o.authorize(t, authURL2)
	var pe *service.ProviderError
	if _, err := f.svc.FinishConnect(ctx, alice, c.ID, service.CallbackInput{Code: code2, State: state}); !errors.As(err, &pe) || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("wrong verifier: %v", err)
	}

	// Owners, filtered by allowed_owners.
	owners, err := f.svc.SCMOwners(ctx, alice, c.ID)
	if err != nil || len(owners) != 2 || owners[0].Name != "octo" || owners[1].Name != "team" {
		t.Fatalf("owners: %+v %v", owners, err)
	}
	if _, err := f.svc.SCMOwners(ctx, user(f.admin), c.ID); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("owners when not connected: %v", err)
	}
	sums, err := f.svc.SCMConfigsForUser(ctx, alice)
	if err != nil || len(sums) != 1 || !sums[0].Connected {
		t.Fatalf("summaries: %+v %v", sums, err)
	}

	// A token about to expire is refreshed and the new one stored.
	o.mu.Lock()
	o.expiresIn = 60
	o.mu.Unlock()
	authURL, _ = f.svc.StartConnect(ctx, alice, c.ID, "")
	code, state = o.authorize(t, authURL)
	if _, err := f.svc.FinishConnect(ctx, alice, c.ID, service.CallbackInput{Code: code, State: state}); err != nil {
		t.Fatal(err)
	}
	before, _ := f.db.SCMConnection(ctx, f.alice.ID, c.ID)
	o.mu.Lock()
	o.expiresIn = 3600
	o.mu.Unlock()
	cl, err := f.svc.ProviderClient(ctx, f.alice, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := f.db.SCMConnection(ctx, f.alice.ID, c.ID)
	if o.refreshes != 1 || after.AccessToken == before.AccessToken || after.RefreshToken == before.RefreshToken || !after.Expiry.After(before.Expiry) {
		t.Fatalf("refresh: %d refreshes, %+v -> %+v", o.refreshes, before, after)
	}
	if me, _ := cl.CurrentUser(ctx); me.Name != "octo-"+after.AccessToken {
		t.Fatalf("client acts with %q, want the refreshed token", me.Name)
	}
	if _, err := f.svc.ProviderClient(ctx, f.alice, c.ID); err != nil || o.refreshes != 1 {
		t.Fatalf("a fresh token was refreshed again: %d %v", o.refreshes, err)
	}

	// Disconnect revokes the grant (both tokens), then forgets it.
	if err := f.svc.DisconnectSCM(ctx, alice, c.ID); err != nil {
		t.Fatal(err)
	}
	if ev := f.lastEvent(t); ev.Action != "scm.disconnect" || !strings.Contains(ev.Detail, "(revoked)") {
		t.Fatalf("audit: %+v", ev)
	}
	o.mu.Lock()
	if len(o.revoked) != 2 || o.revoked[0] != after.AccessToken || o.revoked[1] != after.RefreshToken {
		t.Fatalf("revoked %q, want the connection's access and refresh tokens", o.revoked)
	}
	o.mu.Unlock()
	if _, err := f.db.SCMConnection(ctx, f.alice.ID, c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("connection after disconnect: %v", err)
	}
	if err := f.svc.DisconnectSCM(ctx, alice, c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("disconnect twice: %v", err)
	}

	// A revocation that fails still forgets the connection.
	authURL, _ = f.svc.StartConnect(ctx, alice, c.ID, "")
	code, state = o.authorize(t, authURL)
	if _, err := f.svc.FinishConnect(ctx, alice, c.ID, service.CallbackInput{Code: code, State: state}); err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	o.revoked, o.revokeErr = nil, fmt.Errorf("%w: 503 down", scm.ErrUnavailable)
	o.mu.Unlock()
	if err := f.svc.DisconnectSCM(ctx, alice, c.ID); err != nil {
		t.Fatalf("disconnect with a failing revocation: %v", err)
	}
	if ev := f.lastEvent(t); ev.Action != "scm.disconnect" || !strings.Contains(ev.Detail, "revocation failed") {
		t.Fatalf("audit: %+v", ev)
	}
	if _, err := f.db.SCMConnection(ctx, f.alice.ID, c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("connection after a failed revocation: %v", err)
	}
	o.mu.Lock()
	if len(o.revoked) != 2 {
		t.Fatalf("revoke not asked: %q", o.revoked)
	}
	o.revokeErr = nil
	o.mu.Unlock()
}

func TestSCMPersonalAccessToken(t *testing.T) {
	f, _, _ := scmSetup(t)
	ctx := f.ctx
	bb, err := f.svc.CreateSCMConfig(ctx, user(f.admin), service.SCMConfigInput{Name: sp("bb"), Kind: sp("bitbucket-server"), WebsiteURL: sp("https://bb.example"),
		APIURL: sp("https://bb.example/rest"), SSHURL: sp("ssh://git@bb.example:7999"), ProjectKey: sp("PRJ"), AccessToken: sp("pat")})
	if err != nil {
		t.Fatal(err)
	}
	alice := user(f.alice)
	if _, err := f.svc.StartConnect(ctx, alice, bb.ID, ""); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("OAuth on bitbucket-server: %v", err)
	}
	var pe *service.ProviderError
	if _, err := f.svc.PutSCMToken(ctx, alice, bb.ID, "bad"); !errors.As(err, &pe) || !strings.Contains(err.Error(), "token revoked") {
		t.Fatalf("bad token: %v", err)
	}
	conn, err := f.svc.PutSCMToken(ctx, alice, bb.ID, "alicepat")
	if err != nil || conn.Login != "octo-alicepat" {
		t.Fatalf("token: %+v %v", conn, err)
	}
	owners, err := f.svc.SCMOwners(ctx, alice, bb.ID)
	if err != nil || len(owners) != 1 || owners[0].Name != "PRJ" || owners[0].Kind != "project" {
		t.Fatalf("owners: %+v %v", owners, err)
	}
}
