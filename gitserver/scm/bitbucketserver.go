package scm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
)

// bitbucketServer is Bitbucket Server / Data Center (REST 1.0). There is no
// OAuth: the configuration's project and a personal (or project) HTTP
// access token, sent as Bearer. Repositories are created only in the
// configured project. Listings page with isLastPage / nextPageStart.
type bitbucketServer struct{ base }

func (b *bitbucketServer) OAuth2(string) *oauth2.Config { return nil }

// Check: the configuration's access token is accepted and its project
// exists.
func (b *bitbucketServer) Check(ctx context.Context) error {
	if b.cfg.AccessToken == "" {
		return fmt.Errorf("%w (bitbucket-server: access_token, a personal or project HTTP access token, is required)", ErrInvalid)
	}
	c := b.client(b.cfg.AccessToken)
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/rest/api/1.0/projects/" + p(b.cfg.ProjectKey), out: &struct{}{}})
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w (bitbucket-server: project %q does not exist or the token cannot see it: %v)", ErrNotFound, b.cfg.ProjectKey, err)
	}
	return err
}

// Client acts with token, or with the configuration's own access token
// when token is "".
func (b *bitbucketServer) Client(token string) Client {
	if token == "" {
		token = b.cfg.AccessToken
	}
	return b.client(token)
}

func (b *bitbucketServer) client(token string) *bbsClient {
	// X-Atlassian-Token: no-check keeps XSRF protection from refusing writes.
	return &bbsClient{client{b: &b.base, auth: "Bearer " + token, header: map[string]string{"X-Atlassian-Token": "no-check"}}}
}

type bbsClient struct{ client }

type bbsRepo struct {
	ID      int64  `json:"id"`
	Slug    string `json:"slug"`
	Public  bool   `json:"public"`
	Project struct {
		Key string `json:"key"`
	} `json:"project"`
	Links struct {
		Clone []bbcLink `json:"clone"`
		Self  []bbcLink `json:"self"`
	} `json:"links"`
}

func (r bbsRepo) remote() RemoteRepo {
	rr := RemoteRepo{ID: itoa(r.ID), Owner: r.Project.Key, Name: r.Slug, FullName: r.Project.Key + "/" + r.Slug, Private: !r.Public}
	for _, l := range r.Links.Clone {
		if l.Name == "ssh" {
			rr.SSHURL = l.Href
		}
	}
	if len(r.Links.Self) > 0 {
		rr.HTMLURL = r.Links.Self[0].Href
	}
	return rr
}

type bbsKey struct {
	Key struct {
		ID    int64  `json:"id"`
		Text  string `json:"text"`
		Label string `json:"label"`
	} `json:"key"`
	Permission string `json:"permission"`
}

func (k bbsKey) deployKey() DeployKey {
	return DeployKey{ID: itoa(k.Key.ID), Title: k.Key.Label, Key: keyText(k.Key.Text), ReadOnly: k.Permission == "REPO_READ"}
}

type bbsHook struct {
	ID     int64  `json:"id"`
	URL    string `json:"url"`
	Active bool   `json:"active"`
}

func (h bbsHook) webhook() Webhook { return Webhook{ID: itoa(h.ID), URL: h.URL, Active: h.Active} }

// listPaged GETs every page of a Bitbucket Server listing.
func listPaged[T any](ctx context.Context, cl *client, path string, q url.Values, each func([]T) bool) error {
	if q == nil {
		q = url.Values{}
	}
	q.Set("limit", "100")
	for range maxPages {
		var page struct {
			Values        []T  `json:"values"`
			IsLastPage    bool `json:"isLastPage"`
			NextPageStart *int `json:"nextPageStart"`
		}
		if _, err := cl.do(ctx, call{method: http.MethodGet, path: path, query: q, out: &page}); err != nil {
			return err
		}
		if !each(page.Values) || page.IsLastPage || page.NextPageStart == nil {
			return nil
		}
		q.Set("start", strconv.Itoa(*page.NextPageStart))
	}
	return fmt.Errorf("%s: %w: %s has more than %d pages", cl.b.cfg.Kind, ErrInvalid, path, maxPages)
}

func (c *bbsClient) repoPath(repo RemoteRepo) string {
	return "/rest/api/1.0/projects/" + p(repo.Owner) + "/repos/" + p(repo.Name)
}

func (c *bbsClient) keyPath(repo RemoteRepo) string {
	return "/rest/keys/1.0/projects/" + p(repo.Owner) + "/repos/" + p(repo.Name) + "/ssh"
}

// CurrentUser is the token's user, which Bitbucket names in the
// X-AUSERNAME header of any authenticated answer.
func (c *bbsClient) CurrentUser(ctx context.Context) (Owner, error) {
	h, err := c.do(ctx, call{method: http.MethodGet, path: "/rest/api/1.0/projects/" + p(c.b.cfg.ProjectKey), out: &struct{}{}})
	if err != nil {
		return Owner{}, err
	}
	name := h.Get("X-AUSERNAME")
	if name == "" {
		return Owner{}, fmt.Errorf("%w (bitbucket-server: the answer names no user (X-AUSERNAME); is the token a project token?)", ErrInvalid)
	}
	return Owner{Name: name, Kind: "user"}, nil
}

// Owners is the configured project alone: repositories are created there.
func (c *bbsClient) Owners(ctx context.Context) ([]Owner, error) {
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/rest/api/1.0/projects/" + p(c.b.cfg.ProjectKey), out: &struct{}{}}); err != nil {
		return nil, err
	}
	return []Owner{{Name: c.b.cfg.ProjectKey, Kind: "project"}}, nil
}

func (c *bbsClient) CreateRepo(ctx context.Context, owner Owner, name string, private bool) (RemoteRepo, error) {
	if !strings.EqualFold(owner.Name, c.b.cfg.ProjectKey) {
		return RemoteRepo{}, fmt.Errorf("%w (bitbucket-server: repositories are created in project %s, not %q)", ErrForbidden, c.b.cfg.ProjectKey, owner.Name)
	}
	var r bbsRepo
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/rest/api/1.0/projects/" + p(c.b.cfg.ProjectKey) + "/repos",
		in: map[string]any{"name": name, "scmId": "git", "public": !private}, out: &r}); err != nil {
		return RemoteRepo{}, err
	}
	return c.withDefaultBranch(ctx, r.remote())
}

func (c *bbsClient) RepoByName(ctx context.Context, owner, name string) (RemoteRepo, error) {
	var r bbsRepo
	if _, err := c.do(ctx, call{method: http.MethodGet, path: c.repoPath(RemoteRepo{Owner: owner, Name: name}), out: &r}); err != nil {
		return RemoteRepo{}, err
	}
	return c.withDefaultBranch(ctx, r.remote())
}

// RepoByID: Bitbucket Server has no lookup by id; it searches the
// repositories the token can see.
func (c *bbsClient) RepoByID(ctx context.Context, id string) (RemoteRepo, error) {
	want, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return RemoteRepo{}, fmt.Errorf("%w (bitbucket-server: repository id %q is not a number)", ErrNotFound, id)
	}
	var found *bbsRepo
	err = listPaged(ctx, &c.client, "/rest/api/1.0/repos", nil, func(page []bbsRepo) bool {
		for i := range page {
			if page[i].ID == want {
				found = &page[i]
				return false
			}
		}
		return true
	})
	if err != nil {
		return RemoteRepo{}, err
	}
	if found == nil {
		return RemoteRepo{}, fmt.Errorf("%w (bitbucket-server: no repository with id %d is visible to the token)", ErrNotFound, want)
	}
	return c.withDefaultBranch(ctx, found.remote())
}

// withDefaultBranch adds the repository's default branch (not in its JSON);
// a repository without one (empty, older servers) keeps "".
func (c *bbsClient) withDefaultBranch(ctx context.Context, r RemoteRepo) (RemoteRepo, error) {
	var b struct {
		DisplayID string `json:"displayId"`
	}
	_, err := c.do(ctx, call{method: http.MethodGet,
		path: "/rest/api/latest/projects/" + p(r.Owner) + "/repos/" + p(r.Name) + "/default-branch", out: &b})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return r, err
	}
	r.DefaultBranch = b.DisplayID
	return r, nil
}

func (c *bbsClient) AddDeployKey(ctx context.Context, repo RemoteRepo, title, publicKey string, readOnly bool) (DeployKey, error) {
	perm := "REPO_READ"
	if !readOnly {
		perm = "REPO_WRITE"
	}
	var k bbsKey
	_, err := c.do(ctx, call{method: http.MethodPost, path: c.keyPath(repo), in: map[string]any{
		"key": map[string]string{"text": publicKey, "label": title}, "permission": perm,
	}, out: &k})
	return k.deployKey(), err
}

func (c *bbsClient) DeployKeys(ctx context.Context, repo RemoteRepo) ([]DeployKey, error) {
	var keys []DeployKey
	err := listPaged(ctx, &c.client, c.keyPath(repo), nil, func(page []bbsKey) bool {
		for _, k := range page {
			keys = append(keys, k.deployKey())
		}
		return true
	})
	return keys, err
}

func (c *bbsClient) DeleteDeployKey(ctx context.Context, repo RemoteRepo, id string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: c.keyPath(repo) + "/" + p(id)})
	return gone(err)
}

// AddWebhook: pushes (repo:refs_changed) and renames or moves
// (repo:modified), signed with secret. A configuration in api mode polls
// and adds no webhook: ErrInvalid.
func (c *bbsClient) AddWebhook(ctx context.Context, repo RemoteRepo, hookURL, secret string) (Webhook, error) {
	if c.b.cfg.Mode == ModeAPI {
		return Webhook{}, fmt.Errorf("%w (bitbucket-server: this configuration is in api mode: it polls and adds no webhook)", ErrInvalid)
	}
	var h bbsHook
	_, err := c.do(ctx, call{method: http.MethodPost, path: c.repoPath(repo) + "/webhooks", in: map[string]any{
		"name": "gitserver", "url": hookURL, "active": true,
		"events":        []string{"repo:refs_changed", "repo:modified"},
		"configuration": map[string]string{"secret": secret},
	}, out: &h})
	return h.webhook(), err
}

func (c *bbsClient) Webhooks(ctx context.Context, repo RemoteRepo) ([]Webhook, error) {
	var hooks []Webhook
	err := listPaged(ctx, &c.client, c.repoPath(repo)+"/webhooks", nil, func(page []bbsHook) bool {
		for _, h := range page {
			hooks = append(hooks, h.webhook())
		}
		return true
	})
	return hooks, err
}

func (c *bbsClient) DeleteWebhook(ctx context.Context, repo RemoteRepo, id string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: c.repoPath(repo) + "/webhooks/" + p(id)})
	return gone(err)
}

// BranchHead: the branch's latestCommit, found by filtering the branch
// list (exact match on its short name).
func (c *bbsClient) BranchHead(ctx context.Context, repo RemoteRepo, branch string) (string, error) {
	var head string
	err := listPaged(ctx, &c.client, c.repoPath(repo)+"/branches", url.Values{"filterText": {branch}}, func(page []struct {
		DisplayID    string `json:"displayId"`
		LatestCommit string `json:"latestCommit"`
	}) bool {
		for _, b := range page {
			if b.DisplayID == branch {
				head = b.LatestCommit
				return false
			}
		}
		return true
	})
	if err == nil && head == "" {
		err = fmt.Errorf("%w (bitbucket-server: no branch %q in %s)", ErrNotFound, branch, repo.FullName)
	}
	return head, err
}

// Revoke: the token is the user's own personal access token, not ours to
// revoke.
func (b *bitbucketServer) Revoke(context.Context, string, string) error {
	return fmt.Errorf("%w (bitbucket-server: the personal access token is yours; revoke it under Manage account → HTTP access tokens)", ErrNotSupported)
}
