package sqlite_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"gitserver/store"
	"gitserver/store/sqlite"
	"gitserver/store/storetest"
)

// TestMirrorSecretsSealed: the database file holds neither the deploy key
// nor the webhook secret in clear, and another key cannot open them.
func TestMirrorSecretsSealed(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{Sealer: storetest.NewSealer(t)})
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
	s.Close()
	for _, f := range []string{path, path + "-wal"} {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte("VERYSECRETKEYMATERIAL")) || bytes.Contains(b, []byte(secret)) {
			t.Fatalf("%s holds a secret in clear", filepath.Base(f))
		}
	}
	other, err := sqlite.Open(ctx, path, sqlite.Options{Sealer: storetest.NewSealer(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, err = other.MirrorByRepo(ctx, r.ID)
	if err == nil || bytes.Contains([]byte(err.Error()), []byte("VERYSECRET")) {
		t.Fatalf("another key opened the secrets: %v", err)
	}
}
