package main

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"gopkg.in/yaml.v3"

	"gitserver/gitserver"
	"gitserver/gitserver/mirror"
	"gitserver/ui"
)

// TestOpenAPIDocumentsServedRoutes: every route of the HTTP address as
// cmd wires it (operational endpoints, git transport, API) is documented in
// docs/openapi.yaml with the same method, and every documented operation is
// served. Only cmd sees all the edges; ui checks its own routes too.
func TestOpenAPIDocumentsServedRoutes(t *testing.T) {
	raw, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	methods := map[string]bool{"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for m := range item {
			if methods[m] {
				documented[strings.ToUpper(m)+" "+path] = true
			}
		}
	}

	muxVar := regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)(:[^}]*)?\}`)
	served := map[string]bool{}
	r := newRouter(gitserver.Health{}, &gitserver.Server{}, &ui.API{}, &mirror.Engine{}, nil) // web pages: docs/api.md §11, not OpenAPI
	err = r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return nil
		}
		if re, err := route.GetPathRegexp(); err != nil || !strings.HasSuffix(re, "$") {
			return nil // a prefix: a subrouter or a catch-all 404
		}
		path := muxVar.ReplaceAllString(tpl, "{$1}")
		ms, err := route.GetMethods()
		if err != nil {
			ms = []string{"GET"} // any method; documented as GET (/healthz, /readyz, /metrics)
		}
		for _, m := range ms {
			served[m+" "+path] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"GET /healthz", "GET /readyz", "GET /metrics", "POST /git/{owner}/{name}.git/git-receive-pack", "POST /api/v1/repos"} {
		if !served[op] {
			t.Fatalf("the walk missed %s: %v", op, served)
		}
	}
	var missing, stale []string
	for op := range served {
		if !documented[op] {
			missing = append(missing, op)
		}
	}
	for op := range documented {
		if !served[op] {
			stale = append(stale, op)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	for _, op := range missing {
		t.Errorf("%s is served but not documented in docs/openapi.yaml", op)
	}
	for _, op := range stale {
		t.Errorf("docs/openapi.yaml documents %s, which is not served", op)
	}
}
