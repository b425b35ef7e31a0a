package main

import (
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// screenshotPages are the pages TestScreenshots saves, one line each, in
// order: the file name (docs/screenshots/NAME.png), the path, and a text
// the page shows once it is rendered (checked before the picture is
// taken). In paths, {repo} is /OWNER/NAME of the seeded repository,
// {branch} its default branch and {build} the id of its succeeded,
// unpublished build. signedOut pages come first, before the sign-in; the
// others are seen by ada, the repository's owner and a server admin (so
// admin pages are one line too).
var screenshotPages = []struct {
	name, path, wait string
	signedOut        bool
}{
	{"login", "/login", "Sign in", true},
	{"home", "/", "Your repositories", false},
	{"repo-home", "{repo}", "A small HTTP service", false},
	{"tree", "{repo}/tree/{branch}/internal", "handler.go", false},
	{"blob", "{repo}/blob/{branch}/internal/handler.go", "func Hello", false},
	{"commits", "{repo}/commits/{branch}", "Add a health check", false},
	{"builds-publish", "{repo}/builds?publish={build}", "Release notes", false},
	{"versions", "{repo}/versions", "0.1.0", false},
	{"account-settings", "/user/settings", "Account settings", false},
	{"new-repository", "/-/new", "Create repository", false},
	{"web-ide", "{repo}/edit/internal/handler.go", "Commit message", false},
	{"repo-settings", "{repo}/settings", "Deploy keys", false},
	{"admin-users", "/admin?tab=users", "Users", false},
	{"admin-status", "/admin?tab=status", "System status", false},
}

// screenshotFiles is the seeded repository's content.
var screenshotFiles = []struct{ path, content, msg string }{
	{"README.md", "# hello-service\n\nA small HTTP service that says hello, built and published by gitserver.\n\n" +
		"## Run it\n\n```sh\ngo run ./cmd/hello -addr :8080\ncurl localhost:8080/hello?name=Ada\n```\n\n" +
		"## Layout\n\n- `cmd/hello`: the binary\n- `internal`: the handlers, with tests\n\n" +
		"| endpoint | answer |\n|---|---|\n| `/hello` | a greeting |\n| `/healthz` | `ok` |\n", "Start hello-service"},
	{"go.mod", "module example.com/hello\n\ngo 1.26\n", "Add the module"},
	{"cmd/hello/main.go", "package main\n\nimport (\n\t\"flag\"\n\t\"log\"\n\t\"net/http\"\n\n\t\"example.com/hello/internal\"\n)\n\n" +
		"func main() {\n\taddr := flag.String(\"addr\", \":8080\", \"listen address\")\n\tflag.Parse()\n" +
		"\tlog.Fatal(http.ListenAndServe(*addr, internal.Routes()))\n}\n", "Add the binary"},
	{"internal/handler.go", "// Package internal serves hello-service's endpoints.\npackage internal\n\nimport (\n\t\"fmt\"\n\t\"net/http\"\n)\n\n" +
		"// Routes is the service's handler.\nfunc Routes() http.Handler {\n\tmux := http.NewServeMux()\n" +
		"\tmux.HandleFunc(\"GET /hello\", Hello)\n\tmux.HandleFunc(\"GET /healthz\", func(w http.ResponseWriter, _ *http.Request) {\n" +
		"\t\tfmt.Fprintln(w, \"ok\")\n\t})\n\treturn mux\n}\n\n// Hello greets ?name= (or the world).\nfunc Hello(w http.ResponseWriter, r *http.Request) {\n" +
		"\tname := r.URL.Query().Get(\"name\")\n\tif name == \"\" {\n\t\tname = \"world\"\n\t}\n\tfmt.Fprintf(w, \"hello, %s\\n\", name)\n}\n", "Add a health check"},
	{"internal/handler_test.go", "package internal\n\nimport (\n\t\"net/http/httptest\"\n\t\"testing\"\n)\n\n" +
		"func TestHello(t *testing.T) {\n\tw := httptest.NewRecorder()\n\tHello(w, httptest.NewRequest(\"GET\", \"/hello?name=Ada\", nil))\n" +
		"\tif got := w.Body.String(); got != \"hello, Ada\\n\" {\n\t\tt.Fatalf(\"got %q\", got)\n\t}\n}\n", "Test the greeting"},
	{".gitignore", "/hello\n", "Ignore the binary"},
}

// TestScreenshots seeds a repository (README, files, three pushes: a
// build published as 0.1.0, a failed one, a succeeded one not yet
// published), signs in and saves a PNG (1280x800 viewport) of each page in
// screenshotPages: in the test's artifact directory, or in
// $GITSERVER_SCREENSHOTS when set (`GITSERVER_SCREENSHOTS=$PWD/docs/screenshots
// go test -run TestScreenshots ./cmd/gitserver` refreshes the README's).
func TestScreenshots(t *testing.T) {
	t.Parallel()
	b := NewBrowser(t)
	s := StartServer(t)
	out := os.Getenv("GITSERVER_SCREENSHOTS")
	if out == "" {
		out = t.ArtifactDir()
	} else if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}

	pw := s.CreateUser("ada", true)
	ada := Cred{"ada", pw}
	repo := s.CreateRepo(ada, "ada", "hello-service", "restricted")
	branch := jsonStr(repo, "default_branch")
	worker := s.Token("admin", "builds")
	s.Token("ada", "repo:read", "repo:write") // the account page lists it
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(ada, "ada", "hello-service"))
	if branch != "master" {
		g.Must(work, "checkout", "-q", "-b", branch)
	}
	g.Env = append(g.Env, "GIT_AUTHOR_NAME=Ada Lovelace", "GIT_AUTHOR_EMAIL=ada@example.com")
	commitFiles := func(files []struct{ path, content, msg string }) string {
		var head string
		for _, f := range files {
			head = g.Commit(work, f.path, f.content, f.msg)
		}
		g.Must(work, "push", "-q", "origin", branch)
		return head
	}
	c1 := commitFiles(screenshotFiles[:3])
	first := runBuild(t, s, worker, c1, "succeeded")
	if code, raw := s.Do("POST", "/api/v1/repos/ada/hello-service/versions", ada, map[string]any{
		"build_id": jsonNum(t, first, "id"), "bump": "minor", "release_notes": "The first release: /hello and its binary.",
	}); code != http.StatusCreated {
		t.Fatalf("publish: %d %s", code, raw)
	}
	c2 := commitFiles(screenshotFiles[3:4])
	runBuild(t, s, worker, c2, "failed")
	c3 := commitFiles(screenshotFiles[4:])
	last := runBuild(t, s, worker, c3, "succeeded")

	vars := strings.NewReplacer("{repo}", "/ada/hello-service", "{branch}", branch, "{build}", strconv.FormatInt(jsonNum(t, last, "id"), 10))
	signedIn := false
	for _, p := range screenshotPages {
		if !p.signedOut && !signedIn {
			b.Open(s.URL + "/login")
			b.Fill("Username", "ada")
			b.Fill("Password", pw)
			b.Click("Sign in")
			b.WaitText("Your repositories")
			signedIn = true
		}
		b.Open(s.URL + vars.Replace(p.path))
		b.WaitText(p.wait)
		file := filepath.Join(out, p.name+".png")
		b.Capture(file, 1280, 800)
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width != 1280 || cfg.Height != 800 {
			t.Errorf("%s: %dx%d PNG (%v), want 1280x800", file, cfg.Width, cfg.Height, err)
		}
	}
	t.Logf("%d screenshots in %s", len(screenshotPages), out)
}
