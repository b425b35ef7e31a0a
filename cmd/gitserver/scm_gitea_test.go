package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"gitserver/gitserver/scm"
	"gitserver/gitserver/scm/scmtest"
	"gitserver/store"
)

// TestSCMContractGitea runs the provider contract suite (scmtest) over the
// Gitea adapter against a real Gitea: a plain user with a token of the
// scopes the OAuth configuration asks for, 51 organisations (two pages of
// /user/orgs at Gitea's maximum of 50), an organisation the user is not in,
// an OAuth2 application (Check's probe of the token endpoint), a revoked
// token, and an initialised repository whose head the suite reads.
func TestSCMContractGitea(t *testing.T) {
	t.Parallel()
	gt := StartGitea(t)
	const user = "alice"
	password := "Pw-" + store.RandomHex(12)
	gt.apiMust(t, http.StatusCreated, "POST", "/admin/users", map[string]any{
		"username": user, "email": user + "@example.test", "password": password, "must_change_password": false,
	}, nil)
	token := giteaUserToken(t, gt, user, password, "contract")
	revoked := giteaUserToken(t, gt, user, password, "revoked")
	giteaUserAPI(t, gt, user, password, http.StatusNoContent, "DELETE", "/users/"+user+"/tokens/revoked", nil, nil)

	owners := []scm.Owner{{Name: user, Kind: "user"}}
	for i := range 51 {
		org := fmt.Sprintf("org-%02d", i)
		gt.apiMust(t, http.StatusCreated, "POST", "/admin/users/"+user+"/orgs", map[string]any{"username": org, "visibility": "public"}, nil)
		owners = append(owners, scm.Owner{Name: org, Kind: "org"})
	}
	gt.apiMust(t, http.StatusCreated, "POST", "/orgs", map[string]any{"username": "foreign-org", "visibility": "public"}, nil)

	gt.apiMust(t, http.StatusCreated, "POST", "/admin/users/"+user+"/repos", map[string]any{
		"name": "existing", "private": true, "auto_init": true, "default_branch": "main", "readme": "Default",
	}, nil)
	var branch struct {
		Commit struct {
			ID string `json:"id"`
		} `json:"commit"`
	}
	gt.apiMust(t, http.StatusOK, "GET", "/repos/"+user+"/existing/branches/main", nil, &branch)

	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	gt.apiMust(t, http.StatusCreated, "POST", "/user/applications/oauth2", map[string]any{
		"name": "gitserver", "redirect_uris": []string{"https://ci.example/scm/1/callback"}, "confidential_client": true,
	}, &app)

	cfg := scm.Config{Kind: scm.Gitea, WebsiteURL: gt.HTTPURL, APIURL: gt.HTTPURL + "/api/v1",
		ClientID: app.ClientID, ClientSecret: app.ClientSecret}
	hc := &http.Client{Timeout: 30 * time.Second}
	p, err := scm.New(cfg, hc)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClientSecret = "gto_wrong"
	refused, err := scm.New(cfg, hc)
	if err != nil {
		t.Fatal(err)
	}
	scmtest.Run(t, scmtest.Fixture{
		Provider: p, Refused: refused, Token: token, BadToken: revoked,
		Owners: owners, Foreign: "foreign-org", MissingID: "987654321",
		Existing: scmtest.RepoRef{Owner: user, Name: "existing", Branch: "main", Head: branch.Commit.ID},
		HookURL:  "http://127.0.0.1:9/hooks/scm",
	})
}

// giteaUserToken creates an access token for user (basic auth as the user)
// with the scopes the Gitea OAuth configuration requests.
func giteaUserToken(t *testing.T, gt *Gitea, user, password, name string) string {
	t.Helper()
	var tok struct {
		SHA1 string `json:"sha1"`
	}
	giteaUserAPI(t, gt, user, password, http.StatusCreated, "POST", "/users/"+user+"/tokens", map[string]any{
		"name": name, "scopes": []string{"write:repository", "write:user", "write:organization"},
	}, &tok)
	if tok.SHA1 == "" {
		t.Fatalf("gitea: no token for %s", user)
	}
	return tok.SHA1
}

// giteaUserAPI is an API call with basic auth as user.
func giteaUserAPI(t *testing.T, gt *Gitea, user, password string, want int, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, gt.HTTPURL+"/api/v1"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("gitea %s %s as %s: %d (want %d): %s", method, path, user, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("gitea %s %s: %v: %s", method, path, err, b)
		}
	}
}
