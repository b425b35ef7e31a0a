package scm_test

import (
	"net/http"
	"slices"
	"strconv"
)

// routesGitLab: GitLab REST v4 under /api/v4; listings page with
// X-Next-Page only (no Link), to exercise that fallback.
func (f *fakeSCM) routesGitLab() {
	const pre = "/api/v4"
	m := f.mux
	groups := append(slices.Clone(fakeOrgs), fakeForeign)
	projectJSON := func(r *fakeRepo) map[string]any {
		vis := "public"
		if r.private {
			vis = "private"
		}
		return map[string]any{"id": r.id, "name": r.name, "path": r.name, "path_with_namespace": r.owner + "/" + r.name,
			"namespace": map[string]any{"full_path": r.owner, "kind": "user"}, "web_url": f.srv.URL + "/" + r.owner + "/" + r.name,
			"ssh_url_to_repo": "ssh://git@" + f.srv.Listener.Addr().String() + "/" + r.owner + "/" + r.name + ".git",
			"default_branch":  "main", "visibility": vis}
	}
	project := func(w http.ResponseWriter, req *http.Request) *fakeRepo {
		id := req.PathValue("id")
		r := f.byID(id)
		if owner, name, ok := cutLast(id); ok {
			r = f.find(owner, name)
		}
		if r == nil {
			writeJSON(w, 404, map[string]any{"message": "404 Project Not Found"})
		}
		return r
	}
	paged := func(w http.ResponseWriter, req *http.Request, items []any) {
		start, end, more := page(req, "page", len(items))
		w.Header().Set("X-Page", strconv.Itoa(pageNum(req)))
		w.Header().Set("X-Total", strconv.Itoa(len(items)))
		w.Header().Set("X-Next-Page", "")
		if more {
			w.Header().Set("X-Next-Page", strconv.Itoa(pageNum(req)+1))
		}
		writeJSON(w, 200, append([]any{}, items[start:end]...))
	}
	m.HandleFunc("GET "+pre+"/version", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 401, map[string]any{"message": "401 Unauthorized"})
	})
	m.HandleFunc("GET "+pre+"/user", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"id": 7, "username": fakeUser, "name": "Jane"})
	})
	m.HandleFunc("GET "+pre+"/groups", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("min_access_level") != "30" {
			f.t.Errorf("GET /groups: min_access_level=%q, want 30 (Developer)", r.URL.Query().Get("min_access_level"))
		}
		var items []any
		for i, g := range fakeOrgs {
			items = append(items, map[string]any{"id": 500 + i, "full_path": g, "path": g})
		}
		paged(w, r, items)
	})
	m.HandleFunc("GET "+pre+"/groups/{path}", func(w http.ResponseWriter, r *http.Request) {
		if i := slices.Index(groups, r.PathValue("path")); i >= 0 {
			writeJSON(w, 200, map[string]any{"id": 500 + i, "full_path": groups[i]})
			return
		}
		writeJSON(w, 404, map[string]any{"message": "404 Group Not Found"})
	})
	m.HandleFunc("POST "+pre+"/projects", func(w http.ResponseWriter, req *http.Request) {
		body := f.decode(req)
		f.need(req, body, "name", nil)
		f.need(req, body, "path", body["name"])
		vis, _ := body["visibility"].(string)
		if vis != "private" && vis != "public" {
			f.t.Errorf("POST /projects: visibility %q", vis)
		}
		owner := fakeUser
		if ns, ok := body["namespace_id"].(float64); ok {
			i := int(ns) - 500
			if i < 0 || i >= len(groups) {
				writeJSON(w, 404, map[string]any{"message": "404 Namespace Not Found"})
				return
			}
			if groups[i] == fakeForeign {
				writeJSON(w, 403, map[string]any{"message": "403 Forbidden"})
				return
			}
			owner = groups[i]
		}
		name, _ := body["name"].(string)
		if r := f.create(w, owner, name, vis == "private"); r != nil {
			writeJSON(w, 201, projectJSON(r))
		}
	})
	m.HandleFunc("GET "+pre+"/projects/{id}", func(w http.ResponseWriter, req *http.Request) {
		if r := project(w, req); r != nil {
			writeJSON(w, 200, projectJSON(r))
		}
	})
	keyJSON := func(k *fakeKey) map[string]any {
		return map[string]any{"id": k.id, "title": k.title, "key": k.shown(), "can_push": !k.readOnly, "created_at": "2026-01-05T10:00:00Z"}
	}
	m.HandleFunc("POST "+pre+"/projects/{id}/deploy_keys", func(w http.ResponseWriter, req *http.Request) {
		r := project(w, req)
		if r == nil {
			return
		}
		body := f.decode(req)
		f.need(req, body, "title", nil)
		f.need(req, body, "key", nil)
		f.need(req, body, "can_push", false)
		title, _ := body["title"].(string)
		key, _ := body["key"].(string)
		if k := f.addKey(w, r, title, key, body["can_push"] == false); k != nil {
			writeJSON(w, 201, keyJSON(k))
		}
	})
	m.HandleFunc("GET "+pre+"/projects/{id}/deploy_keys", func(w http.ResponseWriter, req *http.Request) {
		if r := project(w, req); r != nil {
			var items []any
			for _, k := range r.keys {
				items = append(items, keyJSON(k))
			}
			paged(w, req, items)
		}
	})
	m.HandleFunc("DELETE "+pre+"/projects/{id}/deploy_keys/{kid}", func(w http.ResponseWriter, req *http.Request) {
		if r := project(w, req); r != nil {
			f.deleteKey(w, r, req.PathValue("kid"))
		}
	})
	hookJSON := func(h *fakeHook) map[string]any {
		return map[string]any{"id": h.id, "url": h.url, "push_events": true, "enable_ssl_verification": true, "alert_status": "executable"}
	}
	m.HandleFunc("POST "+pre+"/projects/{id}/hooks", func(w http.ResponseWriter, req *http.Request) {
		r := project(w, req)
		if r == nil {
			return
		}
		body := f.decode(req)
		f.need(req, body, "url", nil)
		f.need(req, body, "token", fakeHookSec)
		f.need(req, body, "push_events", true)
		f.need(req, body, "enable_ssl_verification", true)
		u, _ := body["url"].(string)
		writeJSON(w, 201, hookJSON(f.addHook(r, u)))
	})
	m.HandleFunc("GET "+pre+"/projects/{id}/hooks", func(w http.ResponseWriter, req *http.Request) {
		if r := project(w, req); r != nil {
			var items []any
			for _, h := range r.hooks {
				items = append(items, hookJSON(h))
			}
			paged(w, req, items)
		}
	})
	m.HandleFunc("DELETE "+pre+"/projects/{id}/hooks/{hid}", func(w http.ResponseWriter, req *http.Request) {
		if r := project(w, req); r != nil {
			f.deleteHook(w, r, req.PathValue("hid"))
		}
	})
	m.HandleFunc("GET "+pre+"/projects/{id}/repository/branches/{branch}", func(w http.ResponseWriter, req *http.Request) {
		r := project(w, req)
		if r == nil {
			return
		}
		if r.head == "" || req.PathValue("branch") != "main" {
			writeJSON(w, 404, map[string]any{"message": "404 Branch Not Found"})
			return
		}
		writeJSON(w, 200, map[string]any{"name": "main", "commit": map[string]any{"id": r.head, "short_id": r.head[:8]}})
	})
}

// cutLast splits "a/b/c" into "a/b" and "c".
func cutLast(s string) (string, string, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}
