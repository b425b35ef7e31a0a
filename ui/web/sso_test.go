package web

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/coreos/go-oidc/v3/oidc/oidctest"

	"gitserver/store"
	"gitserver/ui/oidc"
)

// revokingIdP is a provider (discovery and keys from go-oidc's oidctest)
// whose token endpoint refuses every refresh for good (invalid_grant): every
// user has left.
func revokingIdP(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	disc := &oidctest.Server{PublicKeys: []oidctest.PublicKey{{PublicKey: key.Public(), KeyID: "k1", Algorithm: gooidc.RS256}}}
	mux := http.NewServeMux()
	mux.Handle("/.well-known/openid-configuration", disc)
	mux.Handle("/keys", disc)
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_grant"}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	disc.SetIssuer(srv.URL)
	return srv.URL
}

// TestSweepGrantsChecksEveryDueUser: one sweep checks every linked user
// whose check is due, however many there are: the limit is the size of a
// batch, not the number of users a sweep (once per refresh interval)
// reaches, or leavers past the first batch would keep their git access
// for several intervals.
func TestSweepGrantsChecksEveryDueUser(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	issuer := revokingIdP(t)
	client, err := oidc.New(oidc.Config{Issuer: issuer, ClientID: "c", ClientSecret: "s", RedirectURL: "http://git.example.test/oidc/callback"})
	if err != nil {
		t.Fatal(err)
	}
	e.pages.SSO = &SSO{Client: client, ProviderName: "IdP", RefreshInterval: time.Millisecond}
	names := []string{"alice", "bob", "carol"}
	for _, name := range names {
		if _, err := e.store.LinkOIDCUser(ctx, store.NewOIDCUser{Name: name, Issuer: issuer, Subject: "sub-" + name}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.OIDCSignedIn(ctx, e.users[name].ID, "rt-"+name, nil); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(5 * time.Millisecond) // every check is due

	n, err := e.pages.SweepGrants(ctx, 2)
	if err != nil || n != len(names) {
		t.Fatalf("SweepGrants(limit 2) = %d, %v; want all %d leavers disabled", n, err, len(names))
	}
	for _, name := range names {
		if a, err := e.store.UserByName(ctx, name); err != nil || !a.Disabled {
			t.Errorf("%s after the sweep: %+v, %v; want disabled", name, a, err)
		}
	}
}

// TestLeaverWhoIsTheOnlyAdmin: a leaver who is the only enabled admin is
// not disabled (someone must administer the server; the admin CLI can
// give the built-in admin a password), but every credential of theirs
// stops all the same: password, tokens, SSH keys and sessions.
func TestLeaverWhoIsTheOnlyAdmin(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	issuer := revokingIdP(t)
	client, err := oidc.New(oidc.Config{Issuer: issuer, ClientID: "c", ClientSecret: "s", RedirectURL: "http://git.example.test/oidc/callback"})
	if err != nil {
		t.Fatal(err)
	}
	e.pages.SSO = &SSO{Client: client, ProviderName: "IdP", RefreshInterval: time.Millisecond}
	dora, err := e.store.CreateUser(ctx, "dora", "password-dora", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.LinkOIDCUser(ctx, store.NewOIDCUser{Name: "dora", Issuer: issuer, Subject: "sub-dora"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.OIDCSignedIn(ctx, dora.ID, "rt-dora", nil); err != nil {
		t.Fatal(err)
	}
	tok, _, err := e.store.CreateToken(ctx, dora.ID, "ci", []store.Scope{store.ScopeRepoRead})
	if err != nil {
		t.Fatal(err)
	}
	pk, err := store.ParseSSHKey(testKey1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.AddKey(ctx, store.NewKey{UserID: dora.ID, Title: "laptop", Fingerprint: pk.Fingerprint, PublicKey: pk.PublicKey}); err != nil {
		t.Fatal(err)
	}
	sid, _, err := e.store.CreateSession(ctx, dora.ID)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // the check is due

	if n, err := e.pages.SweepGrants(ctx, 10); err != nil || n != 1 {
		t.Fatalf("SweepGrants = %d, %v; want the leaver counted", n, err)
	}
	if a, err := e.store.UserByName(ctx, "dora"); err != nil || !a.IsAdmin {
		t.Fatalf("dora: %+v, %v", a, err)
	}
	if _, err := e.store.CheckPassword(ctx, "dora", "password-dora"); !errors.Is(err, store.ErrBadCredentials) {
		t.Errorf("the leaver's password: %v, want refused", err)
	}
	if _, _, err := e.store.CheckToken(ctx, "dora", tok); !errors.Is(err, store.ErrBadCredentials) {
		t.Errorf("the leaver's token: %v, want refused", err)
	}
	if _, err := e.store.KeyByFingerprint(ctx, pk.Fingerprint); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the leaver's SSH key: %v, want gone", err)
	}
	if _, _, err := e.store.SessionByID(ctx, sid); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the leaver's session: %v, want ended", err)
	}
}

// TestSSOStartsThrottled: /oidc/login stores a pending sign-in for anyone
// who asks, so one client's starts are bounded (ssoStartLimit per
// ssoStartWindow); past the bound it gets 429 with Retry-After and nothing
// is stored, while another client still starts sign-ins.
func TestSSOStartsThrottled(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	client, err := oidc.New(oidc.Config{Issuer: revokingIdP(t), ClientID: "c", ClientSecret: "s", RedirectURL: "http://git.example.test/oidc/callback"})
	if err != nil {
		t.Fatal(err)
	}
	e.pages.SSO = &SSO{Client: client, ProviderName: "IdP"}
	start := func(ip string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/oidc/login", nil)
		r.RemoteAddr = ip + ":40000"
		w := httptest.NewRecorder()
		e.pages.ssoStart(w, r)
		return w
	}
	consume := func(w *httptest.ResponseRecorder) bool {
		for _, c := range w.Result().Cookies() {
			if c.Name == e.pages.cookieName(ssoCookie) && c.Value != "" {
				_, err := e.store.ConsumeOIDCState(ctx, c.Value)
				return err == nil
			}
		}
		return false
	}
	for i := range ssoStartLimit {
		if w := start("192.0.2.1"); w.Code != http.StatusSeeOther || (i == 0 && !consume(w)) {
			t.Fatalf("start %d = %d, want 303 and a stored sign-in", i+1, w.Code)
		}
	}
	w := start("192.0.2.1")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" || consume(w) {
		t.Fatalf("start past the limit = %d (Retry-After %q), want 429 and nothing stored", w.Code, w.Header().Get("Retry-After"))
	}
	if w := start("198.51.100.7"); w.Code != http.StatusSeeOther || !consume(w) {
		t.Fatalf("another client's start = %d, want 303", w.Code)
	}
}
