package ui

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"gopkg.in/yaml.v3"
)

// openAPIDoc is the part of docs/openapi.yaml the drift check reads.
type openAPIDoc struct {
	OpenAPI    string                                 `yaml:"openapi"`
	Paths      map[string]map[string]yaml.Node        `yaml:"paths"`
	Ops        map[string]map[string]openAPIOperation `yaml:"-"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type   string `yaml:"type"`
			Scheme string `yaml:"scheme"`
		} `yaml:"securitySchemes"`
	} `yaml:"components"`
}

type openAPIOperation struct {
	OperationID string                `yaml:"operationId"`
	Responses   map[string]any        `yaml:"responses"`
	Security    []map[string][]string `yaml:"security"`
	Parameters  []map[string]any      `yaml:"parameters"`
	RequestBody map[string]any        `yaml:"requestBody"`
	Extra       map[string]any        `yaml:",inline"`
}

var httpMethods = map[string]bool{"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true}

func loadOpenAPI(t *testing.T) (openAPIDoc, map[string]any) {
	t.Helper()
	raw, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	doc.Ops = map[string]map[string]openAPIOperation{}
	for path, item := range doc.Paths {
		doc.Ops[path] = map[string]openAPIOperation{}
		for method, node := range item {
			if !httpMethods[method] {
				continue
			}
			var op openAPIOperation
			if err := node.Decode(&op); err != nil {
				t.Fatalf("docs/openapi.yaml: %s %s: %v", method, path, err)
			}
			doc.Ops[path][method] = op
		}
	}
	var tree map[string]any
	if err := yaml.Unmarshal(raw, &tree); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	return doc, tree
}

// muxVarRE matches a gorilla/mux variable with an optional pattern.
var muxVarRE = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)(:[^}]*)?\}`)

// openAPIPath turns a mux template into an OpenAPI path ("{id:[0-9]+}" ->
// "{id}").
func openAPIPath(tpl string) string { return muxVarRE.ReplaceAllString(tpl, "{$1}") }

// registeredRoutes walks the API's router and returns "METHOD path" for
// each route. (The git transport's routes and the operational endpoints
// are checked in cmd/gitserver, which wires them all: ui does not import
// the git transport.)
func registeredRoutes(t *testing.T) map[string]bool {
	t.Helper()
	r := mux.NewRouter()
	(&API{}).Register(r)
	routes := map[string]bool{}
	err := r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil {
			return nil // subrouter prefixes and catch-all handlers
		}
		for _, m := range methods {
			routes[m+" "+openAPIPath(tpl)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) < 20 {
		t.Fatalf("walked only %d routes: %v", len(routes), routes)
	}
	return routes
}

// TestOpenAPIDocumentsEveryRoute: every route of the API is documented
// with the same method, and every documented /api/v1 operation exists, so
// the document cannot drift from the code.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi: %q, want 3.1.x", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, item := range doc.Ops {
		for method := range item {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	routes := registeredRoutes(t)
	var missing, stale []string
	for r := range routes {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for d := range documented {
		_, path, _ := strings.Cut(d, " ")
		if strings.HasPrefix(path, "/api/") && !routes[d] {
			stale = append(stale, d)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	for _, m := range missing {
		t.Errorf("route %s is registered but not documented in docs/openapi.yaml", m)
	}
	for _, s := range stale {
		t.Errorf("docs/openapi.yaml documents %s, which is not registered", s)
	}
}

// TestOpenAPIWellFormed checks what a generator or reader relies on: unique
// operation ids, a success response per operation, path parameters declared,
// known security schemes with known scopes, and resolvable $refs.
func TestOpenAPIWellFormed(t *testing.T) {
	doc, tree := loadOpenAPI(t)
	for _, name := range []string{"basicAuth", "bearerAuth"} {
		if _, ok := doc.Components.SecuritySchemes[name]; !ok {
			t.Errorf("security scheme %s missing", name)
		}
	}
	if s := doc.Components.SecuritySchemes["basicAuth"]; s.Type != "http" || s.Scheme != "basic" {
		t.Errorf("basicAuth = %+v", s)
	}
	if s := doc.Components.SecuritySchemes["bearerAuth"]; s.Type != "http" || s.Scheme != "bearer" {
		t.Errorf("bearerAuth = %+v", s)
	}
	scopes := map[string]bool{"repo:read": true, "repo:write": true, "builds": true, "admin": true}
	ids := map[string]string{}
	paramRE := regexp.MustCompile(`\{([^}]+)\}`)
	pathsTree, _ := tree["paths"].(map[string]any)
	for path, item := range doc.Ops {
		// Path-level parameters.
		declared := map[string]bool{}
		if pi, ok := pathsTree[path].(map[string]any); ok {
			collectPathParams(tree, pi["parameters"], declared)
		}
		for method, op := range item {
			if !httpMethods[method] {
				continue
			}
			where := strings.ToUpper(method) + " " + path
			if op.OperationID == "" {
				t.Errorf("%s: no operationId", where)
			} else if prev, dup := ids[op.OperationID]; dup {
				t.Errorf("%s: operationId %s also used by %s", where, op.OperationID, prev)
			} else {
				ids[op.OperationID] = where
			}
			ok2xx := false
			for code := range op.Responses {
				// A redirect is the success of the browser's OAuth steps.
				if strings.HasPrefix(code, "2") || strings.HasPrefix(code, "3") {
					ok2xx = true
				}
			}
			if !ok2xx {
				t.Errorf("%s: no 2xx (or 3xx) response", where)
			}
			opDeclared := map[string]bool{}
			for k := range declared {
				opDeclared[k] = true
			}
			if pi, ok := pathsTree[path].(map[string]any); ok {
				if o, ok := pi[method].(map[string]any); ok {
					collectPathParams(tree, o["parameters"], opDeclared)
				}
			}
			for _, m := range paramRE.FindAllStringSubmatch(path, -1) {
				if !opDeclared[m[1]] {
					t.Errorf("%s: path parameter %s not declared", where, m[1])
				}
			}
			for _, req := range op.Security {
				for scheme, roles := range req {
					if _, ok := doc.Components.SecuritySchemes[scheme]; !ok {
						t.Errorf("%s: unknown security scheme %s", where, scheme)
					}
					for _, r := range roles {
						if !scopes[r] {
							t.Errorf("%s: unknown scope %s", where, r)
						}
					}
				}
			}
			if strings.HasPrefix(path, "/api/") {
				if _, ok := op.Responses["401"]; !ok {
					t.Errorf("%s: authenticated endpoint without a 401 response", where)
				}
			}
		}
	}
	// Every $ref resolves.
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				if resolveRef(tree, ref) == nil {
					t.Errorf("unresolvable $ref %s", ref)
				}
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(tree)
}

func resolveRef(tree map[string]any, ref string) map[string]any {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	var cur any = tree
	for _, part := range strings.Split(p, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")]
	}
	m, _ := cur.(map[string]any)
	return m
}

func collectPathParams(tree map[string]any, params any, into map[string]bool) {
	list, _ := params.([]any)
	for _, p := range list {
		m, _ := p.(map[string]any)
		if ref, ok := m["$ref"].(string); ok {
			m = resolveRef(tree, ref)
		}
		if m != nil && m["in"] == "path" {
			if name, ok := m["name"].(string); ok {
				into[name] = true
			}
		}
	}
}
