package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/coreos/go-oidc/v3/oidc/oidctest"
)

// ID tokens no real provider would issue (for another audience, expired,
// from another issuer, signed with another key, for another nonce) come
// from a test provider that signs its own: go-oidc's oidctest serves its
// discovery document and keys; /auth and /token here complete the
// authorization code flow with whatever token the case mints.

type fakeIdP struct {
	t   *testing.T
	srv *httptest.Server
	key *rsa.PrivateKey

	mu   sync.Mutex
	mint func(nonce string) string // the ID token /token answers with
	// codes counts the code exchanges (a case refused before the token
	// endpoint makes none).
	codes int
}

const fakeClientID = "gitserver-test"

// newFakeIdP starts a provider; discoveryIssuer is the issuer its
// discovery document names ("": its own URL).
func newFakeIdP(t *testing.T, discoveryIssuer string) *fakeIdP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeIdP{t: t, key: key}
	disc := &oidctest.Server{PublicKeys: []oidctest.PublicKey{{PublicKey: key.Public(), KeyID: "k1", Algorithm: oidc.RS256}}}
	mux := http.NewServeMux()
	mux.Handle("/.well-known/openid-configuration", disc)
	mux.Handle("/keys", disc)
	mux.HandleFunc("/auth", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != fakeClientID || q.Get("code_challenge_method") != "S256" {
			http.Error(w, "bad authorization request", http.StatusBadRequest)
			return
		}
		// The code carries the nonce to the token endpoint.
		cb := q.Get("redirect_uri") + "?" + url.Values{"code": {"c." + q.Get("nonce")}, "state": {q.Get("state")}}.Encode()
		http.Redirect(w, r, cb, http.StatusFound)
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		user, pass, _ := r.BasicAuth()
		if user == "" {
			user, pass = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		if user != fakeClientID || pass != "fake-secret" || r.PostForm.Get("code_verifier") == "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		f.mu.Lock()
		f.codes++
		mint := f.mint
		f.mu.Unlock()
		nonce := strings.TrimPrefix(r.PostForm.Get("code"), "c.")
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 3600,
			"refresh_token": "rt", "id_token": mint(nonce)})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	if discoveryIssuer == "" {
		discoveryIssuer = f.srv.URL
	}
	disc.SetIssuer(discoveryIssuer)
	return f
}

// token signs claims with key (the provider's own unless another).
func (f *fakeIdP) token(key *rsa.PrivateKey, claims map[string]any) string {
	b, _ := json.Marshal(claims)
	return oidctest.SignIDToken(key, "k1", oidc.RS256, string(b))
}

// claims are a valid ID token's for nonce, with changes.
func (f *fakeIdP) claims(nonce, user string, change func(map[string]any)) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": f.srv.URL, "aud": fakeClientID, "sub": "sub-" + user, "nonce": nonce,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"preferred_username": user, "email": user + "@example.test", "email_verified": true}
	if change != nil {
		change(c)
	}
	return c
}

// startWith starts gitserver against the provider at issuer.
func startWithIdP(t *testing.T, issuer string, extra ...string) *TestServer {
	t.Helper()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	args := append([]string{"--http-addr", fmt.Sprintf("127.0.0.1:%d", port), "--base-url", base,
		"--oidc-issuer", issuer, "--oidc-client-id", fakeClientID, "--oidc-provider-name", "Test IdP"}, extra...)
	s := StartServer(t, WithArgs(args...), WithEnv("GITSERVER_OIDC_CLIENT_SECRET=fake-secret"))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gitserver output:\n%s", s.Output())
		}
	})
	return s
}

// fakeSignIn runs a sign-in through the fake provider and returns the
// callback's answer.
func fakeSignIn(t *testing.T, s *TestServer) (int, string, string) {
	t.Helper()
	hc := noFollow()
	code, body, h := get(t, hc, s.URL+"/oidc/login")
	if code != http.StatusSeeOther {
		return code, body, h.Get("Location")
	}
	code, body, h = get(t, hc, h.Get("Location"))
	if code != http.StatusFound {
		t.Fatalf("fake /auth = %d\n%s", code, body)
	}
	code, body, h = get(t, hc, h.Get("Location"))
	return code, body, h.Get("Location")
}

// TestOIDCForgedTokens: ID tokens for another audience or authorized
// party, expired, from
// another issuer, signed with another key, for another nonce, a provider
// whose discovery names another issuer, names that are not account names,
// and an e-mail outside the allowed domains: each refused with a clear
// page, nothing created. A valid token from the same provider signs in
// (so the refusals are the checks', not the set-up's).
func TestOIDCForgedTokens(t *testing.T) {
	idp := newFakeIdP(t, "")
	s := startWithIdP(t, idp.srv.URL, "--oidc-allowed-domains", "example.test")
	db := openStore(t, s)
	ctx := context.Background()
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		user   string
		key    *rsa.PrivateKey
		change func(map[string]any)
		status int
		msg    string
	}{
		{"another audience", "aud", nil, func(c map[string]any) { c["aud"] = "someone-else" }, http.StatusForbidden, "signature, issuer or audience"},
		{"issued to another party", "azp", nil, func(c map[string]any) { c["aud"], c["azp"] = []any{fakeClientID, "someone-else"}, "someone-else" }, http.StatusForbidden, "issued to another client (azp)"},
		{"several audiences, no party", "noazp", nil, func(c map[string]any) { c["aud"] = []any{fakeClientID, "someone-else"} }, http.StatusForbidden, "issued to another client (azp)"},
		{"expired", "exp", nil, func(c map[string]any) {
			c["iat"], c["exp"] = time.Now().Add(-time.Hour).Unix(), time.Now().Add(-30*time.Minute).Unix()
		}, http.StatusForbidden, "ID token has expired"},
		{"unknown issuer", "iss", nil, func(c map[string]any) { c["iss"] = "https://idp.attacker.test" }, http.StatusForbidden, "signature, issuer or audience"},
		{"another key", "key", otherKey, nil, http.StatusForbidden, "signature, issuer or audience"},
		{"another nonce", "nonce", nil, func(c map[string]any) { c["nonce"] = "n-" + c["nonce"].(string) }, http.StatusForbidden, "nonce mismatch"},
		{"no nonce", "nononce", nil, func(c map[string]any) { delete(c, "nonce") }, http.StatusForbidden, "nonce mismatch"},
		{"an invalid name", "-bad", nil, func(c map[string]any) { c["preferred_username"] = "bad name" }, http.StatusBadRequest, `names you "bad name", which is not a valid account name`},
		{"a reserved name", "oidc", nil, nil, http.StatusBadRequest, `names you "oidc", which is not a valid account name`},
		{"a reserved e-mail name", "login", nil, func(c map[string]any) { c["preferred_username"] = "Login@example.test" }, http.StatusBadRequest, `names you "Login", which is not a valid account name`},
		{"a domain not allowed", "eve", nil, func(c map[string]any) { c["email"] = "eve@attacker.test" }, http.StatusForbidden, "not in a domain allowed"},
		{"an unverified e-mail", "ulla", nil, func(c map[string]any) { c["email_verified"] = false }, http.StatusForbidden, "not in a domain allowed"},
	} {
		idp.mu.Lock()
		idp.mint = func(nonce string) string {
			key := idp.key
			if tc.key != nil {
				key = tc.key
			}
			return idp.token(key, idp.claims(nonce, tc.user, tc.change))
		}
		idp.mu.Unlock()
		code, body, _ := fakeSignIn(t, s)
		refusedPage(t, tc.name, code, body, tc.status, tc.msg)
		if n, _ := db.CountUsers(ctx); n != 1 {
			t.Fatalf("%s: %d users, want only admin", tc.name, n)
		}
		if _, _, err := db.OIDCUser(ctx, idp.srv.URL, "sub-"+tc.user); err == nil {
			t.Fatalf("%s: an identity was linked", tc.name)
		}
	}

	// The e-mail's local part names the account when the token has no
	// username claim; a valid token signs in.
	idp.mu.Lock()
	idp.mint = func(nonce string) string {
		return idp.token(idp.key, idp.claims(nonce, "fay", func(c map[string]any) { c["preferred_username"] = "" }))
	}
	idp.mu.Unlock()
	if code, body, loc := fakeSignIn(t, s); code != http.StatusSeeOther || loc != "/" {
		t.Fatalf("a valid token = %d (%q)\n%s", code, loc, body)
	}
	if a, _, err := db.OIDCUser(ctx, idp.srv.URL, "sub-fay"); err != nil || a.Name != "fay" {
		t.Fatalf("fay: %+v, %v", a, err)
	}

	// Several audiences with this client as the authorized party: fine.
	idp.mu.Lock()
	idp.mint = func(nonce string) string {
		return idp.token(idp.key, idp.claims(nonce, "gil", func(c map[string]any) { c["aud"], c["azp"] = []any{fakeClientID, "api"}, fakeClientID }))
	}
	idp.mu.Unlock()
	if code, body, loc := fakeSignIn(t, s); code != http.StatusSeeOther || loc != "/" {
		t.Fatalf("several audiences, azp this client = %d (%q)\n%s", code, loc, body)
	}

	// Linking allowed: never the built-in admin (break glass).
	s3 := startWithIdP(t, idp.srv.URL, "--oidc-allow-linking")
	idp.mu.Lock()
	idp.mint = func(nonce string) string { return idp.token(idp.key, idp.claims(nonce, "admin", nil)) }
	idp.mu.Unlock()
	code, body, _ := fakeSignIn(t, s3)
	refusedPage(t, "linking the built-in admin", code, body, http.StatusConflict, `An account named "admin" exists here already`)
	if _, err := openStore(t, s3).OIDCLinkOf(ctx, 1); err == nil {
		t.Fatal("the built-in admin was linked")
	}
	// Linking allowed: an e-mail the provider has not verified names no
	// account, so it cannot take over the local account of that name.
	lena := s3.CreateUser("lena", false)
	idp.mu.Lock()
	idp.mint = func(nonce string) string {
		return idp.token(idp.key, idp.claims(nonce, "lena", func(c map[string]any) {
			delete(c, "preferred_username")
			c["email"], c["email_verified"] = "lena@attacker.test", false
		}))
	}
	idp.mu.Unlock()
	code, body, _ = fakeSignIn(t, s3)
	refusedPage(t, "an unverified e-mail naming a local account", code, body, http.StatusForbidden, "your e-mail address is not verified")
	if a, _, err := openStore(t, s3).OIDCUser(ctx, idp.srv.URL, "sub-lena"); err == nil {
		t.Fatalf("an unverified e-mail linked %s", a.Name)
	}
	if !credWorks(t, s3, Cred{"lena", lena}) {
		t.Fatal("the local account's password stopped working")
	}
	// The name matters only to a first sign-in: an identity linked
	// already signs in whatever its e-mail's state (the identity is the
	// issuer and subject, never the name).
	for i, verified := range []bool{true, false} {
		idp.mu.Lock()
		idp.mint = func(nonce string) string {
			return idp.token(idp.key, idp.claims(nonce, "hal", func(c map[string]any) {
				delete(c, "preferred_username")
				c["email_verified"] = verified
			}))
		}
		idp.mu.Unlock()
		if code, body, loc := fakeSignIn(t, s3); code != http.StatusSeeOther || loc != "/" {
			t.Fatalf("hal's sign-in %d (email_verified %v) = %d (%q)\n%s", i+1, verified, code, loc, body)
		}
	}
	if a, _, err := openStore(t, s3).OIDCUser(ctx, idp.srv.URL, "sub-hal"); err != nil || a.Name != "hal" {
		t.Fatalf("hal: %+v, %v", a, err)
	}

	// --oidc-admin-claim written with spaces around "=" (as a config file
	// line "oidc-admin-claim = groups = admins" gives it): the value is
	// trimmed as the name is, else no one would match and every admin
	// would be demoted at the next sign-in.
	s4 := startWithIdP(t, idp.srv.URL, "--oidc-admin-claim", "groups = staff-admins")
	idp.mu.Lock()
	idp.mint = func(nonce string) string {
		return idp.token(idp.key, idp.claims(nonce, "gus", func(c map[string]any) { c["groups"] = []any{"staff", "staff-admins"} }))
	}
	idp.mu.Unlock()
	if code, body, loc := fakeSignIn(t, s4); code != http.StatusSeeOther || loc != "/" {
		t.Fatalf("gus = %d (%q)\n%s", code, loc, body)
	}
	if a, _, err := openStore(t, s4).OIDCUser(ctx, idp.srv.URL, "sub-gus"); err != nil || !a.IsAdmin {
		t.Fatalf("gus in staff-admins: %+v, %v; want an admin", a, err)
	}

	// A provider whose discovery document names another issuer.
	rogue := newFakeIdP(t, "https://idp.attacker.test")
	s2 := startWithIdP(t, rogue.srv.URL)
	code, body, _ = fakeSignIn(t, s2)
	refusedPage(t, "discovery of another issuer", code, body, http.StatusBadGateway, "did not describe itself correctly")
	if rogue.codes != 0 {
		t.Fatal("a code was exchanged with a provider of another issuer")
	}
}
