package scmtest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"gitserver/gitserver/scm"
)

// Fixture is one provider as the suite sees it.
type Fixture struct {
	// Provider is configured correctly: Check succeeds.
	Provider scm.Provider
	// Refused is the same provider with a wrong OAuth secret (Bitbucket
	// Server: a revoked access token): its Check fails with
	// ErrUnauthorized. Nil skips that step.
	Refused scm.Provider
	// Token is a valid user token; BadToken an expired or revoked one.
	Token, BadToken string
	// Owners is what Client(Token).Owners must return, in order: the user,
	// then the organisations (Bitbucket Server: the project alone). Fakes
	// list enough for two pages.
	Owners []scm.Owner
	// Foreign is an owner the user may not create repositories under ("" to
	// skip).
	Foreign string
	// MissingID is a well-formed repository id that does not exist.
	MissingID string
	// Existing is a repository with a commit: Branch points at Head.
	Existing RepoRef
	// Polled is a configuration that adds no webhooks (Bitbucket Server in
	// api mode): AddWebhook must refuse with ErrInvalid.
	Polled              bool
	HookURL, HookSecret string // where webhooks point, and their secret ("" = random)
	// Fault, when set, makes the provider's next answer the given status
	// with the given headers (fakes only; a real provider cannot be made
	// to rate-limit on demand).
	Fault func(status int, header map[string]string)
}

// RepoRef names a repository with a known branch head.
type RepoRef struct{ Owner, Name, Branch, Head string }

// Run runs the contract over f.
func Run(t *testing.T, f Fixture) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := f.Provider.Client(f.Token)
	kind := f.Provider.Kind()
	var errs []error // every error an adapter returned: none may quote a token
	is := func(t *testing.T, what string, err, want error) {
		t.Helper()
		errs = append(errs, err)
		if !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", what, err, want)
		}
		if err != nil && err.Error() == want.Error() {
			t.Errorf("%s: %q carries nothing of the provider's answer", what, err)
		}
	}
	ok := func(t *testing.T, what string, err error) {
		t.Helper()
		if err != nil {
			errs = append(errs, err)
			t.Fatalf("%s: %v", what, err)
		}
	}
	if f.HookSecret == "" {
		f.HookSecret = randHex(16)
	}

	t.Run("Check", func(t *testing.T) {
		ok(t, "Check", f.Provider.Check(ctx))
		if f.Refused != nil {
			is(t, "Check with refused credentials", f.Refused.Check(ctx), scm.ErrUnauthorized)
		}
		if o := f.Provider.OAuth2("https://ci.example/scm/1/callback"); kind == scm.BitbucketServer {
			if o != nil {
				t.Errorf("OAuth2 = %+v, want nil for Bitbucket Server", o)
			}
		} else if o == nil || o.Endpoint.AuthURL == "" || o.Endpoint.TokenURL == "" || o.RedirectURL != "https://ci.example/scm/1/callback" {
			t.Errorf("OAuth2 = %+v", o)
		}
	})

	t.Run("ExpiredToken", func(t *testing.T) {
		bad := f.Provider.Client(f.BadToken)
		_, err := bad.CurrentUser(ctx)
		is(t, "CurrentUser with an expired token", err, scm.ErrUnauthorized)
		_, err = bad.Owners(ctx)
		is(t, "Owners with an expired token", err, scm.ErrUnauthorized)
		_, err = bad.RepoByName(ctx, f.Existing.Owner, f.Existing.Name)
		is(t, "RepoByName with an expired token", err, scm.ErrUnauthorized)
	})

	var me scm.Owner
	t.Run("Owners", func(t *testing.T) {
		var err error
		me, err = c.CurrentUser(ctx)
		ok(t, "CurrentUser", err)
		if me.Name == "" || me.Kind != "user" {
			t.Fatalf("CurrentUser = %+v", me)
		}
		owners, err := c.Owners(ctx)
		ok(t, "Owners", err)
		if !slices.Equal(owners, f.Owners) {
			t.Fatalf("Owners = %v\nwant     %v", owners, f.Owners)
		}
		if kind != scm.BitbucketServer && owners[0] != me {
			t.Fatalf("Owners[0] = %+v, want the user %+v", owners[0], me)
		}
	})
	if t.Failed() {
		return
	}

	name := "contract-" + randHex(4)
	var repo scm.RemoteRepo
	t.Run("CreateRepo", func(t *testing.T) {
		var err error
		repo, err = c.CreateRepo(ctx, f.Owners[0], name, true)
		ok(t, "CreateRepo", err)
		want := f.Owners[0].Name + "/" + name
		if repo.ID == "" || repo.Name != name || repo.Owner != f.Owners[0].Name || repo.FullName != want ||
			!repo.Private || repo.SSHURL == "" || repo.DefaultBranch == "" {
			t.Fatalf("CreateRepo = %+v, want %s, private, with an id, an SSH URL and a default branch", repo, want)
		}
		_, err = c.CreateRepo(ctx, f.Owners[0], name, true)
		is(t, "CreateRepo again", err, scm.ErrExists)

		got, err := c.RepoByName(ctx, repo.Owner, repo.Name)
		ok(t, "RepoByName", err)
		if got != repo {
			t.Errorf("RepoByName = %+v\nCreateRepo = %+v", got, repo)
		}
		got, err = c.RepoByID(ctx, repo.ID)
		ok(t, "RepoByID", err)
		if got != repo {
			t.Errorf("RepoByID = %+v\nCreateRepo = %+v", got, repo)
		}
		_, err = c.RepoByName(ctx, repo.Owner, name+"-missing")
		is(t, "RepoByName of a missing repository", err, scm.ErrNotFound)
		_, err = c.RepoByID(ctx, f.MissingID)
		is(t, "RepoByID of a missing repository", err, scm.ErrNotFound)

		if len(f.Owners) > 1 {
			org := f.Owners[1]
			r, err := c.CreateRepo(ctx, org, name, false)
			ok(t, "CreateRepo under "+org.Name, err)
			if r.FullName != org.Name+"/"+name || r.Private || r.ID == repo.ID {
				t.Errorf("CreateRepo under %s = %+v", org.Name, r)
			}
		}
		if f.Foreign != "" {
			_, err := c.CreateRepo(ctx, scm.Owner{Name: f.Foreign, Kind: "org"}, name, true)
			is(t, "CreateRepo under a foreign owner", err, scm.ErrForbidden)
		}
	})
	if repo.ID == "" {
		return
	}

	t.Run("DeployKeys", func(t *testing.T) {
		keys := []string{newKey(t), newKey(t), newKey(t)}
		first, err := c.AddDeployKey(ctx, repo, "gitserver", keys[0], true)
		ok(t, "AddDeployKey", err)
		if first.ID == "" || first.Key != keys[0] || !first.ReadOnly || first.Title != "gitserver" {
			t.Fatalf("AddDeployKey = %+v, want read-only %q", first, keys[0])
		}
		_, err = c.AddDeployKey(ctx, repo, "gitserver-again", keys[0], true)
		is(t, "AddDeployKey of the same key", err, scm.ErrExists)
		for i, k := range keys[1:] {
			_, err := c.AddDeployKey(ctx, repo, "gitserver-"+string(rune('b'+i)), k, true)
			ok(t, "AddDeployKey", err)
		}
		list, err := c.DeployKeys(ctx, repo)
		ok(t, "DeployKeys", err)
		if got := deployKeyTexts(list); !slices.Equal(got, sorted(keys)) {
			t.Fatalf("DeployKeys = %v\nwant %v", list, keys)
		}
		if list[slices.IndexFunc(list, func(k scm.DeployKey) bool { return k.ID == first.ID })] != first {
			t.Errorf("DeployKeys lists %+v differently from AddDeployKey's %+v", list, first)
		}
		ok(t, "DeleteDeployKey", c.DeleteDeployKey(ctx, repo, first.ID))
		ok(t, "DeleteDeployKey again (it is gone)", c.DeleteDeployKey(ctx, repo, first.ID))
		list, err = c.DeployKeys(ctx, repo)
		ok(t, "DeployKeys", err)
		if got := deployKeyTexts(list); !slices.Equal(got, sorted(keys[1:])) {
			t.Fatalf("DeployKeys after the delete = %v, want %v", list, keys[1:])
		}
		_, err = c.DeployKeys(ctx, scm.RemoteRepo{ID: f.MissingID, Owner: repo.Owner, Name: name + "-missing", FullName: repo.Owner + "/" + name + "-missing"})
		is(t, "DeployKeys of a missing repository", err, scm.ErrNotFound)
	})

	t.Run("Webhooks", func(t *testing.T) {
		urls := []string{f.HookURL + "/1", f.HookURL + "/2", f.HookURL + "/3"}
		first, err := c.AddWebhook(ctx, repo, urls[0], f.HookSecret)
		if f.Polled {
			is(t, "AddWebhook on a polled configuration", err, scm.ErrInvalid)
			return
		}
		ok(t, "AddWebhook", err)
		if first.ID == "" || first.URL != urls[0] || !first.Active {
			t.Fatalf("AddWebhook = %+v, want an active hook to %s", first, urls[0])
		}
		for _, u := range urls[1:] {
			_, err := c.AddWebhook(ctx, repo, u, f.HookSecret)
			ok(t, "AddWebhook", err)
		}
		list, err := c.Webhooks(ctx, repo)
		ok(t, "Webhooks", err)
		if got := hookURLs(list); !slices.Equal(got, urls) {
			t.Fatalf("Webhooks = %+v, want hooks to %v", list, urls)
		}
		ok(t, "DeleteWebhook", c.DeleteWebhook(ctx, repo, first.ID))
		ok(t, "DeleteWebhook again (it is gone)", c.DeleteWebhook(ctx, repo, first.ID))
		list, err = c.Webhooks(ctx, repo)
		ok(t, "Webhooks", err)
		if got := hookURLs(list); !slices.Equal(got, urls[1:]) {
			t.Fatalf("Webhooks after the delete = %+v, want %v", list, urls[1:])
		}
	})

	t.Run("BranchHead", func(t *testing.T) {
		ex, err := c.RepoByName(ctx, f.Existing.Owner, f.Existing.Name)
		ok(t, "RepoByName", err)
		if ex.DefaultBranch != f.Existing.Branch {
			t.Errorf("default branch %q, want %q", ex.DefaultBranch, f.Existing.Branch)
		}
		head, err := c.BranchHead(ctx, ex, f.Existing.Branch)
		ok(t, "BranchHead", err)
		if head != f.Existing.Head {
			t.Fatalf("BranchHead = %q, want %q", head, f.Existing.Head)
		}
		_, err = c.BranchHead(ctx, ex, "no-such-branch")
		is(t, "BranchHead of a missing branch", err, scm.ErrNotFound)
	})

	t.Run("RateLimitsAndOutages", func(t *testing.T) {
		if f.Fault == nil {
			t.Log("the fixture cannot inject faults (a real provider)")
			return
		}
		for _, tc := range []struct {
			status int
			header map[string]string
			want   error
			after  time.Duration
		}{
			{429, map[string]string{"Retry-After": "7"}, scm.ErrRateLimited, 7 * time.Second},
			{403, map[string]string{"Retry-After": "30"}, scm.ErrRateLimited, 30 * time.Second}, // GitHub's secondary limits
			{429, map[string]string{"Retry-After": time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)}, scm.ErrRateLimited, 90 * time.Second},
			{403, nil, scm.ErrForbidden, 0},
			{503, nil, scm.ErrUnavailable, 0},
			{422, nil, scm.ErrInvalid, 0},
		} {
			f.Fault(tc.status, tc.header)
			_, err := c.RepoByName(ctx, repo.Owner, repo.Name)
			is(t, "RepoByName answered "+strconv.Itoa(tc.status), err, tc.want)
			if tc.after == 0 {
				var rl *scm.RateLimitError
				if errors.As(err, &rl) {
					t.Errorf("%d without Retry-After: %v is a RateLimitError", tc.status, err)
				}
				continue
			}
			var rl *scm.RateLimitError
			if !errors.As(err, &rl) {
				t.Fatalf("%d %v: %v is not a *RateLimitError", tc.status, tc.header, err)
			}
			if d := rl.RetryAfter - tc.after; d < -2*time.Second || d > 2*time.Second {
				t.Errorf("%d %v: RetryAfter %v, want %v", tc.status, tc.header, rl.RetryAfter, tc.after)
			}
		}
		// The next request works again.
		_, err := c.RepoByName(ctx, repo.Owner, repo.Name)
		ok(t, "RepoByName after the faults", err)
	})

	// Revoke comes last: where the provider revokes, Token is dead after.
	t.Run("Revoke", func(t *testing.T) {
		if f.Refused != nil {
			err := f.Refused.Revoke(ctx, f.Token, "")
			errs = append(errs, err)
			if !errors.Is(err, scm.ErrNotSupported) && !errors.Is(err, scm.ErrUnauthorized) && !errors.Is(err, scm.ErrForbidden) {
				t.Fatalf("Revoke with refused application credentials: %v, want ErrUnauthorized, ErrForbidden or ErrNotSupported", err)
			}
		}
		err := f.Provider.Revoke(ctx, f.Token, "")
		errs = append(errs, err)
		if errors.Is(err, scm.ErrNotSupported) {
			if err.Error() == scm.ErrNotSupported.Error() {
				t.Errorf("Revoke: %q does not say how to revoke by hand", err)
			}
			_, err := c.CurrentUser(ctx)
			ok(t, "CurrentUser after a Revoke the provider does not support", err)
			return
		}
		ok(t, "Revoke", err)
		_, err = c.CurrentUser(ctx)
		is(t, "CurrentUser with a revoked token", err, scm.ErrUnauthorized)
		ok(t, "Revoke again (revoked already)", f.Provider.Revoke(ctx, f.Token, ""))
	})

	t.Run("NoTokenInErrors", func(t *testing.T) {
		for _, err := range errs {
			if err == nil {
				continue
			}
			for _, tok := range []string{f.Token, f.BadToken} {
				if tok != "" && strings.Contains(err.Error(), tok) {
					t.Errorf("error quotes a token: %v", err)
				}
			}
		}
	})
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newKey is a fresh ed25519 public key as "ssh-ed25519 AAAA..." (no comment).
func newKey(t *testing.T) string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
}

func deployKeyTexts(keys []scm.DeployKey) []string {
	var out []string
	for _, k := range keys {
		if !k.ReadOnly {
			out = append(out, "(writable) "+k.Key)
			continue
		}
		out = append(out, k.Key)
	}
	return sorted(out)
}

func hookURLs(hooks []scm.Webhook) []string {
	var out []string
	for _, h := range hooks {
		if !h.Active {
			out = append(out, "(inactive) "+h.URL)
			continue
		}
		out = append(out, h.URL)
	}
	return sorted(out)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
