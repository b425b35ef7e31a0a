package storetest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"gitserver/store"
)

func testUsers(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.open(t, nil)
	alice := mustUser(t, s, "Alice", false)
	if alice.Kind != store.KindUser || alice.IsAdmin || alice.ID == 0 || alice.CreatedAt.IsZero() {
		t.Fatalf("unexpected account %+v", alice)
	}

	for _, tc := range []struct {
		name, pw string
		want     error
	}{
		{"alice", "another-password", store.ErrExists}, // case-insensitive duplicate
		{"ALICE", "another-password", store.ErrExists},
		{"bob", "short", store.ErrInvalid},
		{"-bob", "long-enough-pw", store.ErrInvalid},
		{"bob.git", "long-enough-pw", store.ErrInvalid},
		{"", "long-enough-pw", store.ErrInvalid},
		{strings.Repeat("b", 101), "long-enough-pw", store.ErrInvalid},
	} {
		if _, err := s.CreateUser(ctx, tc.name, tc.pw, false); !errors.Is(err, tc.want) {
			t.Errorf("CreateUser(%q, %q) = %v, want %v", tc.name, tc.pw, err, tc.want)
		}
	}

	// Lookups are case-insensitive and return the stored spelling.
	got, err := s.AccountByName(ctx, "aLiCe")
	if err != nil || got.ID != alice.ID || got.Name != "Alice" {
		t.Fatalf("AccountByName(aLiCe) = %+v, %v", got, err)
	}
	if _, err := s.AccountByName(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("AccountByName(nobody) = %v, want ErrNotFound", err)
	}
	if got, err := s.AccountByID(ctx, alice.ID); err != nil || got.Name != "Alice" {
		t.Fatalf("AccountByID = %+v, %v", got, err)
	}

	// Passwords.
	if _, err := s.CheckPassword(ctx, "alice", "password-Alice"); err != nil {
		t.Fatalf("CheckPassword right password: %v", err)
	}
	for _, pw := range []string{"", "password-alice", "password-Alice "} {
		if _, err := s.CheckPassword(ctx, "alice", pw); !errors.Is(err, store.ErrBadCredentials) {
			t.Errorf("CheckPassword(%q) = %v, want ErrBadCredentials", pw, err)
		}
	}
	if _, err := s.CheckPassword(ctx, "nobody", "password-Alice"); !errors.Is(err, store.ErrBadCredentials) {
		t.Errorf("CheckPassword(unknown user) = %v", err)
	}
	h1, err := passwordHash(ctx, s, alice.ID)
	if err != nil || h1 == "" {
		t.Fatalf("UserWithPasswordHash = %q, %v", h1, err)
	}
	if err := s.SetPassword(ctx, "alice", "short"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("SetPassword(short) = %v", err)
	}
	if err := s.SetPassword(ctx, "nobody", "long-enough-pw"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetPassword(nobody) = %v", err)
	}
	if err := s.SetPassword(ctx, "ALICE", "a-new-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckPassword(ctx, "alice", "password-Alice"); !errors.Is(err, store.ErrBadCredentials) {
		t.Errorf("old password still works after SetPassword: %v", err)
	}
	if _, err := s.CheckPassword(ctx, "alice", "a-new-password"); err != nil {
		t.Errorf("new password refused: %v", err)
	}
	if h2, _ := passwordHash(ctx, s, alice.ID); h2 == h1 {
		t.Errorf("password hash unchanged by SetPassword")
	}
	if n, err := s.CountUsers(ctx); err != nil || n != 1 {
		t.Fatalf("CountUsers = %d, %v", n, err)
	}
}

func testOrgsAndMemberships(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.open(t, nil)
	alice := mustUser(t, s, "alice", false)
	bob := mustUser(t, s, "bob", false)

	org, err := s.CreateOrg(ctx, "Acme", alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if org.Kind != store.KindOrg {
		t.Fatalf("org kind %q", org.Kind)
	}
	// Users and orgs share one namespace.
	if _, err := s.CreateOrg(ctx, "ALICE", bob.ID); !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateOrg(ALICE) = %v, want ErrExists", err)
	}
	if _, err := s.CreateUser(ctx, "acme", "long-enough-pw", false); !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateUser(acme) = %v, want ErrExists", err)
	}
	if _, err := s.CreateOrg(ctx, "bad name", bob.ID); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("CreateOrg(bad name) = %v", err)
	}
	// store.Orgs cannot sign in and are not users.
	if _, err := s.CheckPassword(ctx, "acme", ""); !errors.Is(err, store.ErrBadCredentials) {
		t.Fatalf("org sign-in: %v", err)
	}
	if _, err := s.UserByName(ctx, "acme"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UserByName(org) = %v", err)
	}
	if n, _ := s.CountUsers(ctx); n != 2 {
		t.Fatalf("CountUsers counts orgs: %d", n)
	}

	if role, err := s.Role(ctx, org.ID, alice.ID); err != nil || role != store.RoleOwner {
		t.Fatalf("creator role = %q, %v; want owner", role, err)
	}
	if role, err := s.Role(ctx, org.ID, bob.ID); err != nil || role != "" {
		t.Fatalf("non-member role = %q, %v", role, err)
	}
	if err := s.SetMembership(ctx, org.ID, bob.ID, "boss"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("SetMembership(boss) = %v", err)
	}
	if err := s.SetMembership(ctx, org.ID, bob.ID, store.RoleMember); err != nil {
		t.Fatal(err)
	}
	if role, _ := s.Role(ctx, org.ID, bob.ID); role != store.RoleMember {
		t.Fatalf("bob role %q", role)
	}
	if err := s.SetMembership(ctx, org.ID, bob.ID, store.RoleOwner); err != nil {
		t.Fatal(err)
	}
	if role, _ := s.Role(ctx, org.ID, bob.ID); role != store.RoleOwner {
		t.Fatalf("bob role after promotion %q", role)
	}
}

func testRepos(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.open(t, nil)
	alice := mustUser(t, s, "alice", false)
	org, err := s.CreateOrg(ctx, "acme", alice.ID)
	if err != nil {
		t.Fatal(err)
	}

	r, err := s.CreateRepo(ctx, store.NewRepo{OwnerID: alice.ID, Name: "Proj", Visibility: store.Restricted})
	if err != nil {
		t.Fatal(err)
	}
	if r.DefaultBranch != "master" || r.Owner != "alice" || r.OwnerKind != store.KindUser || r.FullName() != "alice/Proj" || r.CreatedAt.IsZero() {
		t.Fatalf("unexpected repo %+v", r)
	}
	r2, err := s.CreateRepo(ctx, store.NewRepo{OwnerID: org.ID, Name: "proj", Visibility: store.Public, DefaultBranch: "main"})
	if err != nil {
		t.Fatalf("same name under another owner: %v", err)
	}
	if r2.DefaultBranch != "main" || r2.OwnerKind != store.KindOrg || r2.ID == r.ID {
		t.Fatalf("unexpected repo %+v", r2)
	}

	for _, tc := range []struct {
		nr   store.NewRepo
		want error
	}{
		{store.NewRepo{OwnerID: alice.ID, Name: "PROJ", Visibility: store.Public}, store.ErrExists},
		{store.NewRepo{OwnerID: alice.ID, Name: "x.git", Visibility: store.Public}, store.ErrInvalid},
		{store.NewRepo{OwnerID: alice.ID, Name: "../x", Visibility: store.Public}, store.ErrInvalid},
		{store.NewRepo{OwnerID: alice.ID, Name: "ok", Visibility: "secret"}, store.ErrInvalid},
		{store.NewRepo{OwnerID: alice.ID, Name: "ok", Visibility: ""}, store.ErrInvalid},
		{store.NewRepo{OwnerID: alice.ID, Name: "ok", Visibility: store.Public, DefaultBranch: "a..b"}, store.ErrInvalid},
		{store.NewRepo{OwnerID: alice.ID, Name: "ok", Visibility: store.Public, DefaultBranch: "-x"}, store.ErrInvalid},
	} {
		if _, err := s.CreateRepo(ctx, tc.nr); !errors.Is(err, tc.want) {
			t.Errorf("CreateRepo(%+v) = %v, want %v", tc.nr, err, tc.want)
		}
	}

	got, err := s.RepoByName(ctx, "ALICE", "proj")
	if err != nil || got.ID != r.ID || got.Name != "Proj" {
		t.Fatalf("RepoByName case-insensitive = %+v, %v", got, err)
	}
	if _, err := s.RepoByName(ctx, "alice", "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RepoByName(nope) = %v", err)
	}
	all, err := s.Repos(ctx)
	if err != nil || len(all) != 2 || all[0].ID != r.ID || all[1].ID != r2.ID {
		t.Fatalf("Repos = %+v, %v", all, err)
	}

	if err := s.DeleteRepo(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRepo(ctx, r.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second DeleteRepo = %v", err)
	}
	if _, err := s.RepoByID(ctx, r.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RepoByID after delete = %v", err)
	}
	// The name is free again.
	r3, err := s.CreateRepo(ctx, store.NewRepo{OwnerID: alice.ID, Name: "proj", Visibility: store.Public})
	if err != nil {
		t.Fatalf("recreate after delete: %v", err)
	}
	if r3.ID == r.ID {
		t.Fatalf("repo id %d reused: on-disk directories are named by id", r3.ID)
	}
}

func testTokens(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.open(t, nil)
	alice := mustUser(t, s, "alice", false)
	bob := mustUser(t, s, "bob", false)

	secret, tok, err := s.CreateToken(ctx, alice.ID, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, store.TokenPrefix) || len(secret) < 30 {
		t.Fatalf("token secret %q", secret)
	}
	if store.JoinScopes(tok.Scopes) != "repo:read repo:write" || tok.Name == "" {
		t.Fatalf("default token %+v", tok)
	}
	a, got, err := s.CheckToken(ctx, "", secret)
	if err != nil || a.ID != alice.ID || got.ID != tok.ID || !got.HasScope(store.ScopeRepoWrite) || got.HasScope(store.ScopeAdmin) {
		t.Fatalf("CheckToken = %+v %+v %v", a, got, err)
	}
	if _, _, err := s.CheckToken(ctx, "ALICE", secret); err != nil {
		t.Fatalf("CheckToken with owner name: %v", err)
	}
	for _, tc := range []struct{ name, secret string }{
		{"bob", secret},    // someone else's token
		{"", secret + "x"}, // wrong secret
		{"", strings.TrimPrefix(secret, store.TokenPrefix)}, // no prefix
		{"", store.TokenPrefix + strings.Repeat("a", 300)},  // overlong
		{"", ""},
	} {
		if _, _, err := s.CheckToken(ctx, tc.name, tc.secret); !errors.Is(err, store.ErrBadCredentials) {
			t.Errorf("CheckToken(%q, %q) = %v, want ErrBadCredentials", tc.name, tc.secret, err)
		}
	}

	// Explicit scopes are validated and de-duplicated.
	_, tok2, err := s.CreateToken(ctx, bob.ID, "ci", []store.Scope{"repo:write", "repo:read", "repo:write"})
	if err != nil {
		t.Fatal(err)
	}
	if store.JoinScopes(tok2.Scopes) != "repo:write repo:read" || tok2.Name != "ci" {
		t.Fatalf("token %+v", tok2)
	}
	for _, bad := range [][]store.Scope{{"repo:delete"}, {"repo:read", ""}, {"ADMIN"}} {
		if _, _, err := s.CreateToken(ctx, bob.ID, "x", bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("CreateToken(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if _, _, err := s.CreateToken(ctx, bob.ID, strings.Repeat("n", 101), nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("overlong token name accepted: %v", err)
	}
	// Two tokens never share a secret.
	s1, _, _ := s.CreateToken(ctx, bob.ID, "a", nil)
	s2, _, _ := s.CreateToken(ctx, bob.ID, "a", nil)
	if s1 == s2 {
		t.Fatal("two tokens with the same secret")
	}
}

func newPubKey(t *testing.T, comment string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " " + comment
}

func testKeys(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.open(t, nil)
	alice := mustUser(t, s, "alice", false)
	repo, err := s.CreateRepo(ctx, store.NewRepo{OwnerID: alice.ID, Name: "p", Visibility: store.Restricted})
	if err != nil {
		t.Fatal(err)
	}

	text := newPubKey(t, "alice@laptop")
	pk, err := store.ParseSSHKey(text)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(pk.Fingerprint, "SHA256:") || pk.Comment != "alice@laptop" || strings.Contains(pk.PublicKey, "alice@laptop") {
		t.Fatalf("ParseSSHKey = %+v", pk)
	}
	for _, bad := range []string{
		"", "not a key", "ssh-ed25519 AAAA", text + "\n" + newPubKey(t, "two"),
		`command="sh" ` + text, strings.Repeat("A", 20000),
	} {
		if _, err := store.ParseSSHKey(bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("ParseSSHKey(%.40q) = %v, want ErrInvalid", bad, err)
		}
	}

	k, err := s.AddKey(ctx, store.NewKey{UserID: alice.ID, Title: pk.Comment, Fingerprint: pk.Fingerprint, PublicKey: pk.PublicKey, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if k.ReadOnly {
		t.Errorf("user key stored read-only")
	}
	// The same key cannot be added again, not even as a deploy key.
	if _, err := s.AddKey(ctx, store.NewKey{RepoID: repo.ID, Fingerprint: pk.Fingerprint, PublicKey: pk.PublicKey}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate key = %v, want ErrExists", err)
	}
	if _, err := s.AddKey(ctx, store.NewKey{Fingerprint: "x", PublicKey: "x"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("key without owner = %v", err)
	}
	if _, err := s.AddKey(ctx, store.NewKey{UserID: alice.ID, RepoID: repo.ID, Fingerprint: "x", PublicKey: "x"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("key with two owners = %v", err)
	}

	dpk, _ := store.ParseSSHKey(newPubKey(t, "deploy"))
	dk, err := s.AddKey(ctx, store.NewKey{RepoID: repo.ID, Title: "ci", Fingerprint: dpk.Fingerprint, PublicKey: dpk.PublicKey, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.KeyByFingerprint(ctx, dpk.Fingerprint)
	if err != nil || got.ID != dk.ID || got.RepoID != repo.ID || got.UserID != 0 || !got.ReadOnly {
		t.Fatalf("KeyByFingerprint = %+v, %v", got, err)
	}
	if keys, err := s.UserKeys(ctx, alice.ID); err != nil || len(keys) != 1 || keys[0].ID != k.ID {
		t.Fatalf("UserKeys = %+v, %v", keys, err)
	}
	if keys, err := s.DeployKeys(ctx, repo.ID); err != nil || len(keys) != 1 || keys[0].ID != dk.ID {
		t.Fatalf("DeployKeys = %+v, %v", keys, err)
	}
	// Deleting needs the right owner.
	if err := s.DeleteUserKey(ctx, alice.ID, dk.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteUserKey(deploy key) = %v", err)
	}
	if err := s.DeleteUserKey(ctx, alice.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	// Deleting the repo removes its deploy keys.
	if err := s.DeleteRepo(ctx, repo.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KeyByFingerprint(ctx, dpk.Fingerprint); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deploy key survived its repo: %v", err)
	}
}

func testAuditAndClock(t *testing.T, f Factory) {
	ctx := context.Background()
	now := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	s := f.Open(t, func() time.Time { return now })
	u := mustUser(t, s, "alice", false)
	if !u.CreatedAt.Equal(now) {
		t.Fatalf("CreatedAt %v, want injected %v", u.CreatedAt, now)
	}
	for i := 0; i < 3; i++ {
		if err := s.Audit(ctx, "alice", "repo.create", "alice/p", ""); err != nil {
			t.Fatal(err)
		}
	}
	ev, err := s.AuditEvents(ctx, 2)
	if err != nil || len(ev) != 2 || ev[0].ID < ev[1].ID || !ev[0].At.Equal(now) || ev[0].Actor != "alice" {
		t.Fatalf("AuditEvents = %+v, %v", ev, err)
	}
}

// testConcurrentWrites: concurrent writers and readers on one Store get no
// error (for SQLite: no SQLITE_BUSY).
func testConcurrentWrites(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.open(t, nil)
	u := mustUser(t, s, "alice", false)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				if _, _, err := s.CreateToken(ctx, u.ID, "t", nil); err != nil {
					errs <- err
				}
				if _, err := s.AccountByID(ctx, u.ID); err != nil {
					errs <- err
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// testTokenScopesOnlyForAdmins: builds and admin tokens are for admins only,
// whoever asks (the CLI and the API both go through CreateToken).
func testTokenScopesOnlyForAdmins(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.open(t, nil)
	alice := mustUser(t, s, "alice", false)
	root := mustUser(t, s, "root", true)
	for _, scopes := range [][]store.Scope{{store.ScopeBuilds}, {store.ScopeAdmin}, {store.ScopeRepoRead, store.ScopeBuilds}} {
		_, _, err := s.CreateToken(ctx, alice.ID, "ci", scopes)
		if !errors.Is(err, store.ErrForbidden) || !strings.Contains(err.Error(), "only admins") || !strings.Contains(err.Error(), "alice") {
			t.Errorf("non-admin CreateToken(%q) = %v, want ErrForbidden naming the rule and the user", scopes, err)
		}
	}
	if _, _, err := s.CreateToken(ctx, alice.ID, "ci", []store.Scope{store.ScopeRepoRead}); err != nil {
		t.Errorf("non-admin repo:read token: %v", err)
	}
	for _, scopes := range [][]store.Scope{{store.ScopeBuilds}, {store.ScopeAdmin}, {store.ScopeBuilds, store.ScopeRepoRead}} {
		secret, tok, err := s.CreateToken(ctx, root.ID, "ci", scopes)
		if err != nil {
			t.Fatalf("admin CreateToken(%q): %v", scopes, err)
		}
		if _, got, err := s.CheckToken(ctx, "", secret); err != nil || got.ID != tok.ID {
			t.Errorf("admin's %q token does not check: %v", scopes, err)
		}
	}
	org, err := s.CreateOrg(ctx, "algos", root.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{org.ID, 999999} {
		if _, _, err := s.CreateToken(ctx, id, "x", nil); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("token for account %d: %v, want ErrNotFound", id, err)
		}
	}
}

func passwordHash(ctx context.Context, s store.Store, id int64) (string, error) {
	_, h, err := s.UserWithPasswordHash(ctx, id)
	return h, err
}
