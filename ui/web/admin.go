package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"gitserver/gitserver/access"
	"gitserver/gitserver/httperr"
	"gitserver/gitserver/service"
	"gitserver/store"
)

// The admin panel: GET /admin (admins only; anyone else gets the same 404
// as a missing page), its sections chosen by ?tab=users|orgs|scm|status,
// and its forms posted under /-/admin/... ("-" is a reserved first
// segment: no account can be named so, so these paths are never a
// repository's; /admin/NAME stays the admin user's repository NAME).

func init() {
	templateBuilders["admin"] = func() *template.Template {
		return template.Must(template.New("admin").Funcs(adminFuncs).ParseFS(templateFS, "templates/layout.html", "templates/admin.html"))
	}
}

// userActionForm is one action button of the users list.
type userActionForm struct {
	CSRF          string
	User          store.Account
	Action, Label string
}

var adminFuncs = template.FuncMap{
	"userAction": func(p Page, u store.Account, action, label string) userActionForm {
		return userActionForm{CSRF: p.CSRF, User: u, Action: action, Label: label}
	},
	"ternary": func(c bool, a, b string) string {
		if c {
			return a
		}
		return b
	},
	"join": strings.Join,
}

// SystemStatus is the admin panel's system status. cmd fills what only it
// knows (versions, the data directory's disk); the panel adds the queue
// and the database.
type SystemStatus struct {
	Version    string
	GitVersion string
	// DiskFree and DiskTotal are of the file system holding the data
	// directory, in bytes; DiskError says why they are unknown.
	DiskFree, DiskTotal uint64
	DiskError           string
	// Queued and Running are builds, every repository.
	Queued, Running int
	DatabaseOK      bool
	DatabaseError   string
}

// DiskFreeText is DiskFree for people (e.g. "12.3 GiB free of 50.0 GiB").
func (s SystemStatus) DiskFreeText() string {
	if s.DiskError != "" {
		return "unknown: " + s.DiskError
	}
	return humanBytes(s.DiskFree) + " free of " + humanBytes(s.DiskTotal)
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// AdminTab is one section's link.
type AdminTab struct {
	Name, Label, URL string
	Current          bool
}

// AdminData is the admin panel's.
type AdminData struct {
	Tab           string
	Tabs          []AdminTab
	Error, Notice string
	// NewPassword is the created user's password, shown once (in the
	// POST's answer, never stored for a later GET).
	NewPassword, NewPasswordUser string

	// Users.
	Users    []store.Account
	Self     string // the signed-in admin, marked "you" in the list
	UserName string // re-fills the create form
	MakeAdm  bool

	// Organisations: the list, or one organisation's members.
	Orgs       []store.Account
	Org        *store.Account
	Members    []store.Member
	OrgName    string // the organisation shown (?org=)
	NewOrg     string // re-fills the create form
	MemberName string // re-fills the add-member form
	Roles      []string

	// SCM configurations.
	SCMConfigs []store.SCMConfig
	// AddKinds are the "Add ..." links; Add is the form shown (nil: none).
	AddKinds []SCMKind
	Add      *SCMForm
	// ForceRemove offers removing configuration ForceRemove anyway (its
	// repositories become plain mirrors) after a refusal naming them.
	ForceRemove int64

	Status *SystemStatus
}

// SCMKind is a kind of SCM configuration the panel adds, with the form's
// defaults.
type SCMKind struct {
	Key   string // the add= value
	Label string
	Kind  string // the configuration's kind
	// WebsiteURL, APIURL, SSHURL prefill the form (a public service);
	// Example* are placeholders (a self-hosted one).
	WebsiteURL, APIURL, SSHURL                   string
	ExampleWebsite, ExampleAPI, ExampleSSH, Help string
	OAuth                                        bool // client id and secret; else project key and access token
	Modes                                        bool // webhook or api (Bitbucket Server)
}

// scmKinds are the kinds the panel offers (contract §10).
var scmKinds = []SCMKind{
	{Key: "github", Label: "GitHub", Kind: "github", WebsiteURL: "https://github.com", APIURL: "https://api.github.com", SSHURL: "ssh://git@github.com:22", OAuth: true,
		Help: "Register an OAuth App under Settings → Developer settings → OAuth Apps, with the callback URL shown below."},
	{Key: "github-enterprise", Label: "GitHub Enterprise Server", Kind: "github", ExampleWebsite: "https://github.example.com", ExampleAPI: "https://github.example.com/api/v3",
		ExampleSSH: "ssh://git@github.example.com:22", OAuth: true, Help: "Register an OAuth App on your GitHub Enterprise Server, with the callback URL shown below."},
	{Key: "gitlab", Label: "GitLab", Kind: "gitlab", WebsiteURL: "https://gitlab.com", APIURL: "https://gitlab.com/api/v4", SSHURL: "ssh://git@gitlab.com:22", OAuth: true,
		ExampleWebsite: "https://gitlab.example.com", Help: "Add an application (scopes api, read_user) under User settings → Applications, with the callback URL shown below; for a self-managed GitLab change the URLs."},
	{Key: "bitbucket-cloud", Label: "Bitbucket Cloud", Kind: "bitbucket-cloud", WebsiteURL: "https://bitbucket.org", APIURL: "https://api.bitbucket.org/2.0", SSHURL: "ssh://git@bitbucket.org:22", OAuth: true,
		Help: "Add an OAuth consumer under Workspace settings → OAuth consumers, with the callback URL shown below."},
	{Key: "bitbucket-server", Label: "Bitbucket Server", Kind: "bitbucket-server", ExampleWebsite: "https://bitbucket.example.com", ExampleAPI: "https://bitbucket.example.com/rest/api/1.0",
		ExampleSSH: "ssh://git@bitbucket.example.com:7999", Modes: true,
		Help: "Repositories are created in one project with a project access token (project admin). Users connect with their own personal access tokens."},
	{Key: "gitea", Label: "Gitea", Kind: "gitea", ExampleWebsite: "https://gitea.example.com", ExampleAPI: "https://gitea.example.com/api/v1", ExampleSSH: "ssh://git@gitea.example.com:22", OAuth: true,
		Help: "Add an OAuth2 application (confidential) under Settings → Applications, with the callback URL shown below."},
}

func scmKindByKey(key string) (SCMKind, bool) {
	for _, k := range scmKinds {
		if k.Key == key {
			return k, true
		}
	}
	return SCMKind{}, false
}

// SCMForm is the add-configuration form: its kind and the values typed
// (secrets are never sent back to the browser).
type SCMForm struct {
	SCMKind
	Name, Website, API, SSH, ClientID, ProjectKey, Mode, AllowedOwners string
	// CallbackURL is the OAuth callback to register with the provider,
	// once the configuration has an id: shown with the placeholder
	// {id} before.
	CallbackURL string
}

func (pg *Pages) newSCMForm(k SCMKind) *SCMForm {
	return &SCMForm{SCMKind: k, Website: k.WebsiteURL, API: k.APIURL, SSH: k.SSHURL, Mode: "webhook",
		CallbackURL: strings.TrimRight(pg.BaseURL, "/") + "/scm/{id}/callback"}
}

var adminTabs = []AdminTab{{Name: "users", Label: "Users"}, {Name: "orgs", Label: "Organisations"}, {Name: "scm", Label: "SCM configurations"}, {Name: "status", Label: "System status"}}

// registerAdmin adds the admin panel: exact routes, registered before
// /{owner}/{name}.
func (pg *Pages) registerAdmin(r *mux.Router) {
	h := func(f http.HandlerFunc) http.Handler { return pg.headers(f) }
	r.Handle("/admin", h(pg.admin)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/-/admin/users", h(pg.adminCreateUser)).Methods(http.MethodPost)
	r.Handle("/-/admin/users/{name}/{action:disable|enable|make-admin|remove-admin}", h(pg.adminUserAction)).Methods(http.MethodPost)
	r.Handle("/-/admin/orgs", h(pg.adminCreateOrg)).Methods(http.MethodPost)
	r.Handle("/-/admin/orgs/{org}/members", h(pg.adminSetMember)).Methods(http.MethodPost)
	r.Handle("/-/admin/orgs/{org}/members/{user}/remove", h(pg.adminRemoveMember)).Methods(http.MethodPost)
	r.Handle("/-/admin/scm", h(pg.adminAddSCM)).Methods(http.MethodPost)
	r.Handle("/-/admin/scm/{id:[0-9]{1,18}}/test", h(pg.adminTestSCM)).Methods(http.MethodPost)
	r.Handle("/-/admin/scm/{id:[0-9]{1,18}}/remove", h(pg.adminRemoveSCM)).Methods(http.MethodPost)
}

// scmService is the service with what the SCM operations need (the admin
// panel, the account page's connections).
func (pg *Pages) scmService() *service.Service {
	svc := pg.service()
	svc.SCM, svc.HostKeys, svc.HTTPClient, svc.BaseURL = pg.SCM, pg.SCMHostKeys, pg.SCMHTTPClient, pg.BaseURL
	return svc
}

// isAdmin: the session's user acts as the site admin (the store's current
// flag: the session lookup reads the account on every request).
func isAdmin(s session) bool { return access.IsAdmin(s.principal(true)) }

// adminGet returns the signed-in admin's session, or answers 404 itself.
func (pg *Pages) adminGet(w http.ResponseWriter, r *http.Request) (session, bool) {
	s, ok, err := pg.current(r)
	if err != nil {
		pg.fail(w, r, err)
		return s, false
	}
	if !ok || !isAdmin(s) {
		pg.errorPage(w, r, s, ok, http.StatusNotFound, "Not found", "There is no such page.")
		return s, false
	}
	return s, true
}

// adminPost checks an admin form: an admin's session (else 404, as the
// page), then the CSRF token and origin (else 403).
func (pg *Pages) adminPost(w http.ResponseWriter, r *http.Request) (session, bool) {
	s, ok := pg.adminGet(w, r)
	if !ok {
		return s, false
	}
	return s, pg.checkForm(w, r, s.csrf, s, true)
}

func (pg *Pages) admin(w http.ResponseWriter, r *http.Request) {
	s, ok := pg.adminGet(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	d := AdminData{Tab: q.Get("tab")}
	switch d.Tab {
	case "orgs":
		if name := q.Get("org"); name != "" {
			d.OrgName = name
		}
	case "scm":
		if k, ok := scmKindByKey(q.Get("add")); ok {
			d.Add = pg.newSCMForm(k)
		}
	}
	pg.showAdmin(w, r, s, http.StatusOK, d)
}

// showAdmin fills the current section's lists and renders the panel.
func (pg *Pages) showAdmin(w http.ResponseWriter, r *http.Request, s session, status int, d AdminData) {
	ctx := r.Context()
	svc, actor := pg.scmService(), actorOf(s)
	var err error
	switch d.Tab {
	case "orgs":
		if d.OrgName != "" {
			org, ms, merr := svc.Members(ctx, actor, d.OrgName)
			if merr != nil {
				if errors.Is(merr, store.ErrNotFound) {
					pg.errorPage(w, r, s, true, http.StatusNotFound, "Not found", "There is no organisation "+strconv.Quote(d.OrgName)+".")
					return
				}
				err = merr
				break
			}
			d.Org, d.Members, d.Roles = &org, ms, []string{string(store.RoleMember), string(store.RoleOwner)}
		} else {
			d.Orgs, err = svc.Orgs(ctx, actor)
		}
	case "scm":
		d.SCMConfigs, err = svc.SCMConfigs(ctx, actor)
		d.AddKinds = scmKinds
	case "status":
		st := pg.systemStatus(ctx)
		d.Status = &st
	default:
		d.Tab = "users"
		d.Users, err = svc.Users(ctx, actor)
		d.Self = s.user.Name
	}
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	for _, t := range adminTabs {
		t.URL = "/admin?tab=" + t.Name
		t.Current = t.Name == d.Tab
		d.Tabs = append(d.Tabs, t)
	}
	if d.NewPassword != "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	u := s.user
	pg.show(w, r, status, "admin", Page{Title: "Admin", User: &u, CSRF: s.csrf, Data: d})
}

// systemStatus is cmd's part of the status with the queue and the
// database's.
func (pg *Pages) systemStatus(ctx context.Context) SystemStatus {
	var st SystemStatus
	if pg.Status != nil {
		st = pg.Status(ctx)
	}
	if err := pg.Store.Ping(ctx); err != nil {
		st.DatabaseError = "the database does not answer"
		pg.Log.Error("admin status: database ping", "err", err)
		return st
	}
	st.DatabaseOK = true
	var err error
	if st.Queued, err = pg.Store.CountBuilds(ctx, store.BuildQueued); err == nil {
		st.Running, err = pg.Store.CountBuilds(ctx, store.BuildRunning)
	}
	if err != nil {
		st.DatabaseOK, st.DatabaseError = false, "counting the builds failed"
		pg.Log.Error("admin status: count builds", "err", err)
	}
	return st
}

// adminRefusal answers a refused admin action: the section again with the
// operation's message (its status as the API's), or 500 for anything
// unexpected.
func (pg *Pages) adminRefusal(w http.ResponseWriter, r *http.Request, s session, err error, d AdminData) {
	status, msg := refusal(err)
	if status == 0 {
		pg.fail(w, r, err)
		return
	}
	d.Error = msg
	pg.showAdmin(w, r, s, status, d)
}

// refusal is the status and message of an operation's refusal as the API
// words it; status 0 for an unexpected error.
func refusal(err error) (int, string) {
	var pe *service.ProviderError
	switch {
	case errors.Is(err, service.ErrNoSCM):
		return http.StatusServiceUnavailable, service.ErrNoSCM.Error()
	case errors.As(err, &pe) && pe.Unavailable():
		return http.StatusBadGateway, pe.Error()
	case errors.As(err, &pe):
		return http.StatusBadRequest, pe.Error()
	}
	var se *service.Error
	if errors.As(err, &se) {
		return httperr.From(err).Status, se.Msg
	}
	if he := httperr.From(err); he.Status < http.StatusInternalServerError {
		return he.Status, he.Message
	}
	return 0, ""
}

func (pg *Pages) adminCreateUser(w http.ResponseWriter, r *http.Request) {
	s, ok := pg.adminPost(w, r)
	if !ok {
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("username"))
	pw := r.PostForm.Get("password")
	admin := r.PostForm.Get("admin") != ""
	d := AdminData{Tab: "users", UserName: name, MakeAdm: admin}
	generated := pw == ""
	if generated {
		pw = store.RandomHex(12)
	}
	u, err := pg.scmService().CreateUser(r.Context(), actorOf(s), name, pw, admin)
	if err != nil {
		pg.adminRefusal(w, r, s, err, d)
		return
	}
	d = AdminData{Tab: "users", Notice: "User " + u.Name + " created."}
	if generated {
		d.NewPassword, d.NewPasswordUser = pw, u.Name
	}
	pg.showAdmin(w, r, s, http.StatusOK, d)
}

func (pg *Pages) adminUserAction(w http.ResponseWriter, r *http.Request) {
	s, ok := pg.adminPost(w, r)
	if !ok {
		return
	}
	v := mux.Vars(r)
	name, _ := url.PathUnescape(v["name"])
	svc, actor := pg.scmService(), actorOf(s)
	var err error
	var notice string
	switch v["action"] {
	case "disable":
		_, err = svc.SetDisabled(r.Context(), actor, name, true)
		notice = name + " is disabled: their password, tokens, SSH keys and sessions stop working at once."
	case "enable":
		_, err = svc.SetDisabled(r.Context(), actor, name, false)
		notice = name + " is enabled again."
	case "make-admin":
		_, err = svc.SetAdmin(r.Context(), actor, name, true)
		notice = name + " is now an admin."
	case "remove-admin":
		_, err = svc.SetAdmin(r.Context(), actor, name, false)
		notice = name + " is no longer an admin."
	}
	if err != nil {
		pg.adminRefusal(w, r, s, err, AdminData{Tab: "users"})
		return
	}
	if strings.EqualFold(name, s.user.Name) && (v["action"] == "remove-admin" || v["action"] == "disable") {
		// No longer an admin (or signed out): the panel is gone for them.
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	pg.showAdmin(w, r, s, http.StatusOK, AdminData{Tab: "users", Notice: notice})
}

func (pg *Pages) adminCreateOrg(w http.ResponseWriter, r *http.Request) {
	s, ok := pg.adminPost(w, r)
	if !ok {
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	org, err := pg.scmService().CreateOrg(r.Context(), actorOf(s), name)
	if err != nil {
		pg.adminRefusal(w, r, s, err, AdminData{Tab: "orgs", NewOrg: name})
		return
	}
	http.Redirect(w, r, "/admin?tab=orgs&org="+url.QueryEscape(org.Name), http.StatusSeeOther)
}

func (pg *Pages) adminSetMember(w http.ResponseWriter, r *http.Request) {
	s, ok := pg.adminPost(w, r)
	if !ok {
		return
	}
	orgName, _ := url.PathUnescape(mux.Vars(r)["org"])
	user := strings.TrimSpace(r.PostForm.Get("username"))
	role := r.PostForm.Get("role")
	org, u, err := pg.scmService().SetMember(r.Context(), actorOf(s), orgName, user, role)
	if err != nil {
		if org.Name == "" {
			pg.adminRefusal(w, r, s, err, AdminData{Tab: "orgs"})
			return
		}
		pg.adminRefusal(w, r, s, memberError(err, user), AdminData{Tab: "orgs", OrgName: org.Name, MemberName: user})
		return
	}
	pg.showAdmin(w, r, s, http.StatusOK, AdminData{Tab: "orgs", OrgName: org.Name, Notice: u.Name + " is " + articled(role) + " of " + org.Name + "."})
}

// memberError words "no such user" for the member forms (the store's
// ErrNotFound names an account, which reads as the organisation).
func memberError(err error, user string) error {
	if errors.Is(err, store.ErrNotFound) {
		var se *service.Error
		if !errors.As(err, &se) {
			return &service.Error{Kind: store.ErrInvalid, Msg: "there is no user " + strconv.Quote(store.Truncate(user, 100))}
		}
	}
	return err
}

func articled(role string) string {
	if role == string(store.RoleOwner) {
		return "an owner"
	}
	return "a member"
}

func (pg *Pages) adminRemoveMember(w http.ResponseWriter, r *http.Request) {
	s, ok := pg.adminPost(w, r)
	if !ok {
		return
	}
	v := mux.Vars(r)
	orgName, _ := url.PathUnescape(v["org"])
	user, _ := url.PathUnescape(v["user"])
	org, u, err := pg.scmService().RemoveMember(r.Context(), actorOf(s), orgName, user)
	if err != nil {
		if org.Name == "" {
			pg.adminRefusal(w, r, s, err, AdminData{Tab: "orgs"})
			return
		}
		pg.adminRefusal(w, r, s, memberError(err, user), AdminData{Tab: "orgs", OrgName: org.Name})
		return
	}
	pg.showAdmin(w, r, s, http.StatusOK, AdminData{Tab: "orgs", OrgName: org.Name, Notice: u.Name + " is no longer a member of " + org.Name + "."})
}

func formPtr(r *http.Request, name string) *string {
	v := r.PostForm.Get(name)
	return &v
}

func (pg *Pages) adminAddSCM(w http.ResponseWriter, r *http.Request) {
	s, ok := pg.adminPost(w, r)
	if !ok {
		return
	}
	k, known := scmKindByKey(r.PostForm.Get("form"))
	if !known {
		pg.adminRefusal(w, r, s, &service.Error{Kind: store.ErrInvalid, Msg: "choose the kind of configuration to add"}, AdminData{Tab: "scm"})
		return
	}
	f := pg.newSCMForm(k)
	f.Name, f.Website, f.API, f.SSH = r.PostForm.Get("name"), r.PostForm.Get("website_url"), r.PostForm.Get("api_url"), r.PostForm.Get("ssh_url")
	f.ClientID, f.ProjectKey, f.AllowedOwners = r.PostForm.Get("client_id"), r.PostForm.Get("project_key"), r.PostForm.Get("allowed_owners")
	in := service.SCMConfigInput{Name: &f.Name, Kind: &k.Kind, WebsiteURL: &f.Website, APIURL: &f.API, SSHURL: &f.SSH}
	if k.OAuth {
		in.ClientID, in.ClientSecret = &f.ClientID, formPtr(r, "client_secret")
	} else {
		in.ProjectKey, in.AccessToken = &f.ProjectKey, formPtr(r, "access_token")
	}
	if k.Modes {
		f.Mode = r.PostForm.Get("mode")
		in.Mode = &f.Mode
	}
	owners := strings.FieldsFunc(f.AllowedOwners, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	in.AllowedOwners = &owners
	c, err := pg.scmService().CreateSCMConfig(r.Context(), actorOf(s), in)
	if err != nil {
		pg.adminRefusal(w, r, s, err, AdminData{Tab: "scm", Add: f})
		return
	}
	notice := fmt.Sprintf("SCM configuration %s added (id %d).", c.Name, c.ID)
	if k.OAuth {
		notice += " Its OAuth callback URL is " + strings.TrimRight(pg.BaseURL, "/") + service.CallbackPath(c.ID) + "."
	}
	pg.showAdmin(w, r, s, http.StatusOK, AdminData{Tab: "scm", Notice: notice})
}

func (pg *Pages) adminTestSCM(w http.ResponseWriter, r *http.Request) {
	s, ok := pg.adminPost(w, r)
	if !ok {
		return
	}
	res, err := pg.scmService().TestSCMConfig(r.Context(), actorOf(s), idOf(r))
	if err != nil {
		if status, msg := refusal(err); status != 0 && res.Config.Name != "" {
			pg.showAdmin(w, r, s, status, AdminData{Tab: "scm", Error: "Test of " + res.Config.Name + " failed: " + msg})
			return
		}
		pg.adminRefusal(w, r, s, err, AdminData{Tab: "scm"})
		return
	}
	d := AdminData{Tab: "scm"}
	msg := "Test of " + res.Config.Name + ": the provider answered and accepted the configuration; " + res.HostKeys + "."
	if res.HostKeysMatch {
		d.Notice = msg
	} else {
		d.Error = msg
	}
	pg.showAdmin(w, r, s, http.StatusOK, d)
}

func (pg *Pages) adminRemoveSCM(w http.ResponseWriter, r *http.Request) {
	s, ok := pg.adminPost(w, r)
	if !ok {
		return
	}
	force := r.PostForm.Get("force") == "true"
	id := idOf(r)
	unlinked, err := pg.scmService().DeleteSCMConfig(r.Context(), actorOf(s), id, force)
	if err != nil {
		d := AdminData{Tab: "scm"}
		if errors.Is(err, store.ErrConflict) {
			d.ForceRemove = id
		}
		pg.adminRefusal(w, r, s, err, d)
		return
	}
	notice := "SCM configuration removed."
	if len(unlinked) > 0 {
		var names []string
		for _, rp := range unlinked {
			names = append(names, rp.FullName())
		}
		notice += " These repositories are now plain mirrors: " + strings.Join(names, ", ") + "."
	}
	pg.showAdmin(w, r, s, http.StatusOK, AdminData{Tab: "scm", Notice: notice})
}

// SessionPrincipal is the principal of the request's signed-in web
// session (ok false without one): the OAuth callback of a connection
// started on the account page accepts it (cmd gives it to ui.API).
func (pg *Pages) SessionPrincipal(r *http.Request) (store.Principal, bool, error) {
	s, ok, err := pg.current(r)
	if err != nil || !ok {
		return store.Principal{}, false, err
	}
	return s.principal(true), true, nil
}
