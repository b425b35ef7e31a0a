package web

import (
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
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
	goSrc, err := Highlight("main.go", []byte("package main\n\nimport \"fmt\"\n\n// main greets.\nfunc main() {\n\tfmt.Println(\"<hello>\", 42)\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	files := entryLinks(repo, "main", "", []TreeEntry{{Name: "README.md", Type: "blob", Mode: "100644", Size: 12},
		{Name: "cmd", Type: "tree", Mode: "040000", Size: -1}, {Name: "lib", Type: "commit", Mode: "160000", Size: -1}})
	commitAt := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	commits := []Commit{{Hash: "0123456789abcdef0123456789abcdef01234567", Author: "Alice <a>", When: commitAt, Subject: "Fix <b>bold</b> & more"},
		{Hash: "fedcba9876543210fedcba9876543210fedcba98", Author: "Bob", When: commitAt.Add(-time.Hour), Subject: "Initial commit"}}
	at := func(m int) time.Time { return created.Add(time.Duration(m) * time.Minute) }
	ok := BuildRow{ID: 12, Status: "succeeded", Commit: strings.Repeat("ab", 20), Short: "abababababab", CommitCount: 3, PushedBy: "alice",
		Queued: when(at(1)), Started: when(at(2)), Finished: when(at(5)), LogURL: "https://ci.example.com/log/12", Publishable: true}
	rows := []BuildRow{ok,
		{ID: 11, Status: "failed", Commit: strings.Repeat("cd", 20), Short: "cdcdcdcdcdcd", CommitCount: 1, PushedBy: "bob", Queued: when(at(0)), Started: when(at(0)), Finished: when(at(1))},
		{ID: 10, Status: "succeeded", Commit: strings.Repeat("ef", 20), Short: "efefefefefef", CommitCount: 4, PushedBy: "alice", Queued: when(at(-9)), Published: "1.2.3"},
		{ID: 9, Status: "queued", Commit: strings.Repeat("01", 20), Short: "010101010101", CommitCount: 1, PushedBy: "alice", Queued: when(at(-10))}}
	latest := []store.Version{{Major: 1, Minor: 2, Patch: 3}}
	for _, tc := range []struct {
		name, page string
		p          Page
	}{
		{"login", "login", Page{Title: "Sign in", CSRF: csrf, Data: LoginData{}}},
		{"login-sso", "login", Page{Title: "Sign in", CSRF: csrf, Data: LoginData{SSOName: "Acme <SSO>"}}},
		{"login-error", "login", Page{Title: "Sign in", CSRF: csrf, Data: LoginData{Username: "al<i>ce", Error: "Incorrect username or password."}}},
		{"home", "home", Page{Title: "Your repositories", User: alice, CSRF: csrf, Data: HomeData{CanCreate: true, Repos: []store.Repo{repo,
			{ID: 8, Owner: "team", Name: "site", Visibility: store.Public, DefaultBranch: "main"}}}}},
		{"home-new", "home", Page{Title: "New repository", User: alice, CSRF: csrf, Data: HomeData{CanCreate: true, Repos: []store.Repo{repo},
			New: &NewRepoForm{Owners: []string{"alice", "team"}, Owner: "team", Visibility: "restricted", Host: "scm-2", Mirrors: true,
				Hosts: []HostChoice{{Value: "internal", Label: "This server", Connected: true},
					{Value: "scm-2", Label: "Gitea <corp> (gitea)", Connected: true},
					{Value: "scm-3", Label: "GitHub (github)", AuthorizeURL: "/scm/3/connect?return_to=%2F-%2Fnew"}}}}}},
		{"home-new-error", "home", Page{Title: "New repository", User: alice, CSRF: csrf, Data: HomeData{CanCreate: true,
			New: &NewRepoForm{Owners: []string{"alice"}, Owner: "alice", Name: "bad name<", Visibility: "public", Host: "internal",
				Hosts: []HostChoice{{Value: "internal", Label: "This server", Connected: true}},
				Error: "repository name must match [A-Za-z0-9][A-Za-z0-9_.-]{0,99} and not end in .git"}}}},
		{"home-deleted", "home", Page{Title: "Your repositories", User: alice, CSRF: csrf, Data: HomeData{Notice: "The repository was deleted."}}},
		{"home-none", "home", Page{Title: "Your repositories", User: alice, CSRF: csrf, Data: HomeData{}}},
		{"repo-readme", "repo", Page{Title: "alice/demo", User: alice, CSRF: csrf, Data: RepoData{Repo: repo,
			HTTPURL: "https://git.example.com/git/alice/demo.git", SSHURL: "ssh://git@git.example.com:2222/alice/demo.git",
			ReadmeName: "README.md", ReadmeHTML: readme}}},
		{"repo-empty", "repo", Page{Title: "alice/demo", Data: RepoData{Repo: repo, HTTPURL: "https://git.example.com/git/alice/demo.git", Empty: true}}},
		{"repo-no-readme", "repo", Page{Title: "alice/demo", Data: RepoData{Repo: repo, HTTPURL: "https://git.example.com/git/alice/demo.git"}}},
		{"repo-files", "repo", Page{Title: "alice/demo", User: alice, CSRF: csrf, Data: RepoData{Repo: repo, HTTPURL: "https://git.example.com/git/alice/demo.git",
			Files: files, CommitsURL: "/alice/demo/commits/main", BranchesURL: "/alice/demo/branches", TagsURL: "/alice/demo/tags", CanSettings: true}}},
		{"tree", "tree", Page{Title: "alice/demo/cmd", User: alice, CSRF: csrf, Data: TreeData{Repo: repo, Ref: "main", Path: "cmd",
			Crumbs: crumbs(repo, "main", "cmd"), Entries: entryLinks(repo, "main", "cmd", []TreeEntry{{Name: "x.go", Type: "blob", Size: 1234}, {Name: "sub dir", Type: "tree", Size: -1}})}}},
		{"tree-empty", "tree", Page{Title: "alice/demo", Data: TreeData{Repo: repo, Ref: "feature/x", Crumbs: crumbs(repo, "feature/x", "")}}},
		{"blob-go", "blob", Page{Title: "alice/demo/main.go", User: alice, CSRF: csrf, Data: BlobData{Repo: repo, Ref: "main", Path: "main.go",
			Crumbs: blobCrumbs(repo, "main", "main.go"), Size: 80, HTML: goSrc}}},
		{"blob-large", "blob", Page{Title: "alice/demo/big.bin", Data: BlobData{Repo: repo, Ref: "main", Path: "big.bin",
			Crumbs: blobCrumbs(repo, "main", "big.bin"), Size: 5 << 20, Large: true}}},
		{"log", "log", Page{Title: "Commits · alice/demo", User: alice, CSRF: csrf, Data: LogData{Repo: repo, Ref: "main", Page: 2, Commits: commits,
			TreeURL: "/alice/demo/tree/main", PrevURL: "/alice/demo/commits/main?page=1", NextURL: "/alice/demo/commits/main?page=3"}}},
		{"branches", "refs", Page{Title: "Branches · alice/demo", User: alice, CSRF: csrf, Data: RefsData{Repo: repo, Kind: "branches", Refs: []RefLink{
			{Ref: Ref{Name: "feature/x", Hash: "ab", When: commitAt, Subject: "WIP <x>"}, TreeURL: RepoURL(repo, "tree", "feature/x", ""), LogURL: RepoURL(repo, "commits", "feature/x", "")},
			{Ref: Ref{Name: "main", Hash: "cd", When: commitAt, Subject: "Initial commit"}, TreeURL: RepoURL(repo, "tree", "main", ""), LogURL: RepoURL(repo, "commits", "main", ""), Default: true}}}}},
		{"tags-none", "refs", Page{Title: "Tags · alice/demo", Data: RefsData{Repo: repo, Kind: "tags"}}},
		{"builds", "builds", Page{Title: "Builds · alice/demo", User: alice, CSRF: csrf, Data: BuildsData{Repo: repo, Builds: rows, CanPublish: true, CanSettings: true}}},
		{"builds-live", "builds", Page{Title: "Builds · alice/demo", User: alice, CSRF: csrf, Refresh: 5, Data: BuildsData{Repo: repo, Builds: rows[3:]}}},
		{"builds-reader", "builds", Page{Title: "Builds · alice/demo", User: alice, CSRF: csrf, Data: BuildsData{Repo: repo, Builds: rows}}},
		{"builds-none", "builds", Page{Title: "Builds · alice/demo", Data: BuildsData{Repo: repo}}},
		{"builds-publish", "builds", Page{Title: "Builds · alice/demo", User: alice, CSRF: csrf, Data: BuildsData{Repo: repo, Builds: rows, CanPublish: true,
			Publish: func() *PublishForm {
				f := publishForm(ok, latest, "minor", "Fixes <b>things</b>")
				f.LogSince, f.LogMore = "121212121212", true
				f.Log = []LogEntry{{Commit: strings.Repeat("ab", 20), Short: "abababababab", Author: "Alice <A>", When: "2030-01-02 03:04 UTC", Subject: "Fix the <parser>"},
					{Commit: strings.Repeat("34", 20), Short: "343434343434", Author: "Bob", When: "2030-01-01 03:04 UTC", Subject: "Add things"}}
				return f
			}()}}},
		{"builds-publish-first", "builds", Page{Title: "Builds · alice/demo", User: alice, CSRF: csrf, Data: BuildsData{Repo: repo, Builds: rows[:1], CanPublish: true,
			Publish: &PublishForm{Build: ok, Bumps: publishForm(ok, nil, "", "").Bumps, Error: "bump must be \"major\", \"minor\" or \"patch\""}}}},
		{"versions", "versions", Page{Title: "Versions · alice/demo", User: alice, CSRF: csrf, Data: VersionsData{Repo: repo, New: "1.2.3", CanSettings: true, Versions: []VersionRow{
			{Version: "1.2.3", Commit: strings.Repeat("ef", 20), Short: "efefefefefef", BuildID: 10, Notes: "Line one\n<script>alert(1)</script>", PublishedBy: "alice", PublishedAt: when(at(-8))},
			{Version: "1.2.2", Commit: strings.Repeat("12", 20), Short: "121212121212", BuildID: 4, PublishedBy: "carol", PublishedAt: when(at(-100))}}}}},
		{"versions-none", "versions", Page{Title: "Versions · alice/demo", Data: VersionsData{Repo: repo}}},
		{"settings", "settings", Page{Title: "Account settings", User: alice, CSRF: csrf, Data: SettingsData{
			Scopes: []string{"repo:read", "repo:write"},
			Tokens: []TokenRow{{ID: 3, Name: "ci <bot>", Scopes: "repo:read repo:write", Created: "2030-01-02 03:04:05"}},
			Keys:   []store.Key{{ID: 5, Title: "laptop", Fingerprint: "SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}}}}},
		{"settings-none", "settings", Page{Title: "Account settings", User: alice, CSRF: csrf, Data: SettingsData{
			Scopes: []string{"repo:read", "repo:write", "builds", "admin"}}}},
		{"settings-secrets", "settings", Page{Title: "Account settings", User: alice, CSRF: csrf, Data: SettingsData{
			Scopes: []string{"repo:read", "repo:write"}, NewPassword: "0123456789abcdef01234567", NewToken: "gst_secret<x>",
			Notice: "Your password was changed. Your other sessions were signed out."}}},
		{"settings-sso", "settings", Page{Title: "Account settings", User: alice, CSRF: csrf, Data: SettingsData{
			Scopes: []string{"repo:read", "repo:write"}, SSOName: "Acme <SSO>", NoPassword: true}}},
		{"settings-error", "settings", Page{Title: "Account settings", User: alice, CSRF: csrf, Data: SettingsData{
			Scopes: []string{"repo:read", "repo:write"}, Error: "not an SSH public key", Title: "bad <key>", KeyText: "ssh-rsa nope"}}},
		{"edit-tree", "edit", Page{Title: "Edit · alice/demo", User: alice, CSRF: csrf, Data: ideData(repo, EditData{})}},
		{"edit-file", "edit", Page{Title: "Edit src/main.go · alice/demo", User: alice, CSRF: csrf, Data: ideData(repo, EditData{Path: "src/main.go",
			FileName: "src/main.go", Content: "\npackage main // <b>&amp;</b>\r\n", CRLF: true, DeleteMessage: "Delete src/main.go"})}},
		{"edit-new-error", "edit", Page{Title: "New file · alice/demo", User: alice, CSRF: csrf, Data: ideData(repo, EditData{New: true,
			FileName: "../x", Content: "kept <text>", Message: "Add x", Error: `invalid file name "../x": "." and ".." are not allowed`})}},
		{"edit-binary", "edit", Page{Title: "Edit logo.png · alice/demo", User: alice, CSRF: csrf, Data: ideData(repo, EditData{Path: "logo.png",
			Binary: true, Size: 2048, DeleteMessage: "Delete logo.png"})}},
		{"edit-mirror", "edit", Page{Title: "Edit · alice/demo", User: alice, CSRF: csrf, Data: ideData(repo, EditData{Mirror: "git@github.com:octo/demo.git"})}},
		{"repo-editable", "repo", Page{Title: "alice/demo", User: alice, CSRF: csrf, Data: RepoData{Repo: repo, HTTPURL: "https://git.example.com/git/alice/demo.git",
			Files: files, CommitsURL: "/alice/demo/commits/main", BranchesURL: "/alice/demo/branches", TagsURL: "/alice/demo/tags",
			EditURL: "/alice/demo/edit", NewFileURL: "/alice/demo/edit?new=1"}}},
		{"repo-settings", "reposettings", Page{Title: "Settings · alice/demo", User: alice, CSRF: csrf, Data: RepoSettingsData{Repo: repo,
			Branches: []string{"feature/<x>", "main"}, CanAdmin: true, CanWebhook: true, CanSync: true, Notice: "Settings saved.",
			DeployKeys: []DeployKeyRow{{ID: 4, Title: "ci <bot>", Fingerprint: "SHA256:abc", Access: "read-only", Added: "2030-01-02 03:04:05 UTC"},
				{ID: 5, Title: "deployer", Fingerprint: "SHA256:def", Access: "read-write", Added: "2030-01-02 03:04:05 UTC"}}}}},
		{"repo-settings-member", "reposettings", Page{Title: "Settings · team/site", User: alice, CSRF: csrf, Data: RepoSettingsData{
			Repo:     store.Repo{ID: 8, Owner: "team", OwnerKind: store.KindOrg, Name: "site", Visibility: store.Public, DefaultBranch: "main"},
			Branches: []string{"main"}, CanSync: true, Error: "not an SSH public key", KeyTitle: "bad <key>", KeyText: "ssh-rsa nope", KeyWrite: true}}},
		{"repo-settings-confirm", "reposettings", Page{Title: "Settings · alice/demo", User: alice, CSRF: csrf, Data: RepoSettingsData{Repo: repo,
			Branches: []string{"main"}, CanAdmin: true, CanWebhook: true, CanSync: true, Confirm: "alice/dem",
			Error: "To delete this repository, type its full name, alice/demo, exactly. Nothing was deleted."}}},
		{"repo-settings-mirror", "reposettings", Page{Title: "Settings · alice/demo", User: alice, CSRF: csrf, Data: RepoSettingsData{Repo: repo,
			Branches: []string{"main"}, CanAdmin: true, CanWebhook: true, CanSync: true, View: "details",
			WebhookURL: "https://git.example.com/hooks/scm/h00k", WebhookSecret: "s3cret<>",
			Mirror: &MirrorView{URL: "ssh://git@scm.example.com:22/team/app.git", DeployKey: "ssh-ed25519 AAAAC3Nz mirror", HostKeyFingerprints: []string{"SHA256:hk1", "SHA256:hk2"},
				Interval: "10m", Status: "error", LastSync: "2030-01-02 03:04:05 UTC", LastErrorCode: "auth_failed", LastErrorMessage: "the upstream refused the deploy key <x>",
				Hosted: true, Remote: "team/app", RemoteURL: "https://scm.example.com/team/app", WebhookURL: "https://git.example.com/hooks/scm/h00k"}}}},
		{"repo-settings-syncing", "reposettings", Page{Title: "Settings · alice/demo", User: alice, CSRF: csrf, Refresh: 5, Data: RepoSettingsData{Repo: repo,
			Branches: []string{"main"}, CanSync: true, Notice: "Fetching from the upstream now. Reload this page to see the result.",
			Mirror: &MirrorView{URL: "git@scm.example.com:team/app.git", DeployKey: "ssh-ed25519 AAAAC3Nz mirror", Interval: "10m", Status: "syncing",
				WebhookURL: "https://git.example.com/hooks/scm/h00k"}}}},
		{"repo-settings-key", "reposettings", Page{Title: "Settings · alice/demo", User: alice, CSRF: csrf, Data: RepoSettingsData{Repo: repo,
			Branches: []string{"main"}, CanSync: true, View: "key", Error: "this server cannot act on Gitea for you", Steps: []string{"connect again", "or add the key <k>"},
			Mirror: &MirrorView{URL: "git@scm.example.com:team/app.git", DeployKey: "ssh-ed25519 AAAAC3Nz mirror", Interval: "10m", Status: "ok",
				WebhookURL: "https://git.example.com/hooks/scm/h00k"}}}},
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

// ideData fills an EditData as showEdit does, with a fixed tree.
func ideData(repo store.Repo, d EditData) EditData {
	d.Repo = repo
	if d.Head == "" {
		d.Head = strings.Repeat("ab", 20)
	}
	d.Tree = ideTree(repo, []string{"README.md", "src/main.go", "src/util/a b.go", "logo.png", "docs/x.md"}, d.Path)
	d.Action = editURL(repo, "")
	d.NewURL = d.Action + "?new=1"
	d.BuildsURL = "/alice/demo/builds"
	if d.Path != "" {
		d.BlobURL = RepoURL(repo, "blob", repo.DefaultBranch, d.Path)
	}
	return d
}
