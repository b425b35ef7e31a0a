package scm_test

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"gitserver/gitserver/scm"
)

// routesHub: GitHub (under /api/v3, GHES style) and Gitea (under /api/v1).
func (f *fakeSCM) routesHub() {
	pre := "/api/v3"
	if f.kind == scm.Gitea {
		pre = "/api/v1"
	}
	m := f.mux
	repoJSON := func(r *fakeRepo) map[string]any {
		ssh := "git@" + f.srv.Listener.Addr().String() + ":" + r.owner + "/" + r.name + ".git"
		return map[string]any{"id": r.id, "name": r.name, "full_name": r.owner + "/" + r.name,
			"owner": map[string]any{"login": r.owner, "id": 7}, "private": r.private,
			"html_url": f.srv.URL + "/" + r.owner + "/" + r.name, "ssh_url": ssh,
			"clone_url": f.srv.URL + "/" + r.owner + "/" + r.name + ".git", "default_branch": "main"}
	}
	repo := func(w http.ResponseWriter, req *http.Request) *fakeRepo {
		r := f.find(req.PathValue("owner"), req.PathValue("repo"))
		if r == nil {
			f.fail(w, 404, "Not Found")
		}
		return r
	}
	// paged writes items [start, end) with a Link header to the next page.
	paged := func(w http.ResponseWriter, req *http.Request, items []any) {
		start, end, more := page(req, "page", len(items))
		if more {
			w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next", <%s>; rel="last"`,
				nextURL(f.srv.URL, req, "page", pageNum(req)+1), nextURL(f.srv.URL, req, "page", (len(items)+fakePageSize-1)/fakePageSize)))
		}
		writeJSON(w, 200, items[start:end])
	}

	if f.kind == scm.GitHub {
		m.HandleFunc("GET "+pre+"/meta", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, map[string]any{"verifiable_password_authentication": false, "ssh_keys": []string{"ssh-ed25519 AAAA"}})
		})
	} else {
		m.HandleFunc("GET "+pre+"/version", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, map[string]string{"version": "1.26.0"})
		})
	}
	m.HandleFunc("GET "+pre+"/user", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"login": fakeUser, "id": 7, "type": "User"})
	})
	m.HandleFunc("GET "+pre+"/user/orgs", func(w http.ResponseWriter, r *http.Request) {
		var items []any
		for i, o := range fakeOrgs {
			if f.kind == scm.Gitea {
				items = append(items, map[string]any{"id": i + 1, "name": o, "username": o, "full_name": ""})
			} else {
				items = append(items, map[string]any{"id": i + 1, "login": o})
			}
		}
		paged(w, r, items)
	})
	create := func(w http.ResponseWriter, req *http.Request, owner string) {
		body := f.decode(req)
		f.need(req, body, "name", nil)
		if _, ok := body["private"].(bool); !ok {
			f.t.Errorf("POST %s: private %#v, want a boolean", req.URL.Path, body["private"])
		}
		name, _ := body["name"].(string)
		private, _ := body["private"].(bool)
		if r := f.create(w, owner, name, private); r != nil {
			writeJSON(w, 201, repoJSON(r))
		}
	}
	m.HandleFunc("POST "+pre+"/user/repos", func(w http.ResponseWriter, r *http.Request) { create(w, r, fakeUser) })
	m.HandleFunc("POST "+pre+"/orgs/{org}/repos", func(w http.ResponseWriter, r *http.Request) {
		switch org := r.PathValue("org"); {
		case slices.Contains(fakeOrgs, org):
			create(w, r, org)
		case org == fakeForeign:
			f.fail(w, 403, "You need admin access to the organization before adding a repository to it.")
		default:
			f.fail(w, 404, "Not Found")
		}
	})
	m.HandleFunc("GET "+pre+"/repos/{owner}/{repo}", func(w http.ResponseWriter, req *http.Request) {
		if r := repo(w, req); r != nil {
			writeJSON(w, 200, repoJSON(r))
		}
	})
	m.HandleFunc("GET "+pre+"/repositories/{id}", func(w http.ResponseWriter, req *http.Request) {
		if r := f.byID(req.PathValue("id")); r != nil {
			writeJSON(w, 200, repoJSON(r))
			return
		}
		f.fail(w, 404, "Not Found")
	})
	keyJSON := func(k *fakeKey) map[string]any {
		return map[string]any{"id": k.id, "key": k.shown(), "title": k.title, "read_only": k.readOnly, "verified": true}
	}
	m.HandleFunc("POST "+pre+"/repos/{owner}/{repo}/keys", func(w http.ResponseWriter, req *http.Request) {
		r := repo(w, req)
		if r == nil {
			return
		}
		body := f.decode(req)
		f.need(req, body, "title", nil)
		f.need(req, body, "key", nil)
		f.need(req, body, "read_only", true)
		title, _ := body["title"].(string)
		key, _ := body["key"].(string)
		if k := f.addKey(w, r, title, key, body["read_only"] == true); k != nil {
			writeJSON(w, 201, keyJSON(k))
		}
	})
	m.HandleFunc("GET "+pre+"/repos/{owner}/{repo}/keys", func(w http.ResponseWriter, req *http.Request) {
		if r := repo(w, req); r != nil {
			var items []any
			for _, k := range r.keys {
				items = append(items, keyJSON(k))
			}
			paged(w, req, items)
		}
	})
	m.HandleFunc("DELETE "+pre+"/repos/{owner}/{repo}/keys/{id}", func(w http.ResponseWriter, req *http.Request) {
		if r := repo(w, req); r != nil {
			f.deleteKey(w, r, req.PathValue("id"))
		}
	})
	hookJSON := func(h *fakeHook) map[string]any {
		j := map[string]any{"id": h.id, "active": true, "events": []string{"push", "repository"},
			"config": map[string]any{"url": h.url, "content_type": "json"}}
		if f.kind == scm.Gitea {
			j["type"] = "gitea"
		} else {
			j["name"] = "web"
			j["config"].(map[string]any)["insecure_ssl"] = "0"
		}
		return j
	}
	m.HandleFunc("POST "+pre+"/repos/{owner}/{repo}/hooks", func(w http.ResponseWriter, req *http.Request) {
		r := repo(w, req)
		if r == nil {
			return
		}
		body := f.decode(req)
		if f.kind == scm.Gitea {
			f.need(req, body, "type", "gitea")
		} else {
			f.need(req, body, "name", "web")
			f.need(req, body, "config.insecure_ssl", "0")
		}
		f.need(req, body, "active", true)
		f.need(req, body, "config.url", nil)
		f.need(req, body, "config.content_type", "json")
		f.need(req, body, "config.secret", fakeHookSec)
		f.needEvent(req, body, "push")
		f.needEvent(req, body, "repository")
		u, _ := body["config"].(map[string]any)["url"].(string)
		writeJSON(w, 201, hookJSON(f.addHook(r, u)))
	})
	m.HandleFunc("GET "+pre+"/repos/{owner}/{repo}/hooks", func(w http.ResponseWriter, req *http.Request) {
		if r := repo(w, req); r != nil {
			var items []any
			for _, h := range r.hooks {
				items = append(items, hookJSON(h))
			}
			paged(w, req, items)
		}
	})
	m.HandleFunc("DELETE "+pre+"/repos/{owner}/{repo}/hooks/{id}", func(w http.ResponseWriter, req *http.Request) {
		if r := repo(w, req); r != nil {
			f.deleteHook(w, r, req.PathValue("id"))
		}
	})
	m.HandleFunc("GET "+pre+"/repos/{owner}/{repo}/branches/{branch}", func(w http.ResponseWriter, req *http.Request) {
		r := repo(w, req)
		if r == nil {
			return
		}
		if r.head == "" || req.PathValue("branch") != "main" {
			f.fail(w, 404, "Branch not found")
			return
		}
		commit := map[string]any{"sha": r.head}
		if f.kind == scm.Gitea {
			commit = map[string]any{"id": r.head}
		}
		writeJSON(w, 200, map[string]any{"name": "main", "commit": commit, "protected": false})
	})
}

func (f *fakeSCM) deleteKey(w http.ResponseWriter, r *fakeRepo, id string) {
	i := slices.IndexFunc(r.keys, func(k *fakeKey) bool { return strconv.FormatInt(k.id, 10) == id })
	if i < 0 {
		f.fail(w, 404, "Not Found")
		return
	}
	r.keys = slices.Delete(r.keys, i, i+1)
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeSCM) deleteHook(w http.ResponseWriter, r *fakeRepo, id string) {
	i := slices.IndexFunc(r.hooks, func(h *fakeHook) bool { return strconv.FormatInt(h.id, 10) == id || fmt.Sprintf("{%d}", h.id) == id })
	if i < 0 {
		f.fail(w, 404, "Not Found")
		return
	}
	r.hooks = slices.Delete(r.hooks, i, i+1)
	w.WriteHeader(http.StatusNoContent)
}
