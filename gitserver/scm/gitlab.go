package scm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"golang.org/x/oauth2"
)

// gitlab is GitLab.com and self-managed GitLab (REST v4). Repositories are
// projects, addressed by their numeric id (stable across renames and
// transfers); owners are the user's namespace and groups by full path.
type gitlab struct{ base }

func (g *gitlab) OAuth2(redirectURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     g.cfg.ClientID,
		ClientSecret: g.cfg.ClientSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:  g.web + "/oauth/authorize",
			TokenURL: g.web + "/oauth/token",
		},
		RedirectURL: redirectURL,
		// api: projects, deploy keys and hooks (read_repository and
		// write_repository cover git over HTTP only); it includes read_user.
		Scopes: []string{"api"},
	}
}

// Check: GET /version answers (401 without credentials is an answer), and
// the token endpoint accepts the OAuth application.
func (g *gitlab) Check(ctx context.Context) error {
	if err := g.pingAPI(ctx, "/version"); err != nil {
		return err
	}
	return g.oauthProbe(ctx, g.web+"/oauth/token", false)
}

func (g *gitlab) Client(token string) Client {
	return &gitlabClient{client{b: &g.base, auth: "Bearer " + token}}
}

type gitlabClient struct{ client }

type glProject struct {
	ID                int64  `json:"id"`
	Path              string `json:"path"`
	PathWithNamespace string `json:"path_with_namespace"`
	Namespace         struct {
		FullPath string `json:"full_path"`
	} `json:"namespace"`
	WebURL        string `json:"web_url"`
	SSHURL        string `json:"ssh_url_to_repo"`
	DefaultBranch string `json:"default_branch"`
	Visibility    string `json:"visibility"`
}

func (r glProject) remote() RemoteRepo {
	owner := r.Namespace.FullPath
	if owner == "" {
		owner, _ = splitFull(r.PathWithNamespace)
	}
	return RemoteRepo{ID: itoa(r.ID), Owner: owner, Name: r.Path, FullName: r.PathWithNamespace,
		HTMLURL: r.WebURL, SSHURL: r.SSHURL, DefaultBranch: r.DefaultBranch, Private: r.Visibility == "private"}
}

type glKey struct {
	ID      int64  `json:"id"`
	Title   string `json:"title"`
	Key     string `json:"key"`
	CanPush bool   `json:"can_push"`
}

func (k glKey) deployKey() DeployKey {
	return DeployKey{ID: itoa(k.ID), Title: k.Title, Key: keyText(k.Key), ReadOnly: !k.CanPush}
}

type glHook struct {
	ID          int64  `json:"id"`
	URL         string `json:"url"`
	AlertStatus string `json:"alert_status"` // "executable", "disabled", "temporarily_disabled"
}

func (h glHook) webhook() Webhook {
	return Webhook{ID: itoa(h.ID), URL: h.URL, Active: h.AlertStatus == "" || h.AlertStatus == "executable"}
}

func glPages() url.Values { return url.Values{"per_page": {"100"}} }

func projectPath(repo RemoteRepo) string { return "/projects/" + p(repo.ID) }

func (c *gitlabClient) CurrentUser(ctx context.Context) (Owner, error) {
	var u struct {
		Username string `json:"username"`
	}
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/user", out: &u}); err != nil {
		return Owner{}, err
	}
	return Owner{Name: u.Username, Kind: "user"}, nil
}

// Owners: the user, then the groups where the user is at least Developer
// (the lowest role that may create projects, where the group allows it).
func (c *gitlabClient) Owners(ctx context.Context) ([]Owner, error) {
	me, err := c.CurrentUser(ctx)
	if err != nil {
		return nil, err
	}
	owners := []Owner{me}
	q := glPages()
	q.Set("min_access_level", "30")
	err = listLinked(ctx, &c.client, "/groups", q, func(page []struct {
		FullPath string `json:"full_path"`
	}) {
		for _, g := range page {
			owners = append(owners, Owner{Name: g.FullPath, Kind: "group"})
		}
	})
	return owners, err
}

func (c *gitlabClient) CreateRepo(ctx context.Context, owner Owner, name string, private bool) (RemoteRepo, error) {
	body := map[string]any{"name": name, "path": name, "visibility": "public"}
	if private {
		body["visibility"] = "private"
	}
	if owner.Kind != "user" {
		var g struct {
			ID int64 `json:"id"`
		}
		if _, err := c.do(ctx, call{method: http.MethodGet, path: "/groups/" + p(owner.Name), out: &g}); err != nil {
			return RemoteRepo{}, err
		}
		body["namespace_id"] = g.ID
	}
	var r glProject
	_, err := c.do(ctx, call{method: http.MethodPost, path: "/projects", in: body, out: &r})
	return r.remote(), err
}

func (c *gitlabClient) RepoByName(ctx context.Context, owner, name string) (RemoteRepo, error) {
	var r glProject
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/projects/" + p(owner+"/"+name), out: &r})
	return r.remote(), err
}

func (c *gitlabClient) RepoByID(ctx context.Context, id string) (RemoteRepo, error) {
	if _, err := strconv.ParseInt(id, 10, 64); err != nil {
		return RemoteRepo{}, fmt.Errorf("%w (gitlab: project id %q is not a number)", ErrNotFound, id)
	}
	var r glProject
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/projects/" + p(id), out: &r})
	return r.remote(), err
}

func (c *gitlabClient) AddDeployKey(ctx context.Context, repo RemoteRepo, title, publicKey string, readOnly bool) (DeployKey, error) {
	var k glKey
	_, err := c.do(ctx, call{method: http.MethodPost, path: projectPath(repo) + "/deploy_keys",
		in: map[string]any{"title": title, "key": publicKey, "can_push": !readOnly}, out: &k})
	return k.deployKey(), err
}

func (c *gitlabClient) DeployKeys(ctx context.Context, repo RemoteRepo) ([]DeployKey, error) {
	var keys []DeployKey
	err := listLinked(ctx, &c.client, projectPath(repo)+"/deploy_keys", glPages(), func(page []glKey) {
		for _, k := range page {
			keys = append(keys, k.deployKey())
		}
	})
	return keys, err
}

func (c *gitlabClient) DeleteDeployKey(ctx context.Context, repo RemoteRepo, id string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: projectPath(repo) + "/deploy_keys/" + p(id)})
	return gone(err)
}

// AddWebhook: push events only (GitLab project hooks have no rename or
// transfer event); the secret is sent back in X-Gitlab-Token.
func (c *gitlabClient) AddWebhook(ctx context.Context, repo RemoteRepo, hookURL, secret string) (Webhook, error) {
	var h glHook
	_, err := c.do(ctx, call{method: http.MethodPost, path: projectPath(repo) + "/hooks", in: map[string]any{
		"url": hookURL, "token": secret, "push_events": true, "tag_push_events": false,
		"merge_requests_events": false, "enable_ssl_verification": true,
	}, out: &h})
	return h.webhook(), err
}

func (c *gitlabClient) Webhooks(ctx context.Context, repo RemoteRepo) ([]Webhook, error) {
	var hooks []Webhook
	err := listLinked(ctx, &c.client, projectPath(repo)+"/hooks", glPages(), func(page []glHook) {
		for _, h := range page {
			hooks = append(hooks, h.webhook())
		}
	})
	return hooks, err
}

func (c *gitlabClient) DeleteWebhook(ctx context.Context, repo RemoteRepo, id string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: projectPath(repo) + "/hooks/" + p(id)})
	return gone(err)
}

func (c *gitlabClient) BranchHead(ctx context.Context, repo RemoteRepo, branch string) (string, error) {
	var b struct {
		Commit struct {
			ID string `json:"id"`
		} `json:"commit"`
	}
	_, err := c.do(ctx, call{method: http.MethodGet, path: projectPath(repo) + "/repository/branches/" + p(branch), out: &b})
	return b.Commit.ID, err
}

// Revoke: POST {web}/oauth/revoke (RFC 7009) with the application's
// client_id and client_secret, once for the refresh token and once for
// the access token (revoking either ends the grant's token pair; both are
// sent so that neither survives a partial failure). GitLab answers 200
// for a token it does not know.
func (g *gitlab) Revoke(ctx context.Context, accessToken, refreshToken string) error {
	var errs []error
	if refreshToken != "" {
		errs = append(errs, g.revokeRFC7009(ctx, g.web+"/oauth/revoke", refreshToken, "refresh_token"))
	}
	if accessToken != "" {
		errs = append(errs, g.revokeRFC7009(ctx, g.web+"/oauth/revoke", accessToken, "access_token"))
	}
	return errors.Join(errs...)
}
