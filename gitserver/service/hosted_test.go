package service_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gitserver/gitserver/scm"
	"gitserver/gitserver/service"
	"gitserver/store"
)

// hostFake is a provider's repositories, deploy keys and webhooks.
type hostFake struct {
	mu      sync.Mutex
	n       int
	repos   map[string]scm.RemoteRepo // by id
	keys    map[string][]scm.DeployKey
	hooks   map[string][]scm.Webhook
	creates int
	failKey error // the next AddDeployKey fails with it
}

type hostProvider struct {
	*fakeProvider
	h *hostFake
}

func (p *hostProvider) Client(tok string) scm.Client {
	return &hostClient{fakeClient: &fakeClient{tok: tok}, h: p.h}
}

type hostClient struct {
	*fakeClient
	h *hostFake
}

func (c *hostClient) CreateRepo(ctx context.Context, owner scm.Owner, name string, private bool) (scm.RemoteRepo, error) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	for _, r := range c.h.repos {
		if r.FullName == owner.Name+"/"+name {
			return scm.RemoteRepo{}, fmt.Errorf("%w: 409 Conflict: The repository with the same name already exists.", scm.ErrExists)
		}
	}
	c.h.n++
	c.h.creates++
	id := strconv.Itoa(c.h.n)
	r := scm.RemoteRepo{ID: id, Owner: owner.Name, Name: name, FullName: owner.Name + "/" + name, HTMLURL: "https://scm.example/" + owner.Name + "/" + name,
		SSHURL: "ssh://git@scm.example:22/" + owner.Name + "/" + name + ".git", DefaultBranch: "main", Private: private}
	c.h.repos[id] = r
	return r, nil
}

func (c *hostClient) RepoByName(ctx context.Context, owner, name string) (scm.RemoteRepo, error) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	for _, r := range c.h.repos {
		if r.FullName == owner+"/"+name {
			return r, nil
		}
	}
	return scm.RemoteRepo{}, fmt.Errorf("%w: 404", scm.ErrNotFound)
}

func (c *hostClient) RepoByID(ctx context.Context, id string) (scm.RemoteRepo, error) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	if r, ok := c.h.repos[id]; ok {
		return r, nil
	}
	return scm.RemoteRepo{}, fmt.Errorf("%w: 404", scm.ErrNotFound)
}

func (c *hostClient) AddDeployKey(ctx context.Context, repo scm.RemoteRepo, title, key string, ro bool) (scm.DeployKey, error) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	if err := c.h.failKey; err != nil {
		c.h.failKey = nil
		return scm.DeployKey{}, err
	}
	c.h.n++
	k := scm.DeployKey{ID: strconv.Itoa(c.h.n), Title: title, Key: key, ReadOnly: ro}
	c.h.keys[repo.ID] = append(c.h.keys[repo.ID], k)
	return k, nil
}

func (c *hostClient) DeployKeys(ctx context.Context, repo scm.RemoteRepo) ([]scm.DeployKey, error) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	return append([]scm.DeployKey(nil), c.h.keys[repo.ID]...), nil
}

func (c *hostClient) DeleteDeployKey(ctx context.Context, repo scm.RemoteRepo, id string) error {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	var keep []scm.DeployKey
	for _, k := range c.h.keys[repo.ID] {
		if k.ID != id {
			keep = append(keep, k)
		}
	}
	c.h.keys[repo.ID] = keep
	return nil
}

func (c *hostClient) AddWebhook(ctx context.Context, repo scm.RemoteRepo, url, secret string) (scm.Webhook, error) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	c.h.n++
	w := scm.Webhook{ID: strconv.Itoa(c.h.n), URL: url, Active: true}
	c.h.hooks[repo.ID] = append(c.h.hooks[repo.ID], w)
	return w, nil
}

func (c *hostClient) Webhooks(ctx context.Context, repo scm.RemoteRepo) ([]scm.Webhook, error) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	return append([]scm.Webhook(nil), c.h.hooks[repo.ID]...), nil
}

func (c *hostClient) DeleteWebhook(ctx context.Context, repo scm.RemoteRepo, id string) error {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	var keep []scm.Webhook
	for _, w := range c.h.hooks[repo.ID] {
		if w.ID != id {
			keep = append(keep, w)
		}
	}
	c.h.hooks[repo.ID] = keep
	return nil
}

func (c *hostClient) BranchHead(ctx context.Context, repo scm.RemoteRepo, branch string) (string, error) {
	return "head-of-" + repo.FullName + "-" + branch, nil
}

// fakeMirrorer prepares mirrors with numbered keys and counts triggers.
type fakeMirrorer struct {
	mu       sync.Mutex
	n        int
	urls     []string
	triggers int
}

func (m *fakeMirrorer) Prepare(ctx context.Context, url, key string, hostKeys []string, interval string) (store.NewMirror, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	m.urls = append(m.urls, url)
	if len(hostKeys) == 0 {
		return store.NewMirror{}, errors.New("no pinned host keys given")
	}
	iv := time.Duration(0)
	if interval != "" {
		iv, _ = time.ParseDuration(interval)
	}
	return store.NewMirror{URL: url, PublicKey: fmt.Sprintf("ssh-ed25519 AAAAkey%d gitserver", m.n), PrivateKey: []byte("private"),
		KnownHosts: strings.Join(hostKeys, "\n"), WebhookSecret: "secret", Interval: iv}, nil
}

func (m *fakeMirrorer) Trigger(repoID int64, pusher string) {
	m.mu.Lock()
	m.triggers++
	m.mu.Unlock()
}

func TestCreateHosted(t *testing.T) {
	f, o, _ := scmSetup(t)
	ctx := f.ctx
	h := &hostFake{repos: map[string]scm.RemoteRepo{}, keys: map[string][]scm.DeployKey{}, hooks: map[string][]scm.Webhook{}}
	f.svc.SCM = func(c scm.Config) (scm.Provider, error) {
		return &hostProvider{fakeProvider: &fakeProvider{cfg: c, oauth: o}, h: h}, nil
	}
	mir := &fakeMirrorer{}
	f.svc.Mirrors = mir
	c, err := f.svc.CreateSCMConfig(ctx, user(f.admin), giteaInput())
	if err != nil {
		t.Fatal(err)
	}
	alice := user(f.alice)
	in := service.NewRepoInput{Name: "app", Visibility: "restricted"}
	host := service.HostInput{SCMConfig: c.ID, RemoteOwner: "team"}
	// Not connected: says how to connect.
	if _, _, err := f.svc.CreateHosted(ctx, alice, in, host); !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "/connect") {
		t.Fatalf("not connected: %v", err)
	}
	if _, err := f.db.PutSCMConnection(ctx, store.SCMConnection{UserID: f.alice.ID, ConfigID: c.ID, Login: "octo", AccessToken: "tok"}); err != nil {
		t.Fatal(err)
	}
	// An owner the admin did not allow.
	if _, _, err := f.svc.CreateHosted(ctx, alice, in, service.HostInput{SCMConfig: c.ID, RemoteOwner: "other"}); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "octo, team") {
		t.Fatalf("foreign owner: %v", err)
	}
	// The deploy key step fails: reported with the provider's answer.
	h.failKey = fmt.Errorf("%w: 422 Unprocessable Entity: key is invalid", scm.ErrInvalid)
	_, _, err = f.svc.CreateHosted(ctx, alice, in, host)
	var se *service.StepError
	if !errors.As(err, &se) || se.Step != "adding the deploy key" || !strings.Contains(err.Error(), "key is invalid") {
		t.Fatalf("failed step: %v", err)
	}
	// The same request again completes it, without duplicates.
	for range 2 {
		rp, m, err := f.svc.CreateHosted(ctx, alice, in, host)
		if err != nil {
			t.Fatal(err)
		}
		if rp.FullName() != "alice/app" || m.SCMConfigID != c.ID || m.Remote.FullName != "team/app" || m.Remote.ID == "" || m.Remote.DefaultBranch != "main" {
			t.Fatalf("hosted: %+v %+v", rp, m)
		}
	}
	rp, err := f.db.RepoByName(ctx, "alice", "app")
	if err != nil {
		t.Fatal(err)
	}
	m, err := f.db.MirrorByRepo(ctx, rp.ID)
	if err != nil {
		t.Fatal(err)
	}
	remote := h.repos[m.Remote.ID]
	if h.creates != 1 || !remote.Private || len(h.keys[remote.ID]) != 1 || !h.keys[remote.ID][0].ReadOnly || h.keys[remote.ID][0].Key != m.PublicKey ||
		len(h.hooks[remote.ID]) != 1 || h.hooks[remote.ID][0].URL != "http://gitserver.test/hooks/scm/"+m.HookID {
		t.Fatalf("upstream: creates %d %+v keys %+v hooks %+v", h.creates, remote, h.keys, h.hooks)
	}
	if mir.n != 1 || mir.urls[0] != remote.SSHURL || m.Provider != "gitea" || mir.triggers == 0 {
		t.Fatalf("mirror: %+v %+v", mir, m)
	}
	// The same name here hosted elsewhere upstream; a bad visibility.
	if _, _, err := f.svc.CreateHosted(ctx, alice, in, service.HostInput{SCMConfig: c.ID, RemoteOwner: "octo"}); !errors.Is(err, store.ErrExists) || !strings.Contains(err.Error(), "team/app") {
		t.Fatalf("same name, other remote: %v", err)
	}
	if _, _, err := f.svc.CreateHosted(ctx, alice, service.NewRepoInput{Name: "vis", Visibility: "secret"}, host); !errors.Is(err, store.ErrInvalid) || h.creates != 1 {
		t.Fatalf("bad visibility: %v (%d created upstream)", err, h.creates)
	}
	// A name taken here by a plain repository.
	if _, err := f.svc.CreateRepo(ctx, alice, service.NewRepoInput{Name: "plain", Visibility: "restricted"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.CreateHosted(ctx, alice, service.NewRepoInput{Name: "plain", Visibility: "restricted"}, host); !errors.Is(err, store.ErrExists) {
		t.Fatalf("taken: %v", err)
	}
	if h.creates != 1 {
		t.Fatalf("created upstream for a taken name")
	}

	// Repair: nothing missing; then the key deleted upstream and renamed.
	st, _, err := f.svc.RepairHosted(ctx, alice, rp)
	if err != nil || st.DeployKey != "present" || st.Webhook != "present" {
		t.Fatalf("repair: %+v %v", st, err)
	}
	h.keys[remote.ID] = nil
	remote.FullName, remote.Name = "team/app2", "app2"
	h.repos[remote.ID] = remote
	st, m2, err := f.svc.RepairHosted(ctx, alice, rp)
	if err != nil || st.DeployKey != "added" || st.Webhook != "present" || len(h.keys[remote.ID]) != 1 || m2.Remote.FullName != "team/app2" {
		t.Fatalf("repair: %+v %+v %v", st, m2, err)
	}
	// Without a connection: the steps to take by hand.
	if err := f.db.DeleteSCMConnection(ctx, f.alice.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.RepairHosted(ctx, alice, rp)
	var re *service.RepairError
	if !errors.As(err, &re) || len(re.Steps) < 2 || !strings.Contains(strings.Join(re.Steps, "\n"), m.PublicKey) {
		t.Fatalf("repair without connection: %v", err)
	}
	// Bitbucket would change the name: said before creating.
	bb, err := f.svc.CreateSCMConfig(ctx, user(f.admin), service.SCMConfigInput{Name: sp("bb"), Kind: sp("bitbucket-cloud"), WebsiteURL: sp("https://bitbucket.example"),
		APIURL: sp("https://api.bitbucket.example/2.0"), SSHURL: sp("ssh://git@bitbucket.example:22"), ClientID: sp("cid"), ClientSecret: sp("csecret")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.PutSCMConnection(ctx, store.SCMConnection{UserID: f.alice.ID, ConfigID: bb.ID, Login: "octo", AccessToken: "tok"}); err != nil {
		t.Fatal(err)
	}
	creates := h.creates
	if _, _, err := f.svc.CreateHosted(ctx, alice, service.NewRepoInput{Name: "MyApp", Visibility: "restricted"}, service.HostInput{SCMConfig: bb.ID, RemoteOwner: "octo"}); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), `"myapp"`) || h.creates != creates {
		t.Fatalf("bitbucket slug: %v", err)
	}
	// Bitbucket Server in api mode: no webhook, polled through the API.
	bbs, err := f.svc.CreateSCMConfig(ctx, user(f.admin), service.SCMConfigInput{Name: sp("bbs"), Kind: sp("bitbucket-server"), Mode: sp("api"),
		WebsiteURL: sp("https://bbs.example"), APIURL: sp("https://bbs.example/rest"), SSHURL: sp("ssh://git@bbs.example:7999"), ProjectKey: sp("PRJ"), AccessToken: sp("pat")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.PutSCMConnection(ctx, store.SCMConnection{UserID: f.alice.ID, ConfigID: bbs.ID, Login: "octo", AccessToken: "alice-pat"}); err != nil {
		t.Fatal(err)
	}
	_, pm, err := f.svc.CreateHosted(ctx, alice, service.NewRepoInput{Name: "svc", Visibility: "restricted"}, service.HostInput{SCMConfig: bbs.ID, RemoteOwner: "PRJ"})
	if err != nil {
		t.Fatal(err)
	}
	if pm.Interval != time.Minute || len(h.hooks[pm.Remote.ID]) != 0 || len(h.keys[pm.Remote.ID]) != 1 {
		t.Fatalf("polled mirror: %+v hooks %v", pm, h.hooks[pm.Remote.ID])
	}
	if head, ok, err := f.svc.PolledHead(ctx, pm); err != nil || !ok || head != "head-of-PRJ/svc-main" {
		t.Fatalf("polled head: %q %v %v", head, ok, err)
	}
	if st, _, err := f.svc.RepairHosted(ctx, alice, mustRepo(t, f, "alice", "svc")); err != nil || st.Webhook != "none" {
		t.Fatalf("repair of a polled mirror: %+v %v", st, err)
	}
	if _, ok, err := f.svc.PolledHead(ctx, m); ok || err != nil {
		t.Fatalf("a webhook mirror is polled: %v %v", ok, err)
	}
	// Deleting here removes the hook and key upstream (with the creator's
	// connection, the deleting admin having none), never the repository.
	if _, err := f.db.PutSCMConnection(ctx, store.SCMConnection{UserID: f.alice.ID, ConfigID: c.ID, Login: "octo", AccessToken: "tok"}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteRepo(ctx, user(f.admin), rp); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.repos[remote.ID]; !ok || len(h.keys[remote.ID]) != 0 || len(h.hooks[remote.ID]) != 0 {
		t.Fatalf("after delete: %+v keys %+v hooks %+v", h.repos, h.keys, h.hooks)
	}
}

func mustRepo(t *testing.T, f *fixture, owner, name string) store.Repo {
	t.Helper()
	r, err := f.db.RepoByName(f.ctx, owner, name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDisconnectGitHubKeepsDeployKeys: revoking a GitHub OAuth grant
// deletes the deploy keys its tokens added, so a disconnect does not
// revoke while repositories created through the connection are hosted
// here; another user's connection to the same configuration is revoked.
func TestDisconnectGitHubKeepsDeployKeys(t *testing.T) {
	f, o, _ := scmSetup(t)
	ctx := f.ctx
	h := &hostFake{repos: map[string]scm.RemoteRepo{}, keys: map[string][]scm.DeployKey{}, hooks: map[string][]scm.Webhook{}}
	f.svc.SCM = func(c scm.Config) (scm.Provider, error) {
		return &hostProvider{fakeProvider: &fakeProvider{cfg: c, oauth: o}, h: h}, nil
	}
	f.svc.Mirrors = &fakeMirrorer{}
	in := giteaInput()
	in.Name, in.Kind, in.WebsiteURL, in.APIURL = sp("github"), sp("github"), sp("https://github.example"), sp("https://github.example/api/v3")
	c, err := f.svc.CreateSCMConfig(ctx, user(f.admin), in)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []store.Account{f.alice, f.admin} {
		if _, err := f.db.PutSCMConnection(ctx, store.SCMConnection{UserID: u.ID, ConfigID: c.ID, Login: u.Name, AccessToken: "tok-" + u.Name}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := f.svc.CreateHosted(ctx, user(f.alice), service.NewRepoInput{Name: "app", Visibility: "restricted"},
		service.HostInput{SCMConfig: c.ID, RemoteOwner: "team"}); err != nil {
		t.Fatal(err)
	}

	if err := f.svc.DisconnectSCM(ctx, user(f.alice), c.ID); err != nil {
		t.Fatal(err)
	}
	if ev := f.lastEvent(t); ev.Action != "scm.disconnect" || !strings.Contains(ev.Detail, "not revoked") || !strings.Contains(ev.Detail, "alice/app") {
		t.Fatalf("audit: %+v", ev)
	}
	if _, err := f.db.SCMConnection(ctx, f.alice.ID, c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("alice's connection after disconnect: %v", err)
	}
	if err := f.svc.DisconnectSCM(ctx, user(f.admin), c.ID); err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.revoked) != 2 || o.revoked[0] != "tok-"+f.admin.Name {
		t.Fatalf("revoked %q, want the admin's token only", o.revoked)
	}
}
