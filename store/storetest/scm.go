package storetest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gitserver/store"
)

func newSCMConfig(name, kind string) store.SCMConfig {
	c := store.SCMConfig{Name: name, Kind: kind, Mode: "webhook", WebsiteURL: "https://scm.example", APIURL: "https://scm.example/api",
		SSHURL: "ssh://git@scm.example:22", AllowedOwners: []string{"team", "ops"},
		KnownHosts: "scm.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost\n", HostKeyFingerprints: []string{"SHA256:abc"}}
	if kind == store.SCMBitbucketServer {
		c.ProjectKey, c.AccessToken = "PRJ", "pat-"+store.RandomHex(8)
	} else {
		c.ClientID, c.ClientSecret = "client", "csecret-"+store.RandomHex(8)
	}
	return c
}

func testSCMConfigs(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.open(t, newFakeClock())
	in := newSCMConfig("gitea", "gitea")
	c, err := s.CreateSCMConfig(ctx, in, store.AuditEntry{Actor: "root", Action: "scm.config.create", Target: "gitea"})
	if err != nil {
		t.Fatal(err)
	}
	if c.ID == 0 || c.Name != "gitea" || c.ClientSecret != in.ClientSecret || c.AccessToken != "" || strings.Join(c.AllowedOwners, ",") != "team,ops" ||
		c.KnownHosts != in.KnownHosts || len(c.HostKeyFingerprints) != 1 || c.CreatedAt.IsZero() {
		t.Fatalf("created %+v", c)
	}
	if ev, _ := s.AuditEvents(ctx, 1); len(ev) != 1 || ev[0].Action != "scm.config.create" {
		t.Fatalf("audit: %+v", ev)
	}
	if got, err := s.SCMConfigByID(ctx, c.ID); err != nil || got.ClientSecret != in.ClientSecret {
		t.Fatalf("by id: %+v %v", got, err)
	}
	if _, err := s.SCMConfigByID(ctx, c.ID+100); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	if _, err := s.CreateSCMConfig(ctx, newSCMConfig("GITEA", "github")); !errors.Is(err, store.ErrExists) {
		t.Fatalf("taken name: %v", err)
	}
	// Bitbucket Server: one configuration per (website, project).
	bb, err := s.CreateSCMConfig(ctx, newSCMConfig("bb1", store.SCMBitbucketServer))
	if err != nil || bb.AccessToken == "" || bb.ProjectKey != "PRJ" {
		t.Fatalf("bitbucket: %+v %v", bb, err)
	}
	if _, err := s.CreateSCMConfig(ctx, newSCMConfig("bb2", store.SCMBitbucketServer)); !errors.Is(err, store.ErrExists) {
		t.Fatalf("same project: %v", err)
	}
	other := newSCMConfig("bb2", store.SCMBitbucketServer)
	other.ProjectKey = "OTHER"
	if _, err := s.CreateSCMConfig(ctx, other); err != nil {
		t.Fatalf("other project: %v", err)
	}
	// Update: every field; a clash is ErrExists.
	up := c
	up.Name, up.ClientSecret, up.AllowedOwners = "gitea2", "rotated", nil
	got, err := s.UpdateSCMConfig(ctx, up)
	if err != nil || got.Name != "gitea2" || got.ClientSecret != "rotated" || len(got.AllowedOwners) != 0 || !got.CreatedAt.Equal(c.CreatedAt) {
		t.Fatalf("update: %+v %v", got, err)
	}
	up.Name = "BB1"
	if _, err := s.UpdateSCMConfig(ctx, up); !errors.Is(err, store.ErrExists) {
		t.Fatalf("update to a taken name: %v", err)
	}
	up.ID = 9999
	if _, err := s.UpdateSCMConfig(ctx, up); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
	all, err := s.SCMConfigs(ctx)
	if err != nil || len(all) != 3 || all[0].ID != c.ID {
		t.Fatalf("list: %+v %v", all, err)
	}

	// In use by a mirror: refused, then forced.
	alice := mustUser(t, s, "alice", false)
	r, _, err := s.CreateMirror(ctx, store.NewRepo{OwnerID: alice.ID, Name: "app", Visibility: store.Restricted}, newMirror("git@scm.example:team/app.git"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.LinkMirrorSCMConfig(ctx, r.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.LinkMirrorSCMConfig(ctx, r.ID, 9999); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("link to unknown config: %v", err)
	}
	rem := store.MirrorRemote{ID: "42", FullName: "team/app", HTMLURL: "https://scm.example/team/app", DefaultBranch: "main", UserID: alice.ID}
	if err := s.SetMirrorRemote(ctx, r.ID, c.ID, rem); err != nil {
		t.Fatal(err)
	}
	if m, err := s.MirrorByRepo(ctx, r.ID); err != nil || m.SCMConfigID != c.ID || m.Remote != rem {
		t.Fatalf("remote: %+v %v", m, err)
	}
	moved := rem
	moved.FullName, moved.HTMLURL = "team/app2", "https://scm.example/team/app2"
	if err := s.RelocateMirror(ctx, r.ID, "git@scm.example:team/app2.git", moved); err != nil {
		t.Fatal(err)
	}
	if m, err := s.MirrorByRepo(ctx, r.ID); err != nil || m.URL != "git@scm.example:team/app2.git" || m.Remote != moved || m.SCMConfigID != c.ID {
		t.Fatalf("relocated: %+v %v", m, err)
	}
	if err := s.RelocateMirror(ctx, r.ID, "", rem); err != nil {
		t.Fatal(err)
	}
	if m, err := s.MirrorByRepo(ctx, r.ID); err != nil || m.URL != "git@scm.example:team/app2.git" || m.Remote != rem {
		t.Fatalf("relocated without url: %+v %v", m, err)
	}
	if err := s.SetMirrorRemote(ctx, r.ID, 9999, rem); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("remote with an unknown config: %v", err)
	}
	plain := testRepo(t, s, "alice", "plain")
	if err := s.SetMirrorRemote(ctx, plain.ID, c.ID, rem); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("remote of a non-mirror: %v", err)
	}
	if err := s.LinkMirrorSCMConfig(ctx, plain.ID, c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("link a non-mirror: %v", err)
	}
	if repos, err := s.SCMConfigRepos(ctx, c.ID); err != nil || len(repos) != 1 || repos[0].FullName() != "alice/app" {
		t.Fatalf("repos: %+v %v", repos, err)
	}
	_, err = s.DeleteSCMConfig(ctx, c.ID, false)
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "alice/app") {
		t.Fatalf("delete in use: %v", err)
	}
	if _, err := s.SCMConfigByID(ctx, c.ID); err != nil {
		t.Fatalf("refused delete deleted: %v", err)
	}
	unlinked, err := s.DeleteSCMConfig(ctx, c.ID, true, store.AuditEntry{Actor: "root", Action: "scm.config.delete", Target: "gitea2"})
	if err != nil || len(unlinked) != 1 || unlinked[0].ID != r.ID {
		t.Fatalf("forced delete: %+v %v", unlinked, err)
	}
	if _, err := s.MirrorByRepo(ctx, r.ID); err != nil {
		t.Fatalf("the mirror went with the configuration: %v", err)
	}
	if _, err := s.SCMConfigByID(ctx, c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted config: %v", err)
	}
	if _, err := s.DeleteSCMConfig(ctx, c.ID, false); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func testSCMConnections(t *testing.T, f Factory) {
	ctx := context.Background()
	clock := newFakeClock()
	s := f.open(t, clock)
	alice := mustUser(t, s, "alice", false)
	bob := mustUser(t, s, "bob", false)
	c, err := s.CreateSCMConfig(ctx, newSCMConfig("gitea", "gitea"))
	if err != nil {
		t.Fatal(err)
	}
	exp := clock.Now().Add(time.Hour)
	conn, err := s.PutSCMConnection(ctx, store.SCMConnection{UserID: alice.ID, ConfigID: c.ID, Login: "alice-gh", AccessToken: "at1", RefreshToken: "rt1", TokenType: "Bearer", Expiry: exp},
		store.AuditEntry{Actor: "alice", Action: "scm.connect", Target: "gitea"})
	if err != nil || conn.AccessToken != "at1" || conn.RefreshToken != "rt1" || !conn.Expiry.Equal(exp) || conn.Login != "alice-gh" || conn.Version == 0 {
		t.Fatalf("put: %+v %v", conn, err)
	}
	if _, err := s.SCMConnection(ctx, bob.ID, c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("bob's: %v", err)
	}
	if _, err := s.PutSCMConnection(ctx, store.SCMConnection{UserID: alice.ID, ConfigID: 999, AccessToken: "x"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown config: %v", err)
	}
	// A refresh over the version read; a stale version is ErrConflict.
	up, err := s.UpdateSCMToken(ctx, alice.ID, c.ID, conn.Version, store.SCMToken{AccessToken: "at2", RefreshToken: "rt2", Expiry: exp.Add(time.Hour)})
	if err != nil || up.AccessToken != "at2" || up.RefreshToken != "rt2" || up.Version == conn.Version {
		t.Fatalf("refresh: %+v %v", up, err)
	}
	if _, err := s.UpdateSCMToken(ctx, alice.ID, c.ID, conn.Version, store.SCMToken{AccessToken: "at3"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale refresh: %v", err)
	}
	if _, err := s.UpdateSCMToken(ctx, bob.ID, c.ID, 1, store.SCMToken{AccessToken: "at3"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refresh of none: %v", err)
	}
	// Replacing keeps one row.
	if _, err := s.PutSCMConnection(ctx, store.SCMConnection{UserID: alice.ID, ConfigID: c.ID, Login: "alice2", AccessToken: "pat"}); err != nil {
		t.Fatal(err)
	}
	list, err := s.SCMConnections(ctx, alice.ID)
	if err != nil || len(list) != 1 || list[0].AccessToken != "pat" || list[0].RefreshToken != "" || !list[0].Expiry.IsZero() {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := s.DeleteSCMConnection(ctx, alice.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSCMConnection(ctx, alice.ID, c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	// Deleting the configuration deletes its connections.
	if _, err := s.PutSCMConnection(ctx, store.SCMConnection{UserID: bob.ID, ConfigID: c.ID, AccessToken: "b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteSCMConfig(ctx, c.ID, false); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.SCMConnections(ctx, bob.ID); len(list) != 0 {
		t.Fatalf("connections of a deleted configuration: %+v", list)
	}
}

func testOAuthStates(t *testing.T, f Factory) {
	ctx := context.Background()
	clock := newFakeClock()
	s := f.open(t, clock)
	alice := mustUser(t, s, "alice", false)
	c, err := s.CreateSCMConfig(ctx, newSCMConfig("gitea", "gitea"))
	if err != nil {
		t.Fatal(err)
	}
	st := store.OAuthState{State: "s1", UserID: alice.ID, ConfigID: c.ID, Verifier: "v1", ReturnTo: "/back", ExpiresAt: clock.Now().Add(10 * time.Minute)}
	if err := s.CreateOAuthState(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOAuthState(ctx, store.OAuthState{State: "x", UserID: alice.ID, ConfigID: c.ID}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("no verifier: %v", err)
	}
	if _, err := s.ConsumeOAuthState(ctx, "forged"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("forged: %v", err)
	}
	got, err := s.ConsumeOAuthState(ctx, "s1")
	if err != nil || got.UserID != alice.ID || got.ConfigID != c.ID || got.Verifier != "v1" || got.ReturnTo != "/back" {
		t.Fatalf("consume: %+v %v", got, err)
	}
	if _, err := s.ConsumeOAuthState(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("replayed: %v", err)
	}
	// Expired: refused, and gone.
	st.State, st.ExpiresAt = "s2", clock.Now().Add(time.Minute)
	if err := s.CreateOAuthState(ctx, st); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	if _, err := s.ConsumeOAuthState(ctx, "s2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired: %v", err)
	}
	clock.Advance(-2 * time.Minute)
	if _, err := s.ConsumeOAuthState(ctx, "s2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an expired state was kept: %v", err)
	}
}

// testTwoHandlesConsumeStateOnce: of 16 consumers over two Store values,
// exactly one gets the state.
func testTwoHandlesConsumeStateOnce(t *testing.T, f Factory) {
	ctx := context.Background()
	s1 := f.open(t, nil)
	s2 := f.second(t, s1, nil)
	alice := mustUser(t, s1, "alice", false)
	c, err := s1.CreateSCMConfig(ctx, newSCMConfig("gitea", "gitea"))
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 5; round++ {
		state := store.RandomHex(16)
		if err := s1.CreateOAuthState(ctx, store.OAuthState{State: state, UserID: alice.ID, ConfigID: c.ID, Verifier: "v", ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := s1
				if i%2 == 1 {
					s = s2
				}
				_, err := s.ConsumeOAuthState(ctx, state)
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, store.ErrNotFound):
					t.Errorf("consume: %v", err)
				}
			}()
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: %d consumers got the state, want 1", round, n)
		}
	}
}
