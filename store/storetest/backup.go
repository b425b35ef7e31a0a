package storetest

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gitserver/store"
)

// BackupFactory opens the implementation under test for the backup
// contract (store.Dumper).
type BackupFactory struct {
	// Open opens a Store on a fresh, empty database sealing secrets with
	// sealer, closed at t's cleanup. The Store must implement
	// store.Dumper.
	Open func(t *testing.T, sealer store.Sealer) store.Store
	// SchemaVersion is the implementation's schema version (its last
	// migration).
	SchemaVersion int
}

// RunBackup runs the backup contract (store.Dumper) against f. Another
// implementation's dumps load into this one if both pass (the rows are
// store-neutral); LoadDump lets a test check that directly.
func RunBackup(t *testing.T, f BackupFactory) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, BackupFactory)
	}{
		{"DumpLoadRoundTrip", testDumpLoadRoundTrip},
		{"DumpIsASnapshot", testDumpIsASnapshot},
		{"LoadRefusesANonEmptyStore", testLoadRefusesNonEmpty},
		{"LoadRefusesBadDumps", testLoadRefusesBadDumps},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, f) })
	}
}

// RunBackupBetween checks that a dump of one implementation loads into
// another (e.g. SQLite into PostgreSQL and back): every row arrives, the
// sealed secrets open with the same sealer, credentials work, and new ids
// follow the old ones.
func RunBackupBetween(t *testing.T, from, to BackupFactory) {
	ctx := context.Background()
	sealer := NewTestSealer(t)
	a := from.Open(t, sealer)
	fl := fillEveryTable(t, a)
	d := DumpAll(t, a)
	b := to.Open(t, sealer)
	if err := LoadDump(ctx, b, d); err != nil {
		t.Fatalf("Load: %v", err)
	}
	SameRows(t, d, DumpAll(t, b))
	if _, _, err := b.CheckToken(ctx, "alice", fl.token); err != nil {
		t.Errorf("token: %v", err)
	}
	if m, err := b.MirrorByRepo(ctx, fl.mirrorRepo.ID); err != nil || !bytes.Contains(m.PrivateKey, []byte(fl.privateKeyMarker)) {
		t.Errorf("mirror secrets: %v", err)
	}
	if c, err := b.SCMConnection(ctx, fl.bob.ID, fl.config.ID); err != nil || c.AccessToken != fl.connectionToken {
		t.Errorf("SCM connection: %v", err)
	}
	if acct, _, err := b.SessionByID(ctx, fl.session); err != nil || acct.ID != fl.bob.ID {
		t.Errorf("session: %v", err)
	}
	if r, err := b.CreateRepo(ctx, store.NewRepo{OwnerID: fl.alice.ID, Name: "after", Visibility: store.Restricted}); err != nil || r.ID <= fl.gone.ID {
		t.Errorf("new repository: id %d (deleted before: %d), %v", r.ID, fl.gone.ID, err)
	}
	if _, err := b.CreateSCMConfig(ctx, newSCMConfig("another", "gitea")); err != nil {
		t.Errorf("new SCM configuration: %v", err)
	}
	if _, err := b.CreateUser(ctx, "ALICE", "password-alice", false); !errors.Is(err, store.ErrExists) {
		t.Errorf("a loaded name is not taken case-insensitively: %v", err)
	}
}

// Dumped is a whole dump: its schema version and its rows by table, in the
// order Dump gave them.
type Dumped struct {
	SchemaVersion int
	Tables        map[string][]store.Row
	Order         []string // tables in the order Dump first gave them
}

// DumpAll dumps s.
func DumpAll(t testing.TB, s store.Store) Dumped {
	t.Helper()
	d := Dumped{Tables: map[string][]store.Row{}}
	v, err := dumper(t, s).Dump(context.Background(), func(table string, row store.Row) error {
		if _, ok := d.Tables[table]; !ok {
			d.Order = append(d.Order, table)
		}
		d.Tables[table] = append(d.Tables[table], row)
		return nil
	})
	if err != nil {
		t.Fatalf("Dump: %v", err)
	}
	d.SchemaVersion = v
	return d
}

// LoadDump loads d into s (which must be empty).
func LoadDump(ctx context.Context, s store.Store, d Dumped) error {
	dm, ok := s.(store.Dumper)
	if !ok {
		return fmt.Errorf("%T does not implement store.Dumper", s)
	}
	return dm.Load(ctx, d.SchemaVersion, func(insert func(string, store.Row) error) error {
		for _, table := range d.Order {
			for _, r := range d.Tables[table] {
				if err := insert(table, r); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func dumper(t testing.TB, s store.Store) store.Dumper {
	t.Helper()
	dm, ok := s.(store.Dumper)
	if !ok {
		t.Fatalf("%T does not implement store.Dumper", s)
	}
	return dm
}

// canonical renders a row with its columns sorted and its values typed, to
// compare dumps whatever their row order.
func canonical(r store.Row) string {
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%T:%v;", k, r[k], r[k])
	}
	return b.String()
}

func canonicalTable(rows []store.Row) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = canonical(r)
	}
	sort.Strings(out)
	return out
}

// SameDump fails t unless a and b hold the same rows (in any order), table
// by table, the sequences included, and the same schema version.
func SameDump(t testing.TB, a, b Dumped) {
	t.Helper()
	sameTables(t, a, b, append(slices.Clone(store.BackupTables), store.SequencesTable))
}

// SameRows is SameDump without the sequences, which differ between
// implementations (SQLite has none for tables without AUTOINCREMENT).
func SameRows(t testing.TB, a, b Dumped) {
	t.Helper()
	sameTables(t, a, b, store.BackupTables)
}

func sameTables(t testing.TB, a, b Dumped, tables []string) {
	t.Helper()
	if a.SchemaVersion != b.SchemaVersion {
		t.Errorf("schema versions %d and %d", a.SchemaVersion, b.SchemaVersion)
	}
	for _, table := range tables {
		ra, rb := canonicalTable(a.Tables[table]), canonicalTable(b.Tables[table])
		if !slices.Equal(ra, rb) {
			t.Errorf("table %s differs:\n%s\nvs\n%s", table, strings.Join(ra, "\n"), strings.Join(rb, "\n"))
		}
	}
}

// gcmSealer is AES-256-GCM under a random key (gitserver/seal is the
// real one, with a key file).
type gcmSealer struct{ aead cipher.AEAD }

// NewTestSealer returns a Sealer under a fresh random key.
func NewTestSealer(t testing.TB) store.Sealer {
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
	return gcmSealer{g}
}

func (s gcmSealer) Seal(p, aad []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, p, aad), nil
}

func (s gcmSealer) Open(c, aad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(c) < n {
		return nil, errors.New("short")
	}
	return s.aead.Open(nil, c[:n], c[n:], aad)
}

// filled is what fillEveryTable created, to check a restored store with.
type filled struct {
	alice, bob, org  store.Account
	repo, gone       store.Repo
	token            string
	userKey, deploy  store.Key
	running          store.Build
	version          store.Version
	mirrorRepo       store.Repo
	mirror           store.Mirror
	config           store.SCMConfig
	session          string
	oauthState       string
	deliveryID       string
	privateKeyMarker string
	clientSecret     string
	connectionToken  string
	oauthVerifier    string
	webhookSecret    string
}

// fillEveryTable writes at least one row into every table of
// store.BackupTables, through the Store's own methods.
func fillEveryTable(t *testing.T, s store.Store) filled {
	t.Helper()
	ctx := context.Background()
	var f filled
	var err error
	f.alice = mustUser(t, s, "alice", true)
	f.bob = mustUser(t, s, "bob", false)
	if f.org, err = s.CreateOrg(ctx, "team", f.alice.ID, store.AuditEntry{Actor: "alice", Action: "org.create", Target: "team"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMembership(ctx, f.org.ID, f.bob.ID, store.RoleMember); err != nil {
		t.Fatal(err)
	}
	if f.repo, err = s.CreateRepo(ctx, store.NewRepo{OwnerID: f.org.ID, Name: "app", Visibility: store.Public}); err != nil {
		t.Fatal(err)
	}
	if f.token, _, err = s.CreateToken(ctx, f.alice.ID, "ci", []store.Scope{store.ScopeRepoRead, store.ScopeAdmin}); err != nil {
		t.Fatal(err)
	}
	pk, err := store.ParseSSHKey(ed25519Key(t, "alice@laptop"))
	if err != nil {
		t.Fatal(err)
	}
	if f.userKey, err = s.AddKey(ctx, store.NewKey{UserID: f.alice.ID, Title: "laptop", Fingerprint: pk.Fingerprint, PublicKey: pk.PublicKey}); err != nil {
		t.Fatal(err)
	}
	dk, err := store.ParseSSHKey(ed25519Key(t, "deploy"))
	if err != nil {
		t.Fatal(err)
	}
	if f.deploy, err = s.AddKey(ctx, store.NewKey{RepoID: f.repo.ID, Title: "deploy", Fingerprint: dk.Fingerprint, PublicKey: dk.PublicKey, ReadOnly: true}); err != nil {
		t.Fatal(err)
	}

	// Builds: one succeeded and published, one running (with a clone
	// token and a lease), one queued.
	enqueue := func(n int) store.Build {
		t.Helper()
		prev, err := s.BuildBase(ctx, f.repo.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		b, created, err := s.EnqueueBuild(ctx, store.NewBuild{RepoID: f.repo.ID, Branch: "main", Commit: commitID(n), PushedBy: "alice", PreviousCommit: prev, CommitCount: n})
		if err != nil || !created {
			t.Fatalf("enqueue: %v %v", created, err)
		}
		return b
	}
	enqueue(1)
	b1, err := s.ClaimBuild(ctx, "w1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CompleteBuild(ctx, b1.ID, b1.LeaseToken, store.BuildSucceeded, "ok", "https://ci.example/1"); err != nil {
		t.Fatal(err)
	}
	if f.version, err = s.Publish(ctx, f.repo.ID, b1.ID, store.BumpMinor, "first release", "alice",
		store.AuditEntry{Actor: "alice", Action: "version.publish", Target: "team/app"}); err != nil {
		t.Fatal(err)
	}
	enqueue(2)
	if f.running, err = s.ClaimBuild(ctx, "w2", time.Hour); err != nil {
		t.Fatal(err)
	}
	enqueue(3)

	// Sealed secrets: a mirror, an SCM configuration, a connection, an
	// OAuth state.
	f.config = newSCMConfig("gitea", "gitea")
	f.clientSecret = f.config.ClientSecret
	if f.config, err = s.CreateSCMConfig(ctx, f.config); err != nil {
		t.Fatal(err)
	}
	nm := newMirror("ssh://git@git.example/team/up.git")
	f.privateKeyMarker = "secret-" + store.RandomHex(8)
	nm.PrivateKey = []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n" + f.privateKeyMarker + "\n-----END OPENSSH PRIVATE KEY-----\n")
	f.webhookSecret = nm.WebhookSecret
	if f.mirrorRepo, f.mirror, err = s.CreateMirror(ctx, store.NewRepo{OwnerID: f.alice.ID, Name: "up", Visibility: store.Restricted}, nm); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMirrorRemote(ctx, f.mirrorRepo.ID, f.config.ID, store.MirrorRemote{ID: "42", FullName: "team/up", HTMLURL: "https://git.example/team/up", DefaultBranch: "main", UserID: f.bob.ID}); err != nil {
		t.Fatal(err)
	}
	f.deliveryID = "delivery-" + store.RandomHex(4)
	if fresh, err := s.RecordDelivery(ctx, f.mirror.HookID, f.deliveryID); err != nil || !fresh {
		t.Fatalf("RecordDelivery: %v %v", fresh, err)
	}
	f.connectionToken = "at-" + store.RandomHex(8)
	if _, err := s.PutSCMConnection(ctx, store.SCMConnection{UserID: f.bob.ID, ConfigID: f.config.ID, Login: "bob-gh", AccessToken: f.connectionToken, RefreshToken: "rt-" + store.RandomHex(4), TokenType: "Bearer"}); err != nil {
		t.Fatal(err)
	}
	f.oauthState, f.oauthVerifier = "state-"+store.RandomHex(8), "verifier-"+store.RandomHex(8)
	if err := s.CreateOAuthState(ctx, store.OAuthState{State: f.oauthState, UserID: f.alice.ID, ConfigID: f.config.ID, Verifier: f.oauthVerifier, ReturnTo: "/x", ExpiresAt: s.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if f.session, _, err = s.CreateSession(ctx, f.bob.ID); err != nil {
		t.Fatal(err)
	}
	// Single sign-on: a linked user (its refresh token sealed) and a
	// pending sign-in (its PKCE verifier sealed).
	if _, err := s.CreateOIDCUser(ctx, store.NewOIDCUser{Name: "olga", Issuer: "https://idp.example", Subject: "sub-olga",
		RefreshToken: "oidc-rt-" + store.RandomHex(8)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOIDCState(ctx, store.OIDCState{State: "oidc-state-" + store.RandomHex(8), Nonce: "n-" + store.RandomHex(4),
		Verifier: "oidc-verifier-" + store.RandomHex(8), ReturnTo: "/", ExpiresAt: s.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// The last repository, deleted before the backup: its id must not be issued
	// again after a restore.
	if f.gone, err = s.CreateRepo(ctx, store.NewRepo{OwnerID: f.alice.ID, Name: "gone", Visibility: store.Restricted}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRepo(ctx, f.gone.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Audit(ctx, "cli", "test.fill", "everything", "done"); err != nil {
		t.Fatal(err)
	}
	return f
}

func testDumpLoadRoundTrip(t *testing.T, f BackupFactory) {
	ctx := context.Background()
	sealer := NewTestSealer(t)
	a := f.Open(t, sealer)
	fl := fillEveryTable(t, a)
	da := DumpAll(t, a)
	if da.SchemaVersion != f.SchemaVersion {
		t.Fatalf("dump schema version %d, want %d", da.SchemaVersion, f.SchemaVersion)
	}
	// Every table is covered, in dependency order, then the sequences.
	wantOrder := append(slices.Clone(store.BackupTables), store.SequencesTable)
	if !slices.Equal(da.Order, wantOrder) {
		t.Fatalf("dump order %v, want every table with rows, in order %v", da.Order, wantOrder)
	}
	// Sealed secrets stay sealed: no plaintext in any value.
	for table, rows := range da.Tables {
		for _, r := range rows {
			for col, v := range r {
				var text string
				switch v := v.(type) {
				case string:
					text = v
				case []byte:
					text = string(v)
				case int64, nil:
				default:
					t.Fatalf("%s.%s: value of type %T", table, col, v)
				}
				for _, secret := range []string{fl.privateKeyMarker, fl.clientSecret, fl.connectionToken, fl.oauthVerifier, fl.webhookSecret, fl.token, fl.session} {
					if strings.Contains(text, secret) {
						t.Fatalf("%s.%s holds a secret in clear", table, col)
					}
				}
			}
		}
	}

	b := f.Open(t, sealer)
	if err := LoadDump(ctx, b, da); err != nil {
		t.Fatalf("Load: %v", err)
	}
	SameDump(t, da, DumpAll(t, b))

	// The restored store works: credentials, builds, versions, secrets.
	if _, err := b.CheckPassword(ctx, "alice", "password-alice"); err != nil {
		t.Errorf("password after restore: %v", err)
	}
	if acct, tok, err := b.CheckToken(ctx, "alice", fl.token); err != nil || acct.ID != fl.alice.ID || !slices.Contains(tok.Scopes, store.ScopeAdmin) {
		t.Errorf("token after restore: %+v %+v %v", acct, tok, err)
	}
	if k, err := b.KeyByFingerprint(ctx, fl.userKey.Fingerprint); err != nil || k.ID != fl.userKey.ID || k.UserID != fl.alice.ID {
		t.Errorf("user key after restore: %+v %v", k, err)
	}
	if ks, err := b.DeployKeys(ctx, fl.repo.ID); err != nil || len(ks) != 1 || ks[0].Fingerprint != fl.deploy.Fingerprint {
		t.Errorf("deploy keys after restore: %+v %v", ks, err)
	}
	if role, err := b.Role(ctx, fl.org.ID, fl.bob.ID); err != nil || role != store.RoleMember {
		t.Errorf("membership after restore: %q %v", role, err)
	}
	if g, err := b.CheckCloneToken(ctx, fl.running.CloneToken); err != nil || g.BuildID != fl.running.ID {
		t.Errorf("clone token of the running build after restore: %+v %v", g, err)
	}
	if vs, err := b.Versions(ctx, fl.repo.ID); err != nil || len(vs) != 1 || vs[0].ID != fl.version.ID || vs[0].Commit != fl.version.Commit {
		t.Errorf("versions after restore: %+v %v", vs, err)
	}
	if pins, err := b.PinnedCommits(ctx, fl.repo.ID); err != nil || !slices.Equal(pins, []string{fl.version.Commit}) {
		t.Errorf("pins after restore: %v %v", pins, err)
	}
	if bs, err := b.Builds(ctx, fl.repo.ID, "", 10); err != nil || len(bs) != 3 {
		t.Errorf("builds after restore: %d %v", len(bs), err)
	}
	// The queue goes on: the queued build is claimed next.
	if nb, err := b.ClaimBuild(ctx, "w3", time.Hour); err != nil || nb.Commit != commitID(3) {
		t.Errorf("claim after restore: %+v %v", nb, err)
	}
	m, err := b.MirrorByRepo(ctx, fl.mirrorRepo.ID)
	if err != nil || !bytes.Contains(m.PrivateKey, []byte(fl.privateKeyMarker)) || m.WebhookSecret != fl.webhookSecret ||
		m.SCMConfigID != fl.config.ID || m.Remote.UserID != fl.bob.ID {
		t.Errorf("mirror after restore: %v (secrets open: %v)", err, err == nil && bytes.Contains(m.PrivateKey, []byte(fl.privateKeyMarker)))
	}
	if m, err := b.MirrorByHookID(ctx, fl.mirror.HookID); err != nil || m.RepoID != fl.mirrorRepo.ID {
		t.Errorf("mirror by hook id after restore: %v", err)
	}
	if fresh, err := b.RecordDelivery(ctx, fl.mirror.HookID, fl.deliveryID); err != nil || fresh {
		t.Errorf("a delivery seen before the backup is new after it: %v %v", fresh, err)
	}
	if c, err := b.SCMConfigByID(ctx, fl.config.ID); err != nil || c.ClientSecret != fl.clientSecret {
		t.Errorf("SCM configuration after restore: %v", err)
	}
	if c, err := b.SCMConnection(ctx, fl.bob.ID, fl.config.ID); err != nil || c.AccessToken != fl.connectionToken {
		t.Errorf("SCM connection after restore: %v", err)
	}
	if st, err := b.ConsumeOAuthState(ctx, fl.oauthState); err != nil || st.Verifier != fl.oauthVerifier {
		t.Errorf("OAuth state after restore: %v", err)
	}
	if acct, _, err := b.SessionByID(ctx, fl.session); err != nil || acct.ID != fl.bob.ID {
		t.Errorf("session after restore: %+v %v", acct, err)
	}
	if ev, err := b.AuditEvents(ctx, 1); err != nil || len(ev) != 1 || ev[0].Action != "test.fill" {
		t.Errorf("audit after restore: %+v %v", ev, err)
	}
	// Sequences: new ids follow every id issued before the backup, the
	// deleted repository's included.
	r, err := b.CreateRepo(ctx, store.NewRepo{OwnerID: fl.alice.ID, Name: "after", Visibility: store.Restricted})
	if err != nil || r.ID <= fl.gone.ID {
		t.Errorf("new repository after restore: id %d (last before: %d, deleted: %d), %v", r.ID, fl.mirrorRepo.ID, fl.gone.ID, err)
	}
	if _, err := b.CreateUser(ctx, "carol", "password-carol", false); err != nil {
		t.Errorf("new user after restore: %v", err)
	}
	if _, err := b.CreateUser(ctx, "ALICE", "password-alice", false); !errors.Is(err, store.ErrExists) {
		t.Errorf("a restored name is not taken: %v", err)
	}

	// A restored store dumps again into a third, the same.
	c := f.Open(t, sealer)
	db := DumpAll(t, b)
	if err := LoadDump(ctx, c, db); err != nil {
		t.Fatalf("second Load: %v", err)
	}
	SameDump(t, db, DumpAll(t, c))
}

// testDumpIsASnapshot: rows written while a dump runs are not in it, and
// the dump does not stop writers.
func testDumpIsASnapshot(t *testing.T, f BackupFactory) {
	ctx := context.Background()
	s := f.Open(t, NewTestSealer(t))
	before := mustUser(t, s, "before", false)
	testRepo(t, s, "before", "early")
	wrote := false
	d := Dumped{Tables: map[string][]store.Row{}}
	_, err := dumper(t, s).Dump(ctx, func(table string, row store.Row) error {
		if !wrote {
			wrote = true
			// Written after the dump's first read, while it runs.
			late := mustUser(t, s, "late", false)
			if _, err := s.CreateRepo(ctx, store.NewRepo{OwnerID: late.ID, Name: "late", Visibility: store.Restricted}); err != nil {
				return err
			}
			if err := s.SetPassword(ctx, "before", "a-new-password"); err != nil {
				return err
			}
		}
		d.Tables[table] = append(d.Tables[table], row)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(d.Tables["accounts"]); n != 1 || d.Tables["accounts"][0]["id"] != before.ID {
		t.Fatalf("accounts in the dump: %v, want only the one written before it", d.Tables["accounts"])
	}
	if n := len(d.Tables["repos"]); n != 1 || d.Tables["repos"][0]["name"] != "early" {
		t.Fatalf("repos in the dump: %v", d.Tables["repos"])
	}
	// The writes happened, and the dump kept the old password hash.
	b := f.Open(t, NewTestSealer(t))
	d.SchemaVersion = f.SchemaVersion
	d.Order = []string{"accounts", "repos", store.SequencesTable}
	if err := LoadDump(ctx, b, d); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CheckPassword(ctx, "before", "password-before"); err != nil {
		t.Fatalf("the dump holds the password changed after it began: %v", err)
	}
	if _, err := s.CheckPassword(ctx, "before", "a-new-password"); err != nil {
		t.Fatalf("the write during the dump was lost: %v", err)
	}
}

func testLoadRefusesNonEmpty(t *testing.T, f BackupFactory) {
	ctx := context.Background()
	sealer := NewTestSealer(t)
	a := f.Open(t, sealer)
	fillEveryTable(t, a)
	d := DumpAll(t, a)
	b := f.Open(t, sealer)
	mustUser(t, b, "someone", false)
	before := DumpAll(t, b)
	if err := LoadDump(ctx, b, d); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Load into a store with a user: %v, want ErrConflict", err)
	}
	SameDump(t, before, DumpAll(t, b))
	// Into itself.
	if err := LoadDump(ctx, a, d); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Load into the dumped store: %v, want ErrConflict", err)
	}
}

// testLoadRefusesBadDumps: a dump that is not one of this schema writes
// nothing.
func testLoadRefusesBadDumps(t *testing.T, f BackupFactory) {
	ctx := context.Background()
	sealer := NewTestSealer(t)
	a := f.Open(t, sealer)
	fillEveryTable(t, a)
	good := DumpAll(t, a)
	b := f.Open(t, sealer)
	empty := DumpAll(t, b)

	with := func(table string, edit func(store.Row) store.Row) Dumped {
		d := Dumped{SchemaVersion: good.SchemaVersion, Order: good.Order, Tables: map[string][]store.Row{}}
		for k, rows := range good.Tables {
			d.Tables[k] = slices.Clone(rows)
		}
		r := store.Row{}
		for k, v := range d.Tables[table][0] {
			r[k] = v
		}
		d.Tables[table][0] = edit(r)
		return d
	}
	for _, tc := range []struct {
		name string
		d    Dumped
		want error
	}{
		{"newer schema", Dumped{SchemaVersion: good.SchemaVersion + 1, Order: good.Order, Tables: good.Tables}, store.ErrInvalid},
		{"unknown table", Dumped{SchemaVersion: good.SchemaVersion, Order: append(slices.Clone(good.Order), "sqlite_master"),
			Tables: map[string][]store.Row{"sqlite_master": {{"name": "x"}}}}, store.ErrInvalid},
		{"unknown column", with("accounts", func(r store.Row) store.Row { r["is_root"] = int64(1); return r }), store.ErrInvalid},
		{"injected column", with("accounts", func(r store.Row) store.Row { r[`name") VALUES (1); DROP TABLE repos; --`] = "x"; return r }), store.ErrInvalid},
		{"bad type", with("accounts", func(r store.Row) store.Row { r["is_admin"] = 1.5; return r }), store.ErrInvalid},
		{"dangling reference", with("repos", func(r store.Row) store.Row { r["owner_id"] = int64(999999); return r }), store.ErrInvalid},
		{"duplicate", with("accounts", func(r store.Row) store.Row { r["id"] = good.Tables["accounts"][1]["id"]; return r }), store.ErrInvalid},
		{"bad sequence", with(store.SequencesTable, func(r store.Row) store.Row { r["table_name"] = "nope"; return r }), store.ErrInvalid},
	} {
		if err := LoadDump(ctx, b, tc.d); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		SameDump(t, empty, DumpAll(t, b))
	}
	// The rows function's own error is returned as is, and nothing stays.
	boom := errors.New("archive truncated")
	err := dumper(t, b).Load(ctx, good.SchemaVersion, func(insert func(string, store.Row) error) error {
		for _, r := range good.Tables["accounts"] {
			if err := insert("accounts", r); err != nil {
				return err
			}
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Load with a failing reader: %v", err)
	}
	SameDump(t, empty, DumpAll(t, b))
	// After all that, the good dump still loads.
	if err := LoadDump(ctx, b, good); err != nil {
		t.Fatal(err)
	}
	SameDump(t, good, DumpAll(t, b))
}
