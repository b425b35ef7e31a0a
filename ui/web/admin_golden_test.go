package web

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gitserver/store"
)

// TestAdminTemplatesGolden renders the admin panel's sections from fixed
// data and compares them with testdata/admin-<case>.html (-update rewrites
// them).
func TestAdminTemplatesGolden(t *testing.T) {
	root := &store.Account{ID: 1, Name: "root", Kind: store.KindUser, IsAdmin: true}
	created := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	users := []store.Account{*root, {ID: 2, Name: "bob", Kind: store.KindUser, CreatedAt: created},
		{ID: 3, Name: "eve<x>", Kind: store.KindUser, Disabled: true, CreatedAt: created}, {ID: 4, Name: "ops", Kind: store.KindUser, IsAdmin: true, CreatedAt: created}}
	users[0].CreatedAt = created
	team := store.Account{ID: 9, Name: "team", Kind: store.KindOrg, CreatedAt: created}
	pg := &Pages{BaseURL: "https://git.example.com/"}
	gitea, _ := scmKindByKey("gitea")
	bbs, _ := scmKindByKey("bitbucket-server")
	bbsForm := pg.newSCMForm(bbs)
	bbsForm.Name, bbsForm.Website, bbsForm.ProjectKey, bbsForm.Mode = "corp <bbs>", "https://bb.example.com", "PRJ", "api"
	configs := []store.SCMConfig{
		{ID: 1, Name: "gitea", Kind: "gitea", Mode: "webhook", WebsiteURL: "https://gitea.example.com", APIURL: "https://gitea.example.com/api/v1",
			SSHURL: "ssh://git@gitea.example.com:22", ClientID: "cid", ClientSecret: "never-shown", HostKeyFingerprints: []string{"SHA256:abc"}, AllowedOwners: []string{"team", "alice"}},
		{ID: 2, Name: "bbs", Kind: "bitbucket-server", Mode: "api", WebsiteURL: "https://bb.example.com", APIURL: "https://bb.example.com/rest/api/1.0",
			SSHURL: "ssh://git@bb.example.com:7999", ProjectKey: "PRJ", AccessToken: "never-shown-either"}}
	tabs := func(cur string) []AdminTab {
		var out []AdminTab
		for _, t := range adminTabs {
			t.URL, t.Current = "/admin?tab="+t.Name, t.Name == cur
			out = append(out, t)
		}
		return out
	}
	page := func(d AdminData) Page {
		d.Tabs = tabs(d.Tab)
		return Page{Title: "Admin", User: root, CSRF: "c5rf", Data: d}
	}
	alice := &store.Account{ID: 5, Name: "alice", Kind: store.KindUser}
	authURL := "https://gitea.example.com/login/oauth/authorize?client_id=cid&redirect_uri=https%3A%2F%2Fgit.example.com%2Fscm%2F1%2Fcallback&response_type=code&state=st&x=<y>"
	for _, tc := range []struct {
		name string
		p    Page
		tmpl string
	}{
		{"settings-scm", Page{Title: "Account settings", User: alice, CSRF: "c5rf", Data: SettingsData{Scopes: []string{"repo:read", "repo:write"}, SCM: []SCMConnectionRow{
			{ID: 1, Name: "gitea", Kind: "gitea", Connected: true, Login: "alice<gt>", Since: "2030-01-02"},
			{ID: 2, Name: "github", Kind: "github"},
			{ID: 3, Name: "corp", Kind: "bitbucket-server", Token: true}}}}, "settings"},
		{"scm-connect", Page{Title: "Connect gitea", User: alice, CSRF: "c5rf", Data: ConnectData{Name: "gitea", URL: authURL, Refresh: connectRefresh(authURL)}}, "scm-connect"},
		{"admin-users", page(AdminData{Tab: "users", Users: users, Self: "root"}), ""},
		{"admin-users-created", page(AdminData{Tab: "users", Users: users, Self: "root", Notice: "User bob created.", NewPassword: "0123456789abcdef01234567", NewPasswordUser: "bob"}), ""},
		{"admin-users-error", page(AdminData{Tab: "users", Users: users, Self: "root", Error: `the name "-x" is not valid`, UserName: "-x", MakeAdm: true}), ""},
		{"admin-orgs", page(AdminData{Tab: "orgs", Orgs: []store.Account{team}}), ""},
		{"admin-orgs-none", page(AdminData{Tab: "orgs"}), ""},
		{"admin-org-members", page(AdminData{Tab: "orgs", Org: &team, Roles: []string{"member", "owner"}, Members: []store.Member{
			{User: users[1], Role: store.RoleMember}, {User: *root, Role: store.RoleOwner}}, Notice: "bob is a member of team."}), ""},
		{"admin-scm", page(AdminData{Tab: "scm", SCMConfigs: configs, AddKinds: scmKinds}), ""},
		{"admin-scm-none", page(AdminData{Tab: "scm", AddKinds: scmKinds}), ""},
		{"admin-scm-force", page(AdminData{Tab: "scm", SCMConfigs: configs, AddKinds: scmKinds, ForceRemove: 1,
			Error: "gitea is used by alice/app; remove anyway to make them plain mirrors"}), ""},
		{"admin-scm-add-gitea", page(AdminData{Tab: "scm", SCMConfigs: configs, AddKinds: scmKinds, Add: pg.newSCMForm(gitea)}), ""},
		{"admin-scm-add-bitbucket-server", page(AdminData{Tab: "scm", AddKinds: scmKinds, Add: bbsForm, Error: "the provider's answer to checking the configuration: 401"}), ""},
		{"admin-status", page(AdminData{Tab: "status", Status: &SystemStatus{Version: "1.2.3", GitVersion: "git version 2.39.5", DiskFree: 12 << 30, DiskTotal: 50 << 30,
			Queued: 3, Running: 1, DatabaseOK: true}}), ""},
		{"admin-status-problems", page(AdminData{Tab: "status", Status: &SystemStatus{DiskError: "statfs failed", DatabaseError: "the database does not answer"}}), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			if tc.tmpl == "" {
				tc.tmpl = "admin"
			}
			if err := render(rec, 200, tc.tmpl, tc.p); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.name+".html")
			if *update {
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
