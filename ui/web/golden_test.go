package web

import (
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gitserver/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestTemplatesGolden renders every page from fixed data and compares it
// with testdata/<case>.html (go test ./ui/web -run Golden -update rewrites
// them after an intended change).
func TestTemplatesGolden(t *testing.T) {
	alice := &store.Account{ID: 1, Name: "alice", Kind: store.KindUser}
	created := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	repo := store.Repo{ID: 7, OwnerID: 1, Owner: "alice", Name: "demo", Visibility: store.Restricted, DefaultBranch: "main", CreatedAt: created}
	readme, err := RenderMarkdown([]byte(xssReadme))
	if err != nil {
		t.Fatal(err)
	}
	const csrf = "c5rf"
	for _, tc := range []struct {
		name, page string
		p          Page
	}{
		{"login", "login", Page{Title: "Sign in", CSRF: csrf, Data: LoginData{}}},
		{"login-error", "login", Page{Title: "Sign in", CSRF: csrf, Data: LoginData{Username: "al<i>ce", Error: "Incorrect username or password."}}},
		{"home", "home", Page{Title: "Your repositories", User: alice, CSRF: csrf, Data: HomeData{Repos: []store.Repo{repo,
			{ID: 8, Owner: "team", Name: "site", Visibility: store.Public, DefaultBranch: "main"}}}}},
		{"home-none", "home", Page{Title: "Your repositories", User: alice, CSRF: csrf, Data: HomeData{}}},
		{"repo-readme", "repo", Page{Title: "alice/demo", User: alice, CSRF: csrf, Data: RepoData{Repo: repo,
			HTTPURL: "https://git.example.com/git/alice/demo.git", SSHURL: "ssh://git@git.example.com:2222/alice/demo.git",
			ReadmeName: "README.md", ReadmeHTML: readme}}},
		{"repo-empty", "repo", Page{Title: "alice/demo", Data: RepoData{Repo: repo, HTTPURL: "https://git.example.com/git/alice/demo.git", Empty: true}}},
		{"repo-no-readme", "repo", Page{Title: "alice/demo", Data: RepoData{Repo: repo, HTTPURL: "https://git.example.com/git/alice/demo.git"}}},
		{"error-404", "error", Page{Title: "Not found", Data: ErrorData{Heading: "Not found", Message: "There is no repository here, or you may not see it."}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			if err := render(rec, 200, tc.page, tc.p); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.name+".html")
			if *update {
				os.MkdirAll("testdata", 0o755)
				if err := os.WriteFile(path, rec.Body.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got := rec.Body.String(); got != string(want) {
				t.Errorf("%s differs from %s (run with -update after an intended change):\n%s", tc.name, path, got)
			}
		})
	}
}
