package postgres_test

import (
	"context"
	"testing"
	"time"

	"gitserver/store"
	"gitserver/store/postgres"
	"gitserver/store/postgres/pgtest"
	"gitserver/store/storetest"
)

// TestSCMSecretsSealed: the database holds no SCM secret in clear
// (client secret, configuration access token, user tokens, PKCE verifier),
// they round-trip, a rotation re-seals them, and another key opens none.
func TestSCMSecretsSealed(t *testing.T) {
	ctx := context.Background()
	path := pgtest.Start(t)
	s, err := postgres.Open(ctx, path, postgres.Options{Sealer: storetest.NewSealer(t)})
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateUser(ctx, "alice", "password-alice", false)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{"CLIENTSECRETVALUE01", "CONFIGPATVALUE02", "USERACCESSTOKEN03", "USERREFRESHTOKEN04", "PKCEVERIFIERVALUE05", "BBSERVERPAT06"}
	c, err := s.CreateSCMConfig(ctx, store.SCMConfig{Name: "g", Kind: "gitea", Mode: "webhook", WebsiteURL: "https://g", APIURL: "https://g/api", SSHURL: "ssh://git@g",
		ClientID: "id", ClientSecret: secrets[0]})
	if err != nil {
		t.Fatal(err)
	}
	bb, err := s.CreateSCMConfig(ctx, store.SCMConfig{Name: "bb", Kind: store.SCMBitbucketServer, Mode: "api", WebsiteURL: "https://bb", APIURL: "https://bb", SSHURL: "ssh://git@bb",
		ProjectKey: "P", AccessToken: secrets[1]})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutSCMConnection(ctx, store.SCMConnection{UserID: u.ID, ConfigID: c.ID, AccessToken: secrets[2], RefreshToken: secrets[3]}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutSCMConnection(ctx, store.SCMConnection{UserID: u.ID, ConfigID: bb.ID, AccessToken: secrets[5]}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOAuthState(ctx, store.OAuthState{State: "st", UserID: u.ID, ConfigID: c.ID, Verifier: secrets[4], ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	n, err := s.ResealAll(ctx, func(sealed, aad []byte) ([]byte, error) { return sealed, nil })
	if err != nil || n != 6 {
		t.Fatalf("ResealAll re-sealed %d values (%v), want 6", n, err)
	}
	if got, err := s.SCMConnection(ctx, u.ID, c.ID); err != nil || got.AccessToken != secrets[2] || got.RefreshToken != secrets[3] {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	noneInClear(t, s, secrets...)
	s.Close()
	other, err := postgres.Open(ctx, path, postgres.Options{Sealer: storetest.NewSealer(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.SCMConfigByID(ctx, c.ID); err == nil {
		t.Fatal("another key opened the client secret")
	}
	if _, err := other.SCMConnection(ctx, u.ID, c.ID); err == nil {
		t.Fatal("another key opened the tokens")
	}
}
