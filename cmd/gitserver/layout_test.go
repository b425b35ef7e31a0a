package main

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// allowedImports states the import graph in one place: for each package
// (prefix) of this module, which of the module's packages it may import.
// store imports none; hooks and ui import store; gitserver imports store,
// hooks and ui/httpauth; cmd imports everything and nothing imports cmd.
var allowedImports = map[string][]string{
	"gitserver/store":       {},
	"gitserver/hooks":       {"gitserver/store"},
	"gitserver/ui/httpauth": {"gitserver/store"},
	"gitserver/ui":          {"gitserver/store", "gitserver/ui/httpauth", "gitserver/gitserver/access", "gitserver/gitserver/service"},
	"gitserver/gitserver":   {"gitserver/store", "gitserver/hooks", "gitserver/ui/httpauth", "gitserver/gitserver/"},
	"gitserver/bench":       {"gitserver/"},
	"gitserver/cmd/":        {"gitserver/"},

	// The access policy is pure: domain types only.
	"gitserver/gitserver/access": {"gitserver/store"},
	// The multi-step operations: the store and the access policy only.
	"gitserver/gitserver/service": {"gitserver/store", "gitserver/gitserver/access"},
	// Store implementations and their contract suite import only store;
	// only cmd (and bench, tests) import an implementation.
	"gitserver/store/sqlite":    {"gitserver/store"},
	"gitserver/store/storetest": {"gitserver/store"},
}

// forbiddenEverywhere are dependencies judged unfit (docs/decisions.md).
var forbiddenEverywhere = []string{"github.com/sosedoff/gitkit"}

type listedPackage struct {
	ImportPath string
	Doc        string
	Imports    []string
	Name       string
}

func listPackages(t *testing.T) []listedPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "gitserver/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []listedPackage
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// rulesFor returns the most specific rule for a package.
func rulesFor(path string) ([]string, bool) {
	best, found := "", false
	for prefix := range allowedImports {
		match := path == prefix || strings.HasSuffix(prefix, "/") && strings.HasPrefix(path, prefix) ||
			strings.HasPrefix(path, prefix+"/")
		if match && len(prefix) > len(best) {
			best, found = prefix, true
		}
	}
	return allowedImports[best], found
}

func TestImportGraph(t *testing.T) {
	for _, p := range listPackages(t) {
		allowed, ok := rulesFor(p.ImportPath)
		if !ok {
			t.Errorf("package %s has no import rule in layout_test.go", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			for _, bad := range forbiddenEverywhere {
				if strings.HasPrefix(imp, bad) {
					t.Errorf("%s imports %s, which docs/decisions.md rules out", p.ImportPath, imp)
				}
			}
			if !strings.HasPrefix(imp, "gitserver/") {
				continue
			}
			if strings.HasPrefix(imp, "gitserver/cmd/") {
				t.Errorf("%s imports %s: nothing may import cmd", p.ImportPath, imp)
				continue
			}
			okImp := strings.HasPrefix(imp, p.ImportPath+"/") // own sub-packages
			for _, a := range allowed {
				if imp == a || strings.HasSuffix(a, "/") && strings.HasPrefix(imp, a) {
					okImp = true
				}
			}
			if !okImp {
				t.Errorf("%s imports %s, which the layout does not allow", p.ImportPath, imp)
			}
		}
	}
}

func TestEveryPackageHasDoc(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no package doc comment (add a doc.go)", p.ImportPath)
		}
	}
}
