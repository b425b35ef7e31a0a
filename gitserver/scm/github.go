package scm

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"golang.org/x/oauth2"
)

// github is GitHub.com and GitHub Enterprise Server (REST v3). Its client
// (hub) also serves Gitea, whose API follows GitHub's shapes.
type github struct{ base }

func (g *github) OAuth2(redirectURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     g.cfg.ClientID,
		ClientSecret: g.cfg.ClientSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:  g.web + "/login/oauth/authorize",
			TokenURL: g.web + "/login/oauth/access_token",
		},
		RedirectURL: redirectURL,
		// repo: private repositories, their hooks and deploy keys; read:org: the owner picker.
		Scopes: []string{"repo", "read:org"},
	}
}

// Check: GET /meta answers without credentials (github.com and GHES), and
// the token endpoint accepts the OAuth application.
func (g *github) Check(ctx context.Context) error {
	if err := g.pingAPI(ctx, "/meta"); err != nil {
		return err
	}
	return g.oauthProbe(ctx, g.web+"/login/oauth/access_token", false)
}

func (g *github) Client(token string) Client {
	return &hub{client{b: &g.base, auth: "Bearer " + token, header: map[string]string{
		"Accept":               "application/vnd.github+json",
		"X-GitHub-Api-Version": "2022-11-28",
	}}, false}
}

// hub is the GitHub-shaped REST client of GitHub and Gitea.
type hub struct {
	client
	gitea bool
}

type hubUser struct {
	Login    string `json:"login"`
	Name     string `json:"name"`     // Gitea organisations
	Username string `json:"username"` // Gitea organisations (older)
}

type hubRepo struct {
	ID            int64   `json:"id"`
	Name          string  `json:"name"`
	FullName      string  `json:"full_name"`
	Owner         hubUser `json:"owner"`
	HTMLURL       string  `json:"html_url"`
	SSHURL        string  `json:"ssh_url"`
	DefaultBranch string  `json:"default_branch"`
	Private       bool    `json:"private"`
}

func (r hubRepo) remote() RemoteRepo {
	return RemoteRepo{ID: itoa(r.ID), Owner: r.Owner.Login, Name: r.Name, FullName: r.FullName,
		HTMLURL: r.HTMLURL, SSHURL: r.SSHURL, DefaultBranch: r.DefaultBranch, Private: r.Private}
}

type hubKey struct {
	ID       int64  `json:"id"`
	Title    string `json:"title"`
	Key      string `json:"key"`
	ReadOnly bool   `json:"read_only"`
}

func (k hubKey) deployKey() DeployKey {
	return DeployKey{ID: itoa(k.ID), Title: k.Title, Key: keyText(k.Key), ReadOnly: k.ReadOnly}
}

type hubHook struct {
	ID     int64 `json:"id"`
	Active bool  `json:"active"`
	Config struct {
		URL string `json:"url"`
	} `json:"config"`
}

func (h hubHook) webhook() Webhook {
	return Webhook{ID: itoa(h.ID), URL: h.Config.URL, Active: h.Active}
}

// pageQuery asks for the largest page each provider allows.
func (h *hub) pageQuery() url.Values {
	if h.gitea {
		return url.Values{"limit": {"50"}}
	}
	return url.Values{"per_page": {"100"}}
}

func repoPath(repo RemoteRepo) string { return "/repos/" + p(repo.Owner) + "/" + p(repo.Name) }

func (h *hub) CurrentUser(ctx context.Context) (Owner, error) {
	var u hubUser
	if _, err := h.do(ctx, call{method: http.MethodGet, path: "/user", out: &u}); err != nil {
		return Owner{}, err
	}
	return Owner{Name: u.Login, Kind: "user"}, nil
}

func (h *hub) Owners(ctx context.Context) ([]Owner, error) {
	me, err := h.CurrentUser(ctx)
	if err != nil {
		return nil, err
	}
	owners := []Owner{me}
	err = listLinked(ctx, &h.client, "/user/orgs", h.pageQuery(), func(page []hubUser) {
		for _, o := range page {
			name := o.Login
			if name == "" {
				name = o.Name
			}
			if name == "" {
				name = o.Username
			}
			owners = append(owners, Owner{Name: name, Kind: "org"})
		}
	})
	return owners, err
}

func (h *hub) CreateRepo(ctx context.Context, owner Owner, name string, private bool) (RemoteRepo, error) {
	path := "/user/repos"
	if owner.Kind != "user" {
		path = "/orgs/" + p(owner.Name) + "/repos"
	}
	var r hubRepo
	_, err := h.do(ctx, call{method: http.MethodPost, path: path,
		in: map[string]any{"name": name, "private": private}, out: &r})
	return r.remote(), err
}

func (h *hub) RepoByName(ctx context.Context, owner, name string) (RemoteRepo, error) {
	var r hubRepo
	_, err := h.do(ctx, call{method: http.MethodGet, path: "/repos/" + p(owner) + "/" + p(name), out: &r})
	return r.remote(), err
}

func (h *hub) RepoByID(ctx context.Context, id string) (RemoteRepo, error) {
	if _, err := strconv.ParseInt(id, 10, 64); err != nil {
		return RemoteRepo{}, fmt.Errorf("%w (%s: repository id %q is not a number)", ErrNotFound, h.b.cfg.Kind, id)
	}
	var r hubRepo
	_, err := h.do(ctx, call{method: http.MethodGet, path: "/repositories/" + p(id), out: &r})
	return r.remote(), err
}

func (h *hub) AddDeployKey(ctx context.Context, repo RemoteRepo, title, publicKey string, readOnly bool) (DeployKey, error) {
	var k hubKey
	_, err := h.do(ctx, call{method: http.MethodPost, path: repoPath(repo) + "/keys",
		in: map[string]any{"title": title, "key": publicKey, "read_only": readOnly}, out: &k})
	return k.deployKey(), err
}

func (h *hub) DeployKeys(ctx context.Context, repo RemoteRepo) ([]DeployKey, error) {
	var keys []DeployKey
	err := listLinked(ctx, &h.client, repoPath(repo)+"/keys", h.pageQuery(), func(page []hubKey) {
		for _, k := range page {
			keys = append(keys, k.deployKey())
		}
	})
	return keys, err
}

func (h *hub) DeleteDeployKey(ctx context.Context, repo RemoteRepo, id string) error {
	_, err := h.do(ctx, call{method: http.MethodDelete, path: repoPath(repo) + "/keys/" + p(id)})
	return gone(err)
}

func (h *hub) AddWebhook(ctx context.Context, repo RemoteRepo, hookURL, secret string) (Webhook, error) {
	body := map[string]any{
		"active": true,
		"events": []string{"push", "repository"},
	}
	if h.gitea {
		body["type"] = "gitea"
		body["branch_filter"] = "*"
		body["config"] = map[string]string{"url": hookURL, "content_type": "json", "secret": secret}
	} else {
		body["name"] = "web"
		body["config"] = map[string]string{"url": hookURL, "content_type": "json", "secret": secret, "insecure_ssl": "0"}
	}
	var wh hubHook
	_, err := h.do(ctx, call{method: http.MethodPost, path: repoPath(repo) + "/hooks", in: body, out: &wh})
	return wh.webhook(), err
}

func (h *hub) Webhooks(ctx context.Context, repo RemoteRepo) ([]Webhook, error) {
	var hooks []Webhook
	err := listLinked(ctx, &h.client, repoPath(repo)+"/hooks", h.pageQuery(), func(page []hubHook) {
		for _, wh := range page {
			hooks = append(hooks, wh.webhook())
		}
	})
	return hooks, err
}

func (h *hub) DeleteWebhook(ctx context.Context, repo RemoteRepo, id string) error {
	_, err := h.do(ctx, call{method: http.MethodDelete, path: repoPath(repo) + "/hooks/" + p(id)})
	return gone(err)
}

func (h *hub) BranchHead(ctx context.Context, repo RemoteRepo, branch string) (string, error) {
	var b struct {
		Commit struct {
			SHA string `json:"sha"` // GitHub
			ID  string `json:"id"`  // Gitea
		} `json:"commit"`
	}
	if _, err := h.do(ctx, call{method: http.MethodGet, path: repoPath(repo) + "/branches/" + p(branch), out: &b}); err != nil {
		return "", err
	}
	if b.Commit.SHA != "" {
		return b.Commit.SHA, nil
	}
	return b.Commit.ID, nil
}

// Revoke: DELETE /applications/{client_id}/grant with HTTP Basic
// client_id:client_secret and {"access_token"} deletes the user's grant
// of the OAuth application, every token of it included. 404 (the token is
// unknown: revoked already) counts as done.
func (g *github) Revoke(ctx context.Context, accessToken, _ string) error {
	if accessToken == "" {
		return nil
	}
	c := client{b: &g.base, auth: basicAuth(g.cfg.ClientID, g.cfg.ClientSecret), header: map[string]string{
		"Accept":               "application/vnd.github+json",
		"X-GitHub-Api-Version": "2022-11-28",
	}}
	_, err := c.do(ctx, call{method: http.MethodDelete, path: "/applications/" + p(g.cfg.ClientID) + "/grant",
		in: map[string]string{"access_token": accessToken}})
	return gone(err)
}
