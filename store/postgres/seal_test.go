package postgres_test

import (
	"bytes"
	"context"
	"testing"

	"gitserver/store"
	"gitserver/store/postgres"
	"gitserver/store/postgres/pgtest"
	"gitserver/store/storetest"
)

// TestMirrorSecretsSealed: the database holds neither the deploy key
// nor the webhook secret in clear, and another key cannot open them.
func TestMirrorSecretsSealed(t *testing.T) {
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
	key := []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nVERYSECRETKEYMATERIAL\n-----END OPENSSH PRIVATE KEY-----\n")
	secret := "WEBHOOKSECRETVALUE0123"
	r, m, err := s.CreateMirror(ctx, store.NewRepo{OwnerID: u.ID, Name: "app", Visibility: store.Public}, store.NewMirror{
		URL: "git@h:o/r.git", PublicKey: "ssh-ed25519 AAAA", PrivateKey: key, KnownHosts: "h ssh-ed25519 AAAA",
		WebhookSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.PrivateKey, key) || m.WebhookSecret != secret {
		t.Fatal("secrets do not round-trip")
	}
	noneInClear(t, s, "VERYSECRETKEYMATERIAL", secret)
	s.Close()
	other, err := postgres.Open(ctx, path, postgres.Options{Sealer: storetest.NewSealer(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, err = other.MirrorByRepo(ctx, r.ID)
	if err == nil || bytes.Contains([]byte(err.Error()), []byte("VERYSECRET")) {
		t.Fatalf("another key opened the secrets: %v", err)
	}
}

// noneInClear fails t if any stored value of any table holds one of
// secrets, as read back raw through the store's own dump (the database's
// files are the server's, not the test's to read: a check of files named
// by the URL would read nothing and could never fail).
func noneInClear(t *testing.T, s *postgres.DB, secrets ...string) {
	t.Helper()
	rows := 0
	_, err := s.Dump(context.Background(), func(table string, row store.Row) error {
		rows++
		for col, v := range row {
			var b []byte
			switch v := v.(type) {
			case string:
				b = []byte(v)
			case []byte:
				b = v
			}
			for _, sec := range secrets {
				if bytes.Contains(b, []byte(sec)) {
					t.Errorf("%s.%s holds %q in clear", table, col, sec)
				}
			}
		}
		return nil
	})
	if err != nil || rows == 0 {
		t.Fatalf("dump: %d rows, %v", rows, err)
	}
}
