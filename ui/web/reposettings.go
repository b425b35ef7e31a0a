package web

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"gitserver/gitserver/access"
	"gitserver/gitserver/httperr"
	"gitserver/gitserver/service"
	"gitserver/store"
	"gitserver/ui/wire"
)

// The repository settings page (/{owner}/{name}/settings) and the
// create-repository modal (/-/new). Every change goes through
// gitserver/service, as the API's does, so the page refuses what the API
// refuses, with the API's message.

var (
	settingsPath     = lazyRegexp(`^/(` + namePattern + `)/(` + namePattern + `)/settings$`)
	settingsPostPath = lazyRegexp(`^/(` + namePattern + `)/(` + namePattern + `)/settings/(general|deploy-keys|delete|mirror/sync|mirror/repair)$`)
	deleteKeyPath    = lazyRegexp(`^/(` + namePattern + `)/(` + namePattern + `)/settings/deploy-keys/([0-9]{1,18})/delete$`)
)

// RepoSettingsData is the repository settings page's.
type RepoSettingsData struct {
	Repo store.Repo
	// Branches are the repository's branches (the default branch's
	// choices; the current one first when it does not exist yet).
	Branches []string
	// CanAdmin: visibility, default branch and deletion (the owners).
	CanAdmin bool
	// CanWebhook: the mirror's webhook secret (the owners).
	CanWebhook bool
	// CanSync: "Fetch now" (writers).
	CanSync    bool
	DeployKeys []DeployKeyRow
	Mirror     *MirrorView
	// View is the open dialog: "key" (the deploy key) or "details" (the
	// webhook's URL and secret), "" for none.
	View          string
	WebhookURL    string
	WebhookSecret string
	Error         string
	// Steps are what to do by hand when Repair cannot (its 409).
	Steps  []string
	Notice string
	// KeyTitle, KeyText, KeyWrite and Confirm re-fill a form that failed.
	KeyTitle string
	KeyText  string
	KeyWrite bool
	Confirm  string
}

// DeployKeyRow is one deploy key as the page lists it.
type DeployKeyRow struct {
	ID          int64
	Title       string
	Fingerprint string
	Access      string // "read-only" or "read-write"
	Added       string
}

// MirrorView is what the settings page shows of a mirror (never its
// private key; the webhook secret only in View "details").
type MirrorView struct {
	URL                 string
	DeployKey           string
	HostKeyFingerprints []string
	Interval            string
	Status              string
	LastSync            string
	LastErrorCode       string
	LastErrorMessage    string
	LastRewrite         string
	// Hosted: created through an SCM configuration (Repair applies);
	// Remote is its repository there.
	Hosted     bool
	Remote     string
	RemoteURL  string
	WebhookURL string
}

// notices are the messages a redirect after a change names (?done=KEY):
// fixed texts, so nothing from the query string reaches the page.
var notices = map[string]string{
	"saved":       "Settings saved.",
	"key-added":   "Deploy key added.",
	"key-deleted": "Deploy key deleted.",
	"sync":        "Fetching from the upstream now. Reload this page to see the result.",
}

// registerRepoSettings adds the settings page, its forms, and the
// create-repository modal and its form.
func (pg *Pages) registerRepoSettings(r *mux.Router) {
	r.Handle("/-/new", pg.headers(http.HandlerFunc(pg.newRepoForm))).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/-/new", pg.headers(http.HandlerFunc(pg.createRepo))).Methods(http.MethodPost)
	r.Handle("/{owner}/{name}/settings", pg.headers(http.HandlerFunc(pg.repoSettings))).Methods(http.MethodGet, http.MethodHead).
		MatcherFunc(func(r *http.Request, _ *mux.RouteMatch) bool { return matches(settingsPath())(r) })
	r.Handle("/{owner}/{name}/settings/{action:.+}", pg.headers(http.HandlerFunc(pg.repoSettingsPost))).Methods(http.MethodPost).
		MatcherFunc(func(r *http.Request, _ *mux.RouteMatch) bool {
			return matches(settingsPostPath())(r) || matches(deleteKeyPath())(r)
		})
}

// settingsRequest resolves a settings request: a sign-in for an
// anonymous visitor, 404 for a repository the principal may not read (as
// the API), 403 for one who may read it but not change its settings (manage its
// deploy keys: its writers).
func (pg *Pages) settingsRequest(w http.ResponseWriter, r *http.Request, re *regexp.Regexp) (repoRequest, bool) {
	// Signed out: sign in first, whether or not the repository exists.
	if _, ok := pg.signedIn(w, r); !ok {
		return repoRequest{}, false
	}
	rr, ok := pg.resolve(w, r, re, access.OpRead)
	if !ok {
		return rr, false
	}
	if !rr.can(access.OpManageKeys) {
		pg.errorPage(w, r, rr.s, true, http.StatusForbidden, "Forbidden", "You may not change the settings of "+rr.repo.FullName()+".")
		return rr, false
	}
	return rr, true
}

func settingsURL(rp store.Repo) string { return "/" + rp.Owner + "/" + rp.Name + "/settings" }

func (pg *Pages) repoSettings(w http.ResponseWriter, r *http.Request) {
	rr, ok := pg.settingsRequest(w, r, settingsPath())
	if !ok {
		return
	}
	d := RepoSettingsData{Notice: notices[r.URL.Query().Get("done")]}
	switch v := r.URL.Query().Get("view"); v {
	case "key", "details":
		d.View = v
	}
	pg.showRepoSettings(w, r, rr, http.StatusOK, d)
}

// showRepoSettings renders the page with d, its lists filled here.
func (pg *Pages) showRepoSettings(w http.ResponseWriter, r *http.Request, rr repoRequest, status int, d RepoSettingsData) {
	ctx := r.Context()
	svc, act := pg.service(), service.As(rr.p, access.Web)
	d.Repo = rr.repo
	d.CanAdmin, d.CanWebhook, d.CanSync = rr.can(access.OpDeleteRepo), rr.can(access.OpMirrorWebhook), rr.can(access.OpWrite)
	refs, err := pg.Git.Refs(ctx, rr.repo)
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	hasDefault := false
	for _, b := range refs.Branches {
		d.Branches = append(d.Branches, b.Name)
		hasDefault = hasDefault || b.Name == rr.repo.DefaultBranch
	}
	if !hasDefault {
		d.Branches = append([]string{rr.repo.DefaultBranch}, d.Branches...)
	}
	keys, err := svc.DeployKeys(ctx, act, rr.repo)
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	for _, k := range keys {
		a := "read-only"
		if !k.ReadOnly {
			a = "read-write"
		}
		d.DeployKeys = append(d.DeployKeys, DeployKeyRow{ID: k.ID, Title: k.Title, Fingerprint: k.Fingerprint, Access: a, Added: when(k.CreatedAt)})
	}
	m, err := svc.Mirror(ctx, act, rr.repo)
	switch {
	case err == nil:
		d.Mirror = mirrorView(m, pg.BaseURL)
	case errors.Is(err, store.ErrNotFound):
		d.View = "" // not a mirror: nothing to view
	default:
		pg.fail(w, r, err)
		return
	}
	if d.View == "details" {
		if !d.CanWebhook {
			d.View = ""
		} else {
			hm, err := svc.MirrorWebhook(ctx, act, rr.repo)
			if err != nil {
				pg.fail(w, r, err)
				return
			}
			d.WebhookURL, d.WebhookSecret = wire.WebhookURL(pg.BaseURL, hm.HookID), hm.WebhookSecret
		}
	}
	page := rr.page("Settings · "+rr.repo.FullName(), d)
	if d.Mirror != nil && d.Mirror.Status == string(store.MirrorSyncing) && d.View == "" && status == http.StatusOK {
		page.Refresh = liveRefresh // the sync's outcome shows without script
	}
	pg.show(w, r, status, "reposettings", page)
}

func mirrorView(m store.Mirror, baseURL string) *MirrorView {
	v := &MirrorView{URL: m.URL, DeployKey: m.PublicKey, HostKeyFingerprints: m.HostKeyFingerprints, Interval: store.FormatInterval(m.Interval),
		Status: string(m.Status), LastSync: when(m.LastSyncAt), LastErrorCode: m.LastErrorCode, LastErrorMessage: m.LastErrorMessage,
		LastRewrite: m.LastRewrite, Hosted: m.SCMConfigID != 0 && m.Remote.ID != "", Remote: m.Remote.FullName, RemoteURL: safeURL(m.Remote.HTMLURL),
		WebhookURL: wire.WebhookURL(baseURL, m.HookID)}
	return v
}

// failure classifies an operation's error for a page: its status and the
// API's message, or ok false for an unexpected error (answered 500 by the
// caller).
func failure(err error) (status int, msg string, ok bool) {
	var pe *service.ProviderError
	var se *service.StepError
	var re *service.RepairError
	switch {
	case errors.As(err, &re):
		return http.StatusConflict, re.Msg, true
	case errors.As(err, &se):
		return http.StatusBadGateway, se.Error(), true
	case errors.Is(err, service.ErrNoSCM):
		return http.StatusServiceUnavailable, service.ErrNoSCM.Error(), true
	case errors.As(err, &pe) && pe.Unavailable():
		return http.StatusBadGateway, pe.Error(), true
	case errors.As(err, &pe):
		return http.StatusBadRequest, pe.Error(), true
	}
	if he := httperr.From(err); he.Status < http.StatusInternalServerError {
		return he.Status, he.Message, true
	}
	return 0, "", false
}

func (pg *Pages) repoSettingsPost(w http.ResponseWriter, r *http.Request) {
	re, action := settingsPostPath(), ""
	if m := settingsPostPath().FindStringSubmatch(r.URL.EscapedPath()); m != nil {
		action = m[3]
	} else {
		re, action = deleteKeyPath(), "delete-key"
	}
	rr, ok := pg.settingsRequest(w, r, re)
	if !ok || !pg.checkForm(w, r, rr.s.csrf, rr.s, true) {
		return
	}
	ctx, svc, act := r.Context(), pg.service(), service.As(rr.p, access.Web)
	form := r.PostForm
	back := func(done string) { http.Redirect(w, r, settingsURL(rr.repo)+"?done="+done, http.StatusSeeOther) }
	refuse := func(err error, d RepoSettingsData) {
		status, msg, ok := failure(err)
		if !ok {
			pg.fail(w, r, err)
			return
		}
		if status == http.StatusNotFound && action == "delete-key" {
			pg.errorPage(w, r, rr.s, true, http.StatusNotFound, "Not found", "There is no such deploy key on "+rr.repo.FullName()+".")
			return
		}
		d.Error = msg
		pg.showRepoSettings(w, r, rr, status, d)
	}
	switch action {
	case "general":
		var in service.RepoUpdate
		if v, ok := form["visibility"]; ok && len(v) == 1 {
			in.Visibility = &v[0]
		}
		if b, ok := form["default_branch"]; ok && len(b) == 1 {
			in.DefaultBranch = &b[0]
		}
		if _, err := svc.UpdateRepo(ctx, act, rr.repo, in); err != nil {
			refuse(err, RepoSettingsData{})
			return
		}
		back("saved")
	case "deploy-keys":
		title, text := strings.TrimSpace(form.Get("title")), strings.TrimSpace(form.Get("key"))
		write := form.Get("access") == "read-write"
		if _, err := svc.AddDeployKey(ctx, act, rr.repo, title, text, !write); err != nil {
			refuse(err, RepoSettingsData{KeyTitle: title, KeyText: text, KeyWrite: write})
			return
		}
		back("key-added")
	case "delete-key":
		id, _ := strconv.ParseInt(deleteKeyPath().FindStringSubmatch(r.URL.EscapedPath())[3], 10, 64)
		if err := svc.DeleteDeployKey(ctx, act, rr.repo, id); err != nil {
			refuse(err, RepoSettingsData{})
			return
		}
		back("key-deleted")
	case "delete":
		confirm := strings.TrimSpace(form.Get("confirm"))
		if confirm != rr.repo.FullName() {
			d := RepoSettingsData{Confirm: confirm,
				Error: fmt.Sprintf("To delete this repository, type its full name, %s, exactly. Nothing was deleted.", rr.repo.FullName())}
			pg.showRepoSettings(w, r, rr, http.StatusBadRequest, d)
			return
		}
		err := svc.DeleteRepo(ctx, act, rr.repo)
		if errors.Is(err, service.ErrNotDeleted) {
			ref := store.RandomHex(6)
			pg.Log.Error("delete repository", "repo", rr.repo.FullName(), "err", err, "reference", ref)
			pg.showRepoSettings(w, r, rr, http.StatusInternalServerError, RepoSettingsData{Error: service.ErrNotDeleted.Error() + " (reference " + ref + ")"})
			return
		}
		if err != nil {
			refuse(err, RepoSettingsData{})
			return
		}
		http.Redirect(w, r, "/?done=deleted", http.StatusSeeOther)
	case "mirror/sync":
		if _, err := svc.SyncMirror(ctx, act, rr.repo); err != nil {
			refuse(err, RepoSettingsData{})
			return
		}
		back("sync")
	case "mirror/repair":
		st, _, err := svc.RepairHosted(ctx, act, rr.repo)
		var re *service.RepairError
		if errors.As(err, &re) {
			pg.showRepoSettings(w, r, rr, http.StatusConflict, RepoSettingsData{Error: re.Msg, Steps: re.Steps})
			return
		}
		if err != nil {
			refuse(err, RepoSettingsData{})
			return
		}
		pg.showRepoSettings(w, r, rr, http.StatusOK, RepoSettingsData{Notice: "Repaired: the deploy key is " + st.DeployKey + " upstream, the webhook " + st.Webhook + "."})
	default:
		pg.notFound(w, r, rr.s, true)
	}
}
