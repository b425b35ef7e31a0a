package postgres_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"gitserver/store"
	"gitserver/store/postgres"
	"gitserver/store/postgres/pgtest"
)

// testSealer is AES-256-GCM under a random key (gitserver/seal is the real
// one, with a key file).
type testSealer struct{ aead cipher.AEAD }

func newTestSealer(t *testing.T) testSealer {
	key := make([]byte, 32)
	rand.Read(key)
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return testSealer{g}
}

func (s testSealer) Seal(p, aad []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, p, aad), nil
}

func (s testSealer) Open(c, aad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(c) < n {
		return nil, errors.New("short")
	}
	return s.aead.Open(nil, c[:n], c[n:], aad)
}

// TestMirrorSecretsSealed: the database file holds neither the deploy key
// nor the webhook secret in clear, and another key cannot open them.
func TestMirrorSecretsSealed(t *testing.T) {
	ctx := context.Background()
	path := pgtest.Start(t)
	s, err := postgres.Open(ctx, path, postgres.Options{Sealer: newTestSealer(t)})
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
	other, err := postgres.Open(ctx, path, postgres.Options{Sealer: newTestSealer(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, err = other.MirrorByRepo(ctx, r.ID)
	if err == nil || bytes.Contains([]byte(err.Error()), []byte("VERYSECRET")) {
		t.Fatalf("another key opened the secrets: %v", err)
	}
}
