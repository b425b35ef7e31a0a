package main

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The import graph is stated in each package's doc comment, on a line
//
//	Imports: gitserver/store, gitserver/hooks
//
// listing the packages of this module it may import ("gitserver/x/..." is
// x and everything under it; "none" is none). TestImportGraph holds every
// package, its tests included, to its own line, and the whole module to the
// rules below, which no doc line can relax.

// forbiddenEverywhere are dependencies judged unfit (docs/decisions.md).
var forbiddenEverywhere = []string{"github.com/sosedoff/gitkit"}

// edgeRules: the HTTP edges do not import each other, and nothing imports
// cmd. Each rule forbids packages under from importing what matches
// forbidden (a prefix when it ends in "/", else the exact path).
var edgeRules = []struct{ under, forbidden, why string }{
	{"gitserver/gitserver", "gitserver/ui", "the git transport must not import the API (an edge)"},
	{"gitserver/gitserver", "gitserver/ui/", "the git transport must not import the API or its authenticator (edges)"},
	{"gitserver/ui", "gitserver/gitserver", "the API must not import the git transport (an edge); its sub-packages may be, if ui's doc says so"},
	{"gitserver/", "gitserver/cmd/", "nothing imports cmd"},
}

type listedPackage struct {
	ImportPath   string
	Dir          string
	Doc          string
	Name         string
	GoFiles      []string
	Imports      []string
	TestImports  []string
	XTestImports []string
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

// docImports returns the packages listed on the "Imports:" line of p's
// package comment, and whether there is one.
func docImports(t *testing.T, p listedPackage) ([]string, bool) {
	return docLine(t, p, "Imports:")
}

// docLine returns the packages listed on p's package-comment line that
// starts with prefix ("Imports:", or "Test imports:" for what only its tests
// may import besides, e.g. a real store implementation).
func docLine(t *testing.T, p listedPackage, prefix string) ([]string, bool) {
	t.Helper()
	fset := token.NewFileSet()
	for _, name := range p.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if f.Doc == nil {
			continue
		}
		for _, line := range strings.Split(f.Doc.Text(), "\n") {
			rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix)
			if !ok {
				continue
			}
			rest = strings.TrimSpace(rest)
			if rest == "none" {
				return nil, true
			}
			var list []string
			for _, s := range strings.Split(rest, ",") {
				list = append(list, strings.TrimSpace(s))
			}
			return list, true
		}
	}
	return nil, false
}

// matches reports whether imp is pattern ("x/..." matches x and below).
func matches(imp, pattern string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return imp == base || strings.HasPrefix(imp, base+"/")
	}
	return imp == pattern
}

func TestImportGraph(t *testing.T) {
	for _, p := range listPackages(t) {
		allowed, ok := docImports(t, p)
		if !ok {
			t.Errorf("package %s: its doc comment has no \"Imports:\" line", p.ImportPath)
		}
		for _, a := range allowed {
			if !strings.HasPrefix(a, "gitserver/") {
				t.Errorf("package %s: \"Imports:\" names %q, not a package of this module", p.ImportPath, a)
			}
		}
		testOnly, _ := docLine(t, p, "Test imports:")
		all := append(append(slices.Clone(p.Imports), p.TestImports...), p.XTestImports...)
		slices.Sort(all)
		for _, imp := range slices.Compact(all) {
			allowed := allowed
			if !slices.Contains(p.Imports, imp) {
				allowed = append(slices.Clone(allowed), testOnly...)
			}
			for _, bad := range forbiddenEverywhere {
				if strings.HasPrefix(imp, bad) {
					t.Errorf("%s imports %s, which docs/decisions.md rules out", p.ImportPath, imp)
				}
			}
			if !strings.HasPrefix(imp, "gitserver/") || imp == p.ImportPath {
				continue // outside the module; or the package's own external test
			}
			for _, r := range edgeRules {
				under := p.ImportPath == r.under || strings.HasPrefix(p.ImportPath, strings.TrimSuffix(r.under, "/")+"/")
				hit := imp == r.forbidden || strings.HasSuffix(r.forbidden, "/") && strings.HasPrefix(imp, r.forbidden)
				if under && hit {
					t.Errorf("%s imports %s: %s", p.ImportPath, imp, r.why)
				}
			}
			if ok && !slices.ContainsFunc(allowed, func(a string) bool { return matches(imp, a) }) {
				t.Errorf("%s imports %s, which its doc's \"Imports:\" line does not allow", p.ImportPath, imp)
			}
		}
	}
}

// TestImportRulesHold: the edge rules catch what they are for.
func TestImportRulesHold(t *testing.T) {
	broken := func(pkg, imp string) bool {
		for _, r := range edgeRules {
			under := pkg == r.under || strings.HasPrefix(pkg, strings.TrimSuffix(r.under, "/")+"/")
			hit := imp == r.forbidden || strings.HasSuffix(r.forbidden, "/") && strings.HasPrefix(imp, r.forbidden)
			if under && hit {
				return true
			}
		}
		return false
	}
	for _, tc := range []struct {
		pkg, imp string
		bad      bool
	}{
		{"gitserver/gitserver", "gitserver/ui/httpauth", true},
		{"gitserver/gitserver", "gitserver/ui", true},
		{"gitserver/gitserver/packcache", "gitserver/ui", true},
		{"gitserver/ui", "gitserver/gitserver", true},
		{"gitserver/ui/httpauth", "gitserver/gitserver", true},
		{"gitserver/ui", "gitserver/gitserver/access", false},
		{"gitserver/store", "gitserver/cmd/gitserver", true},
		{"gitserver/cmd/gitserver", "gitserver/gitserver", false},
		{"gitserver/cmd/gitserver", "gitserver/ui", false},
		{"gitserver/gitserver", "gitserver/gitserver/httperr", false},
	} {
		if got := broken(tc.pkg, tc.imp); got != tc.bad {
			t.Errorf("%s importing %s: forbidden = %v, want %v", tc.pkg, tc.imp, got, tc.bad)
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
