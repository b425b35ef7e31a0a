package scm_test

// fakeSCM is one httptest server per provider that answers as the
// provider does (paths, JSON shapes, error bodies, pagination: two items a
// page) and checks what it receives: method and path (an unknown route is a
// test error), the Authorization header and provider headers, the page-size
// parameter, and the JSON body fields that matter (read-only keys, JSON
// webhooks with the secret and push events, private repositories).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gitserver/gitserver/scm"
)

const (
	fakeToken    = "tok-valid-0123456789"
	fakeBadToken = "tok-expired-9876543210"
	fakeClientID = "client-id-1"
	fakeSecret   = "client-secret-1"
	fakeHookSec  = "hook-secret-xyz"
	fakeUser     = "jane"
	fakeForeign  = "strangers"
	fakeProject  = "PROJ"
	fakeHead     = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
	fakePageSize = 2
)

var fakeOrgs = []string{"acme", "octo-org", "tools"} // three: two pages

type fakeRepo struct {
	id      int64
	owner   string
	name    string
	private bool
	keys    []*fakeKey
	hooks   []*fakeHook
	head    string // "" for an empty repository
}

func (r *fakeRepo) uuid() string { return fmt.Sprintf("{00000000-0000-4000-8000-%012d}", r.id) }

type fakeKey struct {
	id       int64
	title    string
	key      string
	readOnly bool
}

type fakeHook struct {
	id  int64
	url string
}

type fakeSCM struct {
	t      *testing.T
	kind   scm.Kind
	srv    *httptest.Server
	mu     sync.Mutex
	repos  []*fakeRepo
	nextID int64
	fault  *fakeFault
	mux    *http.ServeMux
	// revoked are the tokens revoked (GitHub: the grant's access token;
	// GitLab: each token posted to /oauth/revoke), in order; a revoked
	// fakeToken is refused from then on.
	revoked []string
}

type fakeFault struct {
	status int
	header map[string]string
}

func newFake(t *testing.T, kind scm.Kind) *fakeSCM {
	f := &fakeSCM{t: t, kind: kind, nextID: 100, mux: http.NewServeMux()}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	owner := fakeUser
	if kind == scm.BitbucketServer {
		owner = fakeProject
	}
	f.repos = append(f.repos, &fakeRepo{id: 42, owner: owner, name: "existing", private: true, head: fakeHead})
	switch kind {
	case scm.GitHub, scm.Gitea:
		f.routesHub()
	case scm.GitLab:
		f.routesGitLab()
	case scm.BitbucketCloud:
		f.routesBBC()
	case scm.BitbucketServer:
		f.routesBBS()
	}
	f.routesOAuth()
	f.routesRevoke()
	return f
}

// apiURL is where the fake's API lives below its root.
func (f *fakeSCM) apiURL() string {
	switch f.kind {
	case scm.GitHub:
		return f.srv.URL + "/api/v3"
	case scm.GitLab:
		return f.srv.URL + "/api/v4"
	case scm.BitbucketCloud:
		return f.srv.URL + "/2.0"
	case scm.BitbucketServer:
		return f.srv.URL
	}
	return f.srv.URL + "/api/v1"
}

func (f *fakeSCM) setFault(status int, header map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = &fakeFault{status, header}
}

// unauthenticated are the routes that must come without credentials.
func (f *fakeSCM) unauthenticated(r *http.Request) bool {
	p := r.URL.Path
	return strings.Contains(p, "/oauth") || strings.HasSuffix(p, "/meta") ||
		(f.kind == scm.GitHub && strings.Contains(p, "/applications/")) || // the OAuth application's Basic credentials
		(f.kind == scm.Gitea && strings.HasSuffix(p, "/version")) ||
		(f.kind == scm.GitLab && strings.HasSuffix(p, "/version") && r.Header.Get("Authorization") == "") ||
		(f.kind == scm.BitbucketCloud && p == "/2.0/user" && r.Header.Get("Authorization") == "")
}

func (f *fakeSCM) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	fault := f.fault
	f.fault = nil
	f.mu.Unlock()
	if fault != nil {
		for k, v := range fault.header {
			w.Header().Set(k, v)
		}
		f.fail(w, fault.status, fmt.Sprintf("injected %d", fault.status))
		return
	}
	if !f.unauthenticated(r) {
		f.mu.Lock()
		revoked := slices.Contains(f.revoked, fakeToken)
		f.mu.Unlock()
		switch auth := r.Header.Get("Authorization"); {
		case auth == "Bearer "+fakeToken && !revoked:
		case auth == "Bearer "+fakeToken || auth == "Bearer "+fakeBadToken:
			f.fail(w, http.StatusUnauthorized, "Bad credentials: token expired")
			return
		default:
			f.t.Errorf("%s %s: Authorization %q, want Bearer and the user's token", r.Method, r.URL.Path, auth)
			f.fail(w, http.StatusUnauthorized, "no credentials")
			return
		}
		f.checkHeaders(r)
	} else if a := r.Header.Get("Authorization"); a != "" && !strings.HasPrefix(a, "Basic ") {
		f.t.Errorf("%s %s: a token was sent to an unauthenticated endpoint", r.Method, r.URL.Path)
	}
	if r.Method == http.MethodPost && !strings.Contains(r.URL.Path, "/oauth") && r.Header.Get("Content-Type") != "application/json" {
		f.t.Errorf("%s %s: Content-Type %q, want application/json", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
	if r.Method == http.MethodGet && f.listing(r.URL.Path) {
		f.checkPageSize(r)
	}
	_, pattern := f.mux.Handler(r)
	if pattern == "" {
		f.t.Errorf("%s: unexpected request %s %s", f.kind, r.Method, r.URL)
		f.fail(w, http.StatusNotFound, "no such route in the fake")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mux.ServeHTTP(w, r) // sets the path values
}

func (f *fakeSCM) checkHeaders(r *http.Request) {
	switch f.kind {
	case scm.GitHub:
		if r.Header.Get("X-GitHub-Api-Version") != "2022-11-28" || r.Header.Get("Accept") != "application/vnd.github+json" {
			f.t.Errorf("%s %s: GitHub headers Accept %q, X-GitHub-Api-Version %q", r.Method, r.URL.Path,
				r.Header.Get("Accept"), r.Header.Get("X-GitHub-Api-Version"))
		}
	case scm.BitbucketServer:
		if r.Method != http.MethodGet && r.Header.Get("X-Atlassian-Token") != "no-check" {
			f.t.Errorf("%s %s: no X-Atlassian-Token: no-check", r.Method, r.URL.Path)
		}
	}
}

// listing reports whether path is a paginated listing.
func (f *fakeSCM) listing(path string) bool {
	for _, s := range []string{"/user/orgs", "/keys", "/hooks", "/groups", "/deploy_keys", "/deploy-keys",
		"/permissions/workspaces", "/ssh", "/webhooks", "/branches", "/rest/api/1.0/repos"} {
		if strings.HasSuffix(path, s) {
			return !strings.Contains(path, "/repository/branches/") // GitLab's single branch
		}
	}
	return false
}

func (f *fakeSCM) checkPageSize(r *http.Request) {
	if r.URL.Query().Get("page") != "" || r.URL.Query().Get("start") != "" {
		return // a next page: its URL is the provider's
	}
	want := map[scm.Kind][2]string{scm.GitHub: {"per_page", "100"}, scm.Gitea: {"limit", "50"}, scm.GitLab: {"per_page", "100"},
		scm.BitbucketCloud: {"pagelen", "100"}, scm.BitbucketServer: {"limit", "100"}}[f.kind]
	if got := r.URL.Query().Get(want[0]); got != want[1] {
		f.t.Errorf("%s %s: %s=%q, want %s (the largest page)", r.Method, r.URL, want[0], got, want[1])
	}
}

// fail writes an error in the provider's shape.
func (f *fakeSCM) fail(w http.ResponseWriter, status int, msg string) {
	var body any
	switch f.kind {
	case scm.GitHub, scm.Gitea:
		body = map[string]any{"message": msg, "documentation_url": "https://docs.example/rest"}
	case scm.GitLab:
		body = map[string]any{"message": fmt.Sprintf("%d %s", status, msg)}
	case scm.BitbucketCloud:
		body = map[string]any{"type": "error", "error": map[string]any{"message": msg}}
	case scm.BitbucketServer:
		body = map[string]any{"errors": []any{map[string]any{"context": nil, "message": msg, "exceptionName": "com.atlassian.bitbucket.Exception"}}}
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// decode reads a JSON body, failing the test when it is not an object.
func (f *fakeSCM) decode(r *http.Request) map[string]any {
	var m map[string]any
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		f.t.Errorf("%s %s: body: %v", r.Method, r.URL.Path, err)
	}
	return m
}

// need checks that body has field with value want (nil: any non-empty value).
func (f *fakeSCM) need(r *http.Request, body map[string]any, field string, want any) bool {
	cur := any(body)
	for _, part := range strings.Split(field, ".") {
		m, _ := cur.(map[string]any)
		cur = m[part]
	}
	if cur == nil || cur == "" || (want != nil && fmt.Sprint(cur) != fmt.Sprint(want)) {
		f.t.Errorf("%s %s: body field %s = %#v, want %#v", r.Method, r.URL.Path, field, cur, want)
		return false
	}
	return true
}

func (f *fakeSCM) needEvent(r *http.Request, body map[string]any, event string) {
	evs, _ := body["events"].([]any)
	if !slices.Contains(evs, any(event)) {
		f.t.Errorf("%s %s: events %v lack %q", r.Method, r.URL.Path, body["events"], event)
	}
}

func (f *fakeSCM) find(owner, name string) *fakeRepo {
	for _, r := range f.repos {
		if strings.EqualFold(r.owner, owner) && strings.EqualFold(r.name, name) {
			return r
		}
	}
	return nil
}

func (f *fakeSCM) byID(id string) *fakeRepo {
	for _, r := range f.repos {
		if strconv.FormatInt(r.id, 10) == id || r.uuid() == id {
			return r
		}
	}
	return nil
}

// create adds a repository, or answers the provider's "exists" error.
func (f *fakeSCM) create(w http.ResponseWriter, owner, name string, private bool) *fakeRepo {
	if f.find(owner, name) != nil {
		switch f.kind {
		case scm.GitHub:
			writeJSON(w, 422, map[string]any{"message": "Repository creation failed.", "errors": []any{
				map[string]any{"resource": "Repository", "code": "custom", "field": "name", "message": "name already exists on this account"}}})
		case scm.Gitea:
			f.fail(w, 409, "The repository with the same name already exists.")
		case scm.GitLab:
			writeJSON(w, 400, map[string]any{"message": map[string]any{"name": []string{"has already been taken"}, "path": []string{"has already been taken"}}})
		case scm.BitbucketCloud:
			f.fail(w, 400, "Repository with this Slug and Owner already exists.")
		case scm.BitbucketServer:
			f.fail(w, 409, "This repository URL is already taken by '"+name+"' in '"+owner+"'")
		}
		return nil
	}
	f.nextID++
	r := &fakeRepo{id: f.nextID, owner: owner, name: name, private: private}
	f.repos = append(f.repos, r)
	return r
}

func (f *fakeSCM) addKey(w http.ResponseWriter, r *fakeRepo, title, key string, readOnly bool) *fakeKey {
	for _, k := range r.keys {
		if k.key == key {
			switch f.kind {
			case scm.GitHub:
				writeJSON(w, 422, map[string]any{"message": "Validation Failed", "errors": []any{
					map[string]any{"resource": "PublicKey", "code": "custom", "field": "key", "message": "key is already in use"}}})
			case scm.Gitea:
				f.fail(w, 422, "A key with the same content has already been added")
			case scm.GitLab:
				writeJSON(w, 400, map[string]any{"message": map[string]any{"deploy_key.fingerprint_sha256": []string{"has already been taken"}}})
			case scm.BitbucketCloud:
				f.fail(w, 400, "Someone has already added that access key to this repository.")
			case scm.BitbucketServer:
				f.fail(w, 409, "This SSH key is already added to this repository.")
			}
			return nil
		}
	}
	f.nextID++
	k := &fakeKey{id: f.nextID, title: title, key: key, readOnly: readOnly}
	r.keys = append(r.keys, k)
	return k
}

func (f *fakeSCM) addHook(r *fakeRepo, url string) *fakeHook {
	f.nextID++
	h := &fakeHook{id: f.nextID, url: url}
	r.hooks = append(r.hooks, h)
	return h
}

// page returns items [start, start+fakePageSize) of n and whether more follow.
func page(r *http.Request, param string, n int) (start, end int, more bool) {
	p, _ := strconv.Atoi(r.URL.Query().Get(param))
	if param == "page" && p > 0 {
		p = (p - 1) * fakePageSize
	}
	start = min(p, n)
	end = min(start+fakePageSize, n)
	return start, end, end < n
}

// nextURL is r's URL with param set for the page after.
func nextURL(base string, r *http.Request, param string, value int) string {
	q := r.URL.Query()
	q.Set(param, strconv.Itoa(value))
	return base + r.URL.Path + "?" + q.Encode()
}

// pageNum is the 1-based page of r.
func pageNum(r *http.Request) int {
	n, _ := strconv.Atoi(r.URL.Query().Get("page"))
	return max(n, 1)
}

// routesOAuth: the token endpoints accept the right client and refuse the
// code (Check's probe), or exchange "good-code" / a refresh token.
func (f *fakeSCM) routesOAuth() {
	path := map[scm.Kind]string{scm.GitHub: "/login/oauth/access_token", scm.Gitea: "/login/oauth/access_token",
		scm.GitLab: "/oauth/token", scm.BitbucketCloud: "/site/oauth2/access_token"}[f.kind]
	if path == "" {
		return
	}
	f.mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			f.t.Error(err)
		}
		id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		if f.kind == scm.BitbucketCloud {
			var ok bool
			if id, secret, ok = r.BasicAuth(); !ok {
				f.t.Errorf("Bitbucket Cloud token endpoint: no HTTP Basic client authentication")
			}
		}
		if id != fakeClientID || secret != fakeSecret {
			switch f.kind {
			case scm.GitHub:
				writeJSON(w, 200, map[string]string{"error": "incorrect_client_credentials", "error_description": "The client_id and/or client_secret passed are incorrect."})
			case scm.Gitea:
				writeJSON(w, 400, map[string]string{"error": "unauthorized_client", "error_description": "invalid client secret"})
			default:
				writeJSON(w, 401, map[string]string{"error": "invalid_client", "error_description": "Client authentication failed"})
			}
			return
		}
		switch {
		case r.PostForm.Get("grant_type") == "authorization_code" && r.PostForm.Get("code") == "good-code":
			writeJSON(w, 200, map[string]any{"access_token": "access-1", "token_type": "bearer", "expires_in": 1, "refresh_token": "refresh-1"})
		case r.PostForm.Get("grant_type") == "refresh_token" && r.PostForm.Get("refresh_token") == "refresh-1":
			writeJSON(w, 200, map[string]any{"access_token": "access-2", "token_type": "bearer", "expires_in": 7200, "refresh_token": "refresh-2"})
		case f.kind == scm.GitHub:
			writeJSON(w, 200, map[string]string{"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."})
		default:
			writeJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": "The provided authorization grant is invalid"})
		}
	})
}

// routesRevoke: GitHub's DELETE /applications/{client_id}/grant (HTTP
// Basic client_id:client_secret, {"access_token"} in a JSON body) and
// GitLab's POST /oauth/revoke (RFC 7009: token, token_type_hint,
// client_id and client_secret in a form). Either checks that no token is
// in the URL. The other kinds have no revocation endpoint: any request is
// an unexpected route.
func (f *fakeSCM) routesRevoke() {
	noQuery := func(r *http.Request) {
		if r.URL.RawQuery != "" {
			f.t.Errorf("%s %s: revocation with a query %q: the token belongs in the body", r.Method, r.URL.Path, r.URL.RawQuery)
		}
	}
	switch f.kind {
	case scm.GitHub:
		f.mux.HandleFunc("DELETE /api/v3/applications/{client_id}/grant", func(w http.ResponseWriter, r *http.Request) {
			noQuery(r)
			if id, secret, ok := r.BasicAuth(); !ok || id != fakeClientID || secret != fakeSecret || r.PathValue("client_id") != fakeClientID {
				f.fail(w, http.StatusUnauthorized, "Bad credentials")
				return
			}
			if r.Header.Get("Content-Type") != "application/json" {
				f.t.Errorf("DELETE %s: Content-Type %q, want application/json", r.URL.Path, r.Header.Get("Content-Type"))
			}
			f.checkHeaders(r)
			body := f.decode(r)
			tok, _ := body["access_token"].(string)
			if len(body) != 1 || tok == "" {
				f.t.Errorf("DELETE %s: body %v, want {\"access_token\"}", r.URL.Path, body)
			}
			if tok != fakeToken || slices.Contains(f.revoked, tok) {
				f.fail(w, http.StatusNotFound, "Not Found")
				return
			}
			f.revoked = append(f.revoked, tok)
			w.WriteHeader(http.StatusNoContent)
		})
	case scm.GitLab:
		f.mux.HandleFunc("POST /oauth/revoke", func(w http.ResponseWriter, r *http.Request) {
			noQuery(r)
			if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
				f.t.Errorf("POST /oauth/revoke: Content-Type %q, want a form", ct)
			}
			if err := r.ParseForm(); err != nil {
				f.t.Error(err)
			}
			if r.PostForm.Get("client_id") != fakeClientID || r.PostForm.Get("client_secret") != fakeSecret {
				writeJSON(w, 403, map[string]string{"error": "unauthorized_client", "error_description": "You are not authorized to revoke this token"})
				return
			}
			tok, hint := r.PostForm.Get("token"), r.PostForm.Get("token_type_hint")
			if tok == "" || (hint != "access_token" && hint != "refresh_token") {
				f.t.Errorf("POST /oauth/revoke: token %q, token_type_hint %q", tok, hint)
			}
			f.revoked = append(f.revoked, hint+":"+tok)
			if hint == "access_token" {
				f.revoked = append(f.revoked, tok)
			}
			writeJSON(w, 200, map[string]any{}) // RFC 7009: 200 for an unknown token too
		})
	}
}

// shown is a stored key as providers show it: with a comment.
func (k *fakeKey) shown() string { return k.key + " gitserver@example" }
