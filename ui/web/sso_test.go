package web

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
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
