package scm_test

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// routesBBC: Bitbucket Cloud REST 2.0 under /2.0; listings page with
// "next" (an absolute URL).
func (f *fakeSCM) routesBBC() {
	const pre = "/2.0"
	m := f.mux
	workspaces := append([]string{fakeUser}, fakeOrgs...)
	host := f.srv.Listener.Addr().String()
	repoJSON := func(r *fakeRepo) map[string]any {
		return map[string]any{"type": "repository", "uuid": r.uuid(), "slug": r.name, "name": r.name,
			"full_name": r.owner + "/" + r.name, "is_private": r.private, "scm": "git",
			"workspace":  map[string]any{"slug": r.owner, "type": "workspace"},
			"mainbranch": map[string]any{"type": "branch", "name": "main"},
			"links": map[string]any{"html": map[string]any{"href": f.srv.URL + "/" + r.owner + "/" + r.name},
				"clone": []any{map[string]any{"name": "https", "href": f.srv.URL + "/" + r.owner + "/" + r.name + ".git"},
					map[string]any{"name": "ssh", "href": "git@" + host + ":" + r.owner + "/" + r.name + ".git"}}}}
	}
	repo := func(w http.ResponseWriter, req *http.Request) *fakeRepo {
		ws, slug := req.PathValue("ws"), req.PathValue("slug")
		var r *fakeRepo
		if ws == "{}" {
			r = f.byID(slug)
		} else {
			r = f.find(ws, slug)
		}
		if r == nil {
			f.fail(w, 404, "Repository "+ws+"/"+slug+" not found")
		}
		return r
	}
	paged := func(w http.ResponseWriter, req *http.Request, items []any) {
		start, end, more := page(req, "page", len(items))
		body := map[string]any{"pagelen": fakePageSize, "page": pageNum(req), "size": len(items), "values": append([]any{}, items[start:end]...)}
		if more {
			body["next"] = nextURL(f.srv.URL, req, "page", pageNum(req)+1)
		}
		writeJSON(w, 200, body)
	}
	m.HandleFunc("GET "+pre+"/user", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			f.fail(w, 401, "Unauthorized")
			return
		}
		writeJSON(w, 200, map[string]any{"username": fakeUser, "nickname": fakeUser, "display_name": "Jane", "uuid": "{87bb15eb-47c1-49b3-9f16-ca824a2979a4}"})
	})
	m.HandleFunc("GET "+pre+"/user/permissions/workspaces", func(w http.ResponseWriter, r *http.Request) {
		var items []any
		for _, ws := range workspaces {
			items = append(items, map[string]any{"type": "workspace_membership", "permission": "owner",
				"workspace": map[string]any{"type": "workspace", "slug": ws, "name": ws}})
		}
		paged(w, r, items)
	})
	m.HandleFunc("POST "+pre+"/repositories/{ws}/{slug}", func(w http.ResponseWriter, req *http.Request) {
		body := f.decode(req)
		f.need(req, body, "scm", "git")
		if _, ok := body["is_private"].(bool); !ok {
			f.t.Errorf("POST %s: is_private %#v, want a boolean", req.URL.Path, body["is_private"])
		}
		ws, slug := req.PathValue("ws"), req.PathValue("slug")
		switch {
		case ws == fakeForeign:
			f.fail(w, 403, "You do not have permission to create repositories in this workspace.")
		case !slices.Contains(workspaces, ws):
			f.fail(w, 404, "No workspace with identifier '"+ws+"'.")
		case slug != strings.ToLower(slug):
			f.fail(w, 400, "repository slugs are lowercase")
		default:
			if r := f.create(w, ws, slug, body["is_private"] == true); r != nil {
				writeJSON(w, 200, repoJSON(r))
			}
		}
	})
	m.HandleFunc("GET "+pre+"/repositories/{ws}/{slug}", func(w http.ResponseWriter, req *http.Request) {
		if r := repo(w, req); r != nil {
			writeJSON(w, 200, repoJSON(r))
		}
	})
	keyJSON := func(k *fakeKey) map[string]any {
		return map[string]any{"type": "deploy_key", "id": k.id, "key": k.shown(), "label": k.title, "comment": "gitserver@example"}
	}
	m.HandleFunc("POST "+pre+"/repositories/{ws}/{slug}/deploy-keys", func(w http.ResponseWriter, req *http.Request) {
		r := repo(w, req)
		if r == nil {
			return
		}
		body := f.decode(req)
		f.need(req, body, "key", nil)
		f.need(req, body, "label", nil)
		label, _ := body["label"].(string)
		key, _ := body["key"].(string)
		if k := f.addKey(w, r, label, key, true); k != nil {
			writeJSON(w, 200, keyJSON(k))
		}
	})
	m.HandleFunc("GET "+pre+"/repositories/{ws}/{slug}/deploy-keys", func(w http.ResponseWriter, req *http.Request) {
		if r := repo(w, req); r != nil {
			var items []any
			for _, k := range r.keys {
				items = append(items, keyJSON(k))
			}
			paged(w, req, items)
		}
	})
	m.HandleFunc("DELETE "+pre+"/repositories/{ws}/{slug}/deploy-keys/{id}", func(w http.ResponseWriter, req *http.Request) {
		if r := repo(w, req); r != nil {
			f.deleteKey(w, r, req.PathValue("id"))
		}
	})
	hookJSON := func(h *fakeHook) map[string]any {
		return map[string]any{"type": "webhook_subscription", "uuid": fmt.Sprintf("{%d}", h.id), "url": h.url, "active": true,
			"secret_set": true, "events": []string{"repo:push", "repo:updated", "repo:transfer"}}
	}
	m.HandleFunc("POST "+pre+"/repositories/{ws}/{slug}/hooks", func(w http.ResponseWriter, req *http.Request) {
		r := repo(w, req)
		if r == nil {
			return
		}
		body := f.decode(req)
		f.need(req, body, "url", nil)
		f.need(req, body, "active", true)
		f.need(req, body, "secret", fakeHookSec)
		f.needEvent(req, body, "repo:push")
		f.needEvent(req, body, "repo:updated")
		u, _ := body["url"].(string)
		writeJSON(w, 201, hookJSON(f.addHook(r, u)))
	})
	m.HandleFunc("GET "+pre+"/repositories/{ws}/{slug}/hooks", func(w http.ResponseWriter, req *http.Request) {
		if r := repo(w, req); r != nil {
			var items []any
			for _, h := range r.hooks {
				items = append(items, hookJSON(h))
			}
			paged(w, req, items)
		}
	})
	m.HandleFunc("DELETE "+pre+"/repositories/{ws}/{slug}/hooks/{id}", func(w http.ResponseWriter, req *http.Request) {
		if r := repo(w, req); r != nil {
			f.deleteHook(w, r, req.PathValue("id"))
		}
	})
	m.HandleFunc("GET "+pre+"/repositories/{ws}/{slug}/refs/branches/{name}", func(w http.ResponseWriter, req *http.Request) {
		r := repo(w, req)
		if r == nil {
			return
		}
		if r.head == "" || req.PathValue("name") != "main" {
			f.fail(w, 404, fmt.Sprintf("Branch %q does not exist.", req.PathValue("name")))
			return
		}
		writeJSON(w, 200, map[string]any{"type": "branch", "name": "main", "target": map[string]any{"type": "commit", "hash": r.head}})
	})
}

// routesBBS: Bitbucket Server / Data Center REST 1.0; listings page with
// isLastPage / nextPageStart.
func (f *fakeSCM) routesBBS() {
	m := f.mux
	host := f.srv.Listener.Addr().String()
	// Repositories of another project come first in /repos, so finding one
	// by id takes two pages.
	for i := range 3 {
		f.repos = append([]*fakeRepo{{id: int64(10 + i), owner: "OTHER", name: "filler-" + strconv.Itoa(i)}}, f.repos...)
	}
	repoJSON := func(r *fakeRepo) map[string]any {
		lower := strings.ToLower(r.owner)
		return map[string]any{"id": r.id, "slug": r.name, "name": r.name, "scmId": "git", "public": !r.private,
			"state": "AVAILABLE", "project": map[string]any{"key": r.owner, "id": 1},
			"links": map[string]any{
				"clone": []any{map[string]any{"name": "ssh", "href": "ssh://git@" + host + ":7999/" + lower + "/" + r.name + ".git"},
					map[string]any{"name": "http", "href": f.srv.URL + "/scm/" + lower + "/" + r.name + ".git"}},
				"self": []any{map[string]any{"href": f.srv.URL + "/projects/" + r.owner + "/repos/" + r.name + "/browse"}}}}
	}
	repo := func(w http.ResponseWriter, req *http.Request) *fakeRepo {
		r := f.find(req.PathValue("key"), req.PathValue("slug"))
		if r == nil {
			f.fail(w, 404, "Repository "+req.PathValue("key")+"/"+req.PathValue("slug")+" does not exist.")
		}
		return r
	}
	paged := func(w http.ResponseWriter, req *http.Request, items []any) {
		if req.URL.Query().Get("limit") != "100" {
			f.t.Errorf("GET %s: limit=%q, want 100", req.URL, req.URL.Query().Get("limit"))
		}
		start, end, more := page(req, "start", len(items))
		body := map[string]any{"size": end - start, "limit": fakePageSize, "start": start, "isLastPage": !more,
			"values": append([]any{}, items[start:end]...)}
		if more {
			body["nextPageStart"] = end
		}
		writeJSON(w, 200, body)
	}
	m.HandleFunc("GET /rest/api/1.0/projects/{key}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("key") != fakeProject {
			f.fail(w, 404, "Project "+r.PathValue("key")+" does not exist.")
			return
		}
		w.Header().Set("X-AUSERNAME", fakeUser)
		writeJSON(w, 200, map[string]any{"key": fakeProject, "id": 1, "name": "My Project", "public": false, "type": "NORMAL"})
	})
	m.HandleFunc("POST /rest/api/1.0/projects/{key}/repos", func(w http.ResponseWriter, req *http.Request) {
		body := f.decode(req)
		f.need(req, body, "name", nil)
		f.need(req, body, "scmId", "git")
		if _, ok := body["public"].(bool); !ok {
			f.t.Errorf("POST %s: public %#v, want a boolean", req.URL.Path, body["public"])
		}
		if req.PathValue("key") != fakeProject {
			f.fail(w, 404, "Project "+req.PathValue("key")+" does not exist.")
			return
		}
		name, _ := body["name"].(string)
		if r := f.create(w, fakeProject, name, body["public"] == false); r != nil {
			writeJSON(w, 201, repoJSON(r))
		}
	})
	m.HandleFunc("GET /rest/api/1.0/projects/{key}/repos/{slug}", func(w http.ResponseWriter, req *http.Request) {
		if r := repo(w, req); r != nil {
			writeJSON(w, 200, repoJSON(r))
		}
	})
	m.HandleFunc("GET /rest/api/latest/projects/{key}/repos/{slug}/default-branch", func(w http.ResponseWriter, req *http.Request) {
		if r := repo(w, req); r != nil {
			writeJSON(w, 200, map[string]any{"id": "refs/heads/main", "displayId": "main", "type": "BRANCH"})
		}
	})
	m.HandleFunc("GET /rest/api/1.0/repos", func(w http.ResponseWriter, req *http.Request) {
		var items []any
		for _, r := range f.repos {
			items = append(items, repoJSON(r))
		}
		paged(w, req, items)
	})
	keyJSON := func(k *fakeKey) map[string]any {
		perm := "REPO_WRITE"
		if k.readOnly {
			perm = "REPO_READ"
		}
		return map[string]any{"key": map[string]any{"id": k.id, "text": k.shown(), "label": k.title}, "permission": perm}
	}
	const keys = "/rest/keys/1.0/projects/{key}/repos/{slug}/ssh"
	m.HandleFunc("POST "+keys, func(w http.ResponseWriter, req *http.Request) {
		r := repo(w, req)
		if r == nil {
			return
		}
		body := f.decode(req)
		f.need(req, body, "key.text", nil)
		f.need(req, body, "permission", "REPO_READ")
		text, _ := body["key"].(map[string]any)["text"].(string)
		label, _ := body["key"].(map[string]any)["label"].(string)
		if k := f.addKey(w, r, label, text, body["permission"] == "REPO_READ"); k != nil {
			writeJSON(w, 201, keyJSON(k))
		}
	})
	m.HandleFunc("GET "+keys, func(w http.ResponseWriter, req *http.Request) {
		if r := repo(w, req); r != nil {
			var items []any
			for _, k := range r.keys {
				items = append(items, keyJSON(k))
			}
			paged(w, req, items)
		}
	})
	m.HandleFunc("DELETE "+keys+"/{id}", func(w http.ResponseWriter, req *http.Request) {
		if r := repo(w, req); r != nil {
			f.deleteKey(w, r, req.PathValue("id"))
		}
	})
	const hooks = "/rest/api/1.0/projects/{key}/repos/{slug}/webhooks"
	hookJSON := func(h *fakeHook) map[string]any {
		return map[string]any{"id": h.id, "name": "gitserver", "url": h.url, "active": true,
			"events": []string{"repo:refs_changed", "repo:modified"}, "configuration": map[string]any{}}
	}
	m.HandleFunc("POST "+hooks, func(w http.ResponseWriter, req *http.Request) {
		r := repo(w, req)
		if r == nil {
			return
		}
		body := f.decode(req)
		f.need(req, body, "name", nil)
		f.need(req, body, "url", nil)
		f.need(req, body, "active", true)
		f.need(req, body, "configuration.secret", fakeHookSec)
		f.needEvent(req, body, "repo:refs_changed")
		f.needEvent(req, body, "repo:modified")
		u, _ := body["url"].(string)
		writeJSON(w, 201, hookJSON(f.addHook(r, u)))
	})
	m.HandleFunc("GET "+hooks, func(w http.ResponseWriter, req *http.Request) {
		if r := repo(w, req); r != nil {
			var items []any
			for _, h := range r.hooks {
				items = append(items, hookJSON(h))
			}
			paged(w, req, items)
		}
	})
	m.HandleFunc("DELETE "+hooks+"/{id}", func(w http.ResponseWriter, req *http.Request) {
		if r := repo(w, req); r != nil {
			f.deleteHook(w, r, req.PathValue("id"))
		}
	})
	m.HandleFunc("GET /rest/api/1.0/projects/{key}/repos/{slug}/branches", func(w http.ResponseWriter, req *http.Request) {
		r := repo(w, req)
		if r == nil {
			return
		}
		var items []any
		if r.head != "" && strings.Contains("main", req.URL.Query().Get("filterText")) {
			items = append(items, map[string]any{"id": "refs/heads/main", "displayId": "main", "type": "BRANCH", "latestCommit": r.head, "isDefault": true})
		}
		paged(w, req, items)
	})
}
