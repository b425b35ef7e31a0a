package scm

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// bitbucketCloud is bitbucket.org (REST 2.0). Owners are workspaces (the
// user's own first); repositories are workspace/slug, their stable id the
// {uuid}. Listings carry the next page's URL in "next".
type bitbucketCloud struct{ base }

func (b *bitbucketCloud) OAuth2(redirectURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     b.cfg.ClientID,
		ClientSecret: b.cfg.ClientSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   b.web + "/site/oauth2/authorize",
			TokenURL:  b.web + "/site/oauth2/access_token",
			AuthStyle: oauth2.AuthStyleInHeader,
		},
		RedirectURL: redirectURL,
		// Bitbucket takes the scopes from the OAuth consumer's permissions
		// (account, repository:admin, webhook, project), not from the request.
	}
}

// Check: GET /user answers (401 without credentials), and the token
// endpoint accepts the OAuth consumer (HTTP Basic key:secret).
func (b *bitbucketCloud) Check(ctx context.Context) error {
	if err := b.pingAPI(ctx, "/user"); err != nil {
		return err
	}
	return b.oauthProbe(ctx, b.web+"/site/oauth2/access_token", true)
}

func (b *bitbucketCloud) Client(token string) Client {
	return &bbcClient{client{b: &b.base, auth: "Bearer " + token}}
}

type bbcClient struct{ client }

type bbcLink struct {
	Href string `json:"href"`
	Name string `json:"name"`
}

type bbcRepo struct {
	UUID      string `json:"uuid"`
	Slug      string `json:"slug"`
	FullName  string `json:"full_name"`
	IsPrivate bool   `json:"is_private"`
	Workspace struct {
		Slug string `json:"slug"`
	} `json:"workspace"`
	Mainbranch *struct {
		Name string `json:"name"`
	} `json:"mainbranch"`
	Links struct {
		HTML  bbcLink   `json:"html"`
		Clone []bbcLink `json:"clone"`
	} `json:"links"`
}

func (r bbcRepo) remote() RemoteRepo {
	owner, slug := splitFull(r.FullName)
	if r.Workspace.Slug != "" {
		owner = r.Workspace.Slug
	}
	if r.Slug != "" {
		slug = r.Slug
	}
	rr := RemoteRepo{ID: r.UUID, Owner: owner, Name: slug, FullName: owner + "/" + slug,
		HTMLURL: r.Links.HTML.Href, Private: r.IsPrivate}
	if r.Mainbranch != nil {
		rr.DefaultBranch = r.Mainbranch.Name
	}
	for _, l := range r.Links.Clone {
		if l.Name == "ssh" {
			rr.SSHURL = l.Href
		}
	}
	return rr
}

type bbcKey struct {
	ID    int64  `json:"id"`
	Key   string `json:"key"`
	Label string `json:"label"`
}

func (k bbcKey) deployKey() DeployKey {
	return DeployKey{ID: itoa(k.ID), Title: k.Label, Key: keyText(k.Key), ReadOnly: true}
}

type bbcHook struct {
	UUID   string `json:"uuid"`
	URL    string `json:"url"`
	Active bool   `json:"active"`
}

func (h bbcHook) webhook() Webhook { return Webhook{ID: h.UUID, URL: h.URL, Active: h.Active} }

// listNext GETs every page of a listing paginated by "next".
func listNext[T any](ctx context.Context, cl *client, path string, q url.Values, each func([]T)) error {
	c := call{method: http.MethodGet, path: path, query: q}
	for range maxPages {
		var page struct {
			Values []T    `json:"values"`
			Next   string `json:"next"`
		}
		c.out = &page
		if _, err := cl.do(ctx, c); err != nil {
			return err
		}
		each(page.Values)
		if page.Next == "" {
			return nil
		}
		c = call{method: http.MethodGet, abs: page.Next}
	}
	return fmt.Errorf("%s: %w: %s has more than %d pages", cl.b.cfg.Kind, ErrInvalid, path, maxPages)
}

func bbcPath(repo RemoteRepo) string { return "/repositories/" + p(repo.Owner) + "/" + p(repo.Name) }

func (c *bbcClient) CurrentUser(ctx context.Context) (Owner, error) {
	var u struct {
		Username string `json:"username"`
		Nickname string `json:"nickname"`
	}
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/user", out: &u}); err != nil {
		return Owner{}, err
	}
	name := u.Username
	if name == "" {
		name = u.Nickname
	}
	return Owner{Name: name, Kind: "user"}, nil
}

// Owners: the user's personal workspace, then the workspaces the user is a
// member of.
func (c *bbcClient) Owners(ctx context.Context) ([]Owner, error) {
	me, err := c.CurrentUser(ctx)
	if err != nil {
		return nil, err
	}
	owners := []Owner{me}
	err = listNext(ctx, &c.client, "/user/permissions/workspaces", url.Values{"pagelen": {"100"}}, func(page []struct {
		Workspace struct {
			Slug string `json:"slug"`
		} `json:"workspace"`
	}) {
		for _, w := range page {
			if w.Workspace.Slug != me.Name {
				owners = append(owners, Owner{Name: w.Workspace.Slug, Kind: "workspace"})
			}
		}
	})
	return owners, err
}

func (c *bbcClient) CreateRepo(ctx context.Context, owner Owner, name string, private bool) (RemoteRepo, error) {
	var r bbcRepo
	_, err := c.do(ctx, call{method: http.MethodPost, path: "/repositories/" + p(owner.Name) + "/" + p(strings.ToLower(name)),
		in: map[string]any{"scm": "git", "name": name, "is_private": private}, out: &r})
	return r.remote(), err
}

func (c *bbcClient) RepoByName(ctx context.Context, owner, name string) (RemoteRepo, error) {
	var r bbcRepo
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/repositories/" + p(owner) + "/" + p(strings.ToLower(name)), out: &r})
	return r.remote(), err
}

// RepoByID: Bitbucket resolves a {uuid} in place of the slug under the
// empty workspace "{}".
func (c *bbcClient) RepoByID(ctx context.Context, id string) (RemoteRepo, error) {
	if !strings.HasPrefix(id, "{") || !strings.HasSuffix(id, "}") {
		return RemoteRepo{}, fmt.Errorf("%w (bitbucket-cloud: repository id %q is not a {uuid})", ErrNotFound, id)
	}
	var r bbcRepo
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/repositories/" + p("{}") + "/" + p(id), out: &r})
	return r.remote(), err
}

// AddDeployKey: Bitbucket Cloud deploy keys are always read-only.
func (c *bbcClient) AddDeployKey(ctx context.Context, repo RemoteRepo, title, publicKey string, readOnly bool) (DeployKey, error) {
	if !readOnly {
		return DeployKey{}, fmt.Errorf("%w (bitbucket-cloud: deploy keys are always read-only)", ErrInvalid)
	}
	var k bbcKey
	_, err := c.do(ctx, call{method: http.MethodPost, path: bbcPath(repo) + "/deploy-keys",
		in: map[string]any{"key": publicKey, "label": title}, out: &k})
	return k.deployKey(), err
}

func (c *bbcClient) DeployKeys(ctx context.Context, repo RemoteRepo) ([]DeployKey, error) {
	var keys []DeployKey
	err := listNext(ctx, &c.client, bbcPath(repo)+"/deploy-keys", url.Values{"pagelen": {"100"}}, func(page []bbcKey) {
		for _, k := range page {
			keys = append(keys, k.deployKey())
		}
	})
	return keys, err
}

func (c *bbcClient) DeleteDeployKey(ctx context.Context, repo RemoteRepo, id string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: bbcPath(repo) + "/deploy-keys/" + p(id)})
	return gone(err)
}

// AddWebhook: pushes, renames and transfers; signed with secret
// (X-Hub-Signature: sha256=...).
func (c *bbcClient) AddWebhook(ctx context.Context, repo RemoteRepo, hookURL, secret string) (Webhook, error) {
	var h bbcHook
	_, err := c.do(ctx, call{method: http.MethodPost, path: bbcPath(repo) + "/hooks", in: map[string]any{
		"description": "gitserver", "url": hookURL, "active": true, "secret": secret,
		"events": []string{"repo:push", "repo:updated", "repo:transfer"},
	}, out: &h})
	return h.webhook(), err
}

func (c *bbcClient) Webhooks(ctx context.Context, repo RemoteRepo) ([]Webhook, error) {
	var hooks []Webhook
	err := listNext(ctx, &c.client, bbcPath(repo)+"/hooks", url.Values{"pagelen": {"100"}}, func(page []bbcHook) {
		for _, h := range page {
			hooks = append(hooks, h.webhook())
		}
	})
	return hooks, err
}

func (c *bbcClient) DeleteWebhook(ctx context.Context, repo RemoteRepo, id string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: bbcPath(repo) + "/hooks/" + p(id)})
	return gone(err)
}

func (c *bbcClient) BranchHead(ctx context.Context, repo RemoteRepo, branch string) (string, error) {
	var b struct {
		Target struct {
			Hash string `json:"hash"`
		} `json:"target"`
	}
	_, err := c.do(ctx, call{method: http.MethodGet, path: bbcPath(repo) + "/refs/branches/" + p(branch), out: &b})
	return b.Target.Hash, err
}

// Revoke: Bitbucket Cloud has no OAuth revocation API.
func (b *bitbucketCloud) Revoke(context.Context, string, string) error {
	return fmt.Errorf("%w (bitbucket-cloud: no OAuth revocation API; revoke the access under Personal settings → App authorizations)", ErrNotSupported)
}
