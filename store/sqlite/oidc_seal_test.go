package sqlite_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gitserver/store"
	"gitserver/store/sqlite"
	"gitserver/store/storetest"
)

// TestOIDCSecretsSealed: the database file holds neither an OIDC refresh
// token nor a pending sign-in's PKCE verifier in clear; they round-trip,
// the key rotation re-seals them, and another key opens neither.
func TestOIDCSecretsSealed(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{Sealer: storetest.NewSealer(t)})
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{"OIDCREFRESHTOKEN01", "OIDCPKCEVERIFIER02", "OIDCREFRESHTOKEN03"}
	a, err := s.CreateOIDCUser(ctx, store.NewOIDCUser{Name: "alice", Issuer: "https://idp.example.test", Subject: "s1", RefreshToken: secrets[0]})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOIDCState(ctx, store.OIDCState{State: "st", Nonce: "n", Verifier: secrets[1], ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	n, err := s.ResealAll(ctx, func(sealed, aad []byte) ([]byte, error) { return sealed, nil })
	if err != nil || n != 2 {
		t.Fatalf("ResealAll re-sealed %d values (%v), want 2", n, err)
	}
	if l, err := s.OIDCLinkOf(ctx, a.ID); err != nil || l.RefreshToken != secrets[0] {
		t.Fatalf("round trip: %+v %v", l, err)
	}
	if ok, err := s.SetOIDCRefreshToken(ctx, a.ID, 0, secrets[2]); err != nil || !ok {
		t.Fatalf("SetOIDCRefreshToken: %v %v", ok, err)
	}
	s.Close()
	for _, f := range []string{path, path + "-wal"} {
		b, _ := os.ReadFile(f)
		for _, sec := range secrets {
			if bytes.Contains(b, []byte(sec)) {
				t.Fatalf("%s holds %s in clear", filepath.Base(f), sec)
			}
		}
	}
	other, err := sqlite.Open(ctx, path, sqlite.Options{Sealer: storetest.NewSealer(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.OIDCLinkOf(ctx, a.ID); err == nil {
		t.Fatal("another key opened the refresh token")
	}
	if _, err := other.ConsumeOIDCState(ctx, "st"); err == nil {
		t.Fatal("another key opened the verifier")
	}
}
