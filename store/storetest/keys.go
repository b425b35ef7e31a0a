package storetest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"gitserver/store"
)

// authorizedKey renders pub in authorized_keys form with comment.
func authorizedKey(t *testing.T, pub any, comment string) string {
	t.Helper()
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
	if comment != "" {
		line += " " + comment
	}
	return line
}

func ed25519Key(t *testing.T, comment string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return authorizedKey(t, pub, comment)
}

func rsaKey(t *testing.T, bits int, comment string) string {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return authorizedKey(t, &priv.PublicKey, comment)
}

func testAddKeyIsUniqueEverywhere(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.open(t, nil)
	user := func(name string) store.Account {
		a, err := s.CreateUser(ctx, name, "password-"+name, false)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	alice, bob := user("alice"), user("bob")
	repo := func(owner store.Account, name string) store.Repo {
		r, err := s.CreateRepo(ctx, store.NewRepo{OwnerID: owner.ID, Name: name, Visibility: store.Restricted})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	ap, bp := repo(alice, "p"), repo(bob, "q")
	parse := func(text string) store.ParsedKey {
		pk, err := store.ParseSSHKey(text)
		if err != nil {
			t.Fatal(err)
		}
		return pk
	}
	add := func(nk store.NewKey) (store.Key, error) { return s.AddKey(ctx, nk) }
	userKey := func(u store.Account, pk store.ParsedKey) store.NewKey {
		return store.NewKey{UserID: u.ID, Title: "t", Fingerprint: pk.Fingerprint, PublicKey: pk.PublicKey}
	}
	deployKey := func(r store.Repo, pk store.ParsedKey, ro bool) store.NewKey {
		return store.NewKey{RepoID: r.ID, Title: "d", Fingerprint: pk.Fingerprint, PublicKey: pk.PublicKey, ReadOnly: ro}
	}
	wantExists := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrExists) {
			t.Errorf("%s: %v, want ErrExists", what, err)
		}
	}

	// One key, one owner: a second user, the same user, a deploy key.
	text := ed25519Key(t, "alice@laptop")
	k1 := parse(text)
	ak, err := add(userKey(alice, k1))
	if err != nil {
		t.Fatal(err)
	}
	_, err = add(userKey(bob, k1))
	wantExists("same key for another user", err)
	if err != nil && !strings.Contains(err.Error(), k1.Fingerprint) {
		t.Errorf("duplicate-key error %q does not name the fingerprint", err)
	}
	_, err = add(userKey(alice, k1))
	wantExists("same key twice for one user", err)
	_, err = add(deployKey(bp, k1, true))
	wantExists("a user's key as a deploy key", err)
	// The comment is not part of the key.
	_, err = add(userKey(bob, parse(strings.Fields(text)[0]+" "+strings.Fields(text)[1]+" other-comment")))
	wantExists("same key with another comment", err)

	// A deploy key cannot become a user key, nor a second repo's key.
	k2 := parse(ed25519Key(t, "ci"))
	dk, err := add(deployKey(ap, k2, false))
	if err != nil {
		t.Fatal(err)
	}
	_, err = add(userKey(bob, k2))
	wantExists("a deploy key as a user key", err)
	_, err = add(deployKey(bp, k2, true))
	wantExists("one deploy key for two repos", err)

	// The refused additions changed nothing.
	if got, err := s.KeyByFingerprint(ctx, k1.Fingerprint); err != nil || got.ID != ak.ID || got.UserID != alice.ID || got.RepoID != 0 {
		t.Fatalf("key 1 after refused duplicates: %+v, %v", got, err)
	}
	if got, err := s.KeyByFingerprint(ctx, k2.Fingerprint); err != nil || got.ID != dk.ID || got.RepoID != ap.ID || got.ReadOnly {
		t.Fatalf("key 2 after refused duplicates: %+v, %v", got, err)
	}
	for _, c := range []struct {
		name string
		list func() ([]store.Key, error)
		want int
	}{
		{"alice's keys", func() ([]store.Key, error) { return s.UserKeys(ctx, alice.ID) }, 1},
		{"bob's keys", func() ([]store.Key, error) { return s.UserKeys(ctx, bob.ID) }, 0},
		{"alice/p deploy keys", func() ([]store.Key, error) { return s.DeployKeys(ctx, ap.ID) }, 1},
		{"bob/q deploy keys", func() ([]store.Key, error) { return s.DeployKeys(ctx, bp.ID) }, 0},
	} {
		if keys, err := c.list(); err != nil || len(keys) != c.want {
			t.Errorf("%s: %d keys (%v), want %d", c.name, len(keys), err, c.want)
		}
	}

	// Deploy keys default to what the caller says; user keys are never
	// read-only.
	k3 := parse(rsaKey(t, 2048, "ro"))
	if k, err := add(deployKey(bp, k3, true)); err != nil || !k.ReadOnly {
		t.Fatalf("read-only deploy key: %+v, %v", k, err)
	}

	// Once deleted, a key is free to be used by someone else.
	if err := s.DeleteUserKey(ctx, bob.ID, ak.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("bob deleted alice's key: %v", err)
	}
	if err := s.DeleteUserKey(ctx, alice.ID, ak.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KeyByFingerprint(ctx, k1.Fingerprint); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted key still found: %v", err)
	}
	bk, err := add(userKey(bob, k1))
	if err != nil {
		t.Fatalf("re-adding a deleted key for bob: %v", err)
	}
	if got, err := s.KeyByFingerprint(ctx, k1.Fingerprint); err != nil || got.ID != bk.ID || got.UserID != bob.ID {
		t.Fatalf("re-added key: %+v, %v", got, err)
	}
	if err := s.DeleteDeployKey(ctx, bp.ID, dk.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted alice/p's deploy key through bob/q: %v", err)
	}
	if err := s.DeleteDeployKey(ctx, ap.ID, dk.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := add(userKey(alice, k2)); err != nil {
		t.Fatalf("re-adding a deleted deploy key as a user key: %v", err)
	}
}
