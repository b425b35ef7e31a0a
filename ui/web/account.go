package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"gitserver/gitserver/access"
	"gitserver/gitserver/httperr"
	"gitserver/gitserver/service"
	"gitserver/store"
)

// SettingsData is the account settings page's. A one-time secret (a new
// password or token) is only ever set in the answer to the POST that
// created it: it is never stored for a later GET.
type SettingsData struct {
	Tokens []TokenRow
	Keys   []store.Key
	// Scopes are the scopes the user may give a token.
	Scopes []string
	// NewPassword and NewToken are shown once.
	NewPassword string
	NewToken    string
	// Error is the failed action's message; Title, KeyText and TokenName
	// re-fill the form that failed.
	Error     string
	TokenName string
	Title     string
	KeyText   string
	Notice    string
	// SCM are the SCM configurations and the user's connections to them.
	SCM []SCMConnectionRow
	// SSOName is the identity provider the account signs in with ("" for
	// a local account); NoPassword: it has no password yet.
	SSOName    string
	NoPassword bool
}

// TokenRow is one token as the page lists it (no secret).
type TokenRow struct {
	ID      int64
	Name    string
	Scopes  string
	Created string
}

// registerAccount adds /user/settings and its forms: exact routes, to be
// registered before /{owner}/{name} (a user named "user" with a repository
// "settings" is then shadowed by this page).
func (pg *Pages) registerAccount(r *mux.Router) {
	h := func(f http.HandlerFunc) http.Handler { return pg.headers(f) }
	r.Handle("/user/settings", h(pg.settings)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/user/settings/password", h(pg.regeneratePassword)).Methods(http.MethodPost)
	r.Handle("/user/settings/tokens", h(pg.createToken)).Methods(http.MethodPost)
	r.Handle("/user/settings/tokens/{id:[0-9]{1,18}}/revoke", h(pg.revokeToken)).Methods(http.MethodPost)
	r.Handle("/user/settings/keys", h(pg.addKey)).Methods(http.MethodPost)
	r.Handle("/user/settings/keys/{id:[0-9]{1,18}}/delete", h(pg.deleteKey)).Methods(http.MethodPost)
	pg.registerSCMConnections(r)
}

// signedIn returns the session, or answers (redirect to /login) itself.
func (pg *Pages) signedIn(w http.ResponseWriter, r *http.Request) (session, bool) {
	s, ok, err := pg.current(r)
	if err != nil {
		pg.fail(w, r, err)
		return s, false
	}
	if !ok {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
		} else {
			pg.errorPage(w, r, s, false, http.StatusForbidden, "Form refused", "You are not signed in. Sign in and try again.")
		}
		return s, false
	}
	return s, true
}

func (pg *Pages) service() *service.Service {
	return &service.Service{Store: pg.Store, Repos: pg.Repos, AnonymousRead: pg.AnonymousRead, Log: pg.Log,
		Mirrors: pg.Mirrors, SCM: pg.SCM, HostKeys: pg.SCMHostKeys, HTTPClient: pg.SCMHTTPClient, BaseURL: pg.BaseURL}
}

func actorOf(s session) service.Actor { return service.As(s.principal(true), access.Web) }

// showSettings renders the page for s with d (its lists filled here).
func (pg *Pages) showSettings(w http.ResponseWriter, r *http.Request, s session, status int, d SettingsData) {
	toks, _, err := pg.service().Tokens(r.Context(), actorOf(s), "")
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	for _, t := range toks {
		d.Tokens = append(d.Tokens, TokenRow{ID: t.ID, Name: t.Name, Scopes: store.JoinScopes(t.Scopes), Created: t.CreatedAt.UTC().Format(time.DateTime)})
	}
	if d.Keys, err = pg.Store.UserKeys(r.Context(), s.user.ID); err != nil {
		pg.fail(w, r, err)
		return
	}
	if d.SCM, err = pg.scmRows(r, s); err != nil {
		pg.fail(w, r, err)
		return
	}
	if pg.SSO != nil {
		if _, err := pg.Store.OIDCLinkOf(r.Context(), s.user.ID); err == nil {
			d.SSOName = pg.SSO.ProviderName
			_, hash, err := pg.Store.UserWithPasswordHash(r.Context(), s.user.ID)
			if err != nil {
				pg.fail(w, r, err)
				return
			}
			d.NoPassword = hash == ""
		} else if !errors.Is(err, store.ErrNotFound) {
			pg.fail(w, r, err)
			return
		}
	}
	d.Scopes = []string{string(store.ScopeRepoRead), string(store.ScopeRepoWrite)}
	if s.user.IsAdmin {
		d.Scopes = append(d.Scopes, string(store.ScopeBuilds), string(store.ScopeAdmin))
	}
	if d.NewPassword != "" || d.NewToken != "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	u := s.user
	pg.show(w, r, status, "settings", Page{Title: "Account settings", User: &u, CSRF: s.csrf, Data: d})
}

func (pg *Pages) settings(w http.ResponseWriter, r *http.Request) {
	s, ok := pg.signedIn(w, r)
	if !ok {
		return
	}
	pg.showSettings(w, r, s, http.StatusOK, SettingsData{})
}

// post checks a settings form: signed in, CSRF token and origin.
func (pg *Pages) post(w http.ResponseWriter, r *http.Request) (session, bool) {
	s, ok := pg.signedIn(w, r)
	if !ok {
		return s, false
	}
	return s, pg.checkForm(w, r, s.csrf, s, true)
}

// actionError answers a failed action: the page again with the message
// for a refusal, 404 for a missing item, 500 otherwise.
func (pg *Pages) actionError(w http.ResponseWriter, r *http.Request, s session, err error, d SettingsData) {
	var se *service.Error
	msg := ""
	if errors.As(err, &se) {
		msg = se.Msg
	} else if he := httperr.From(err); he.Status < http.StatusInternalServerError {
		msg = he.Message
	} else {
		pg.fail(w, r, err)
		return
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		pg.errorPage(w, r, s, true, http.StatusNotFound, "Not found", "There is no such item on your account.")
	case errors.Is(err, store.ErrForbidden):
		d.Error = msg
		pg.showSettings(w, r, s, http.StatusForbidden, d)
	case errors.Is(err, store.ErrConflict):
		d.Error = msg
		pg.showSettings(w, r, s, http.StatusConflict, d)
	default:
		d.Error = msg
		pg.showSettings(w, r, s, http.StatusBadRequest, d)
	}
}

// regeneratePassword sets a generated password and shows it once. Setting
// a password ends the user's sessions; this one is replaced by a new
// session (a new id and CSRF token), so the user stays signed in here.
func (pg *Pages) regeneratePassword(w http.ResponseWriter, r *http.Request) {
	s, ok := pg.post(w, r)
	if !ok {
		return
	}
	pw, _, err := pg.service().RegeneratePassword(r.Context(), actorOf(s), "")
	if err != nil {
		pg.actionError(w, r, s, err, SettingsData{})
		return
	}
	id, sess, err := pg.Store.CreateSession(r.Context(), s.user.ID)
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	pg.setCookie(w, sessionCookie, id, int(store.SessionMaxAge/time.Second))
	s.id, s.csrf = id, sess.CSRF
	pg.showSettings(w, r, s, http.StatusOK, SettingsData{NewPassword: pw,
		Notice: "Your password was changed. Your other sessions were signed out."})
}

func (pg *Pages) createToken(w http.ResponseWriter, r *http.Request) {
	s, ok := pg.post(w, r)
	if !ok {
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	scopes := r.PostForm["scope"]
	d := SettingsData{TokenName: name}
	if len(scopes) == 0 {
		d.Error = "Choose at least one scope."
		pg.showSettings(w, r, s, http.StatusBadRequest, d)
		return
	}
	secret, _, _, err := pg.service().CreateToken(r.Context(), actorOf(s), "", name, scopes)
	if err != nil {
		pg.actionError(w, r, s, err, d)
		return
	}
	pg.showSettings(w, r, s, http.StatusOK, SettingsData{NewToken: secret})
}

func idOf(r *http.Request) int64 {
	id, _ := strconv.ParseInt(mux.Vars(r)["id"], 10, 64)
	return id
}

func (pg *Pages) revokeToken(w http.ResponseWriter, r *http.Request) {
	s, ok := pg.post(w, r)
	if !ok {
		return
	}
	if _, err := pg.service().RevokeToken(r.Context(), actorOf(s), "", idOf(r)); err != nil {
		pg.actionError(w, r, s, err, SettingsData{})
		return
	}
	http.Redirect(w, r, "/user/settings", http.StatusSeeOther)
}

func (pg *Pages) addKey(w http.ResponseWriter, r *http.Request) {
	s, ok := pg.post(w, r)
	if !ok {
		return
	}
	title, text := strings.TrimSpace(r.PostForm.Get("title")), strings.TrimSpace(r.PostForm.Get("key"))
	if _, _, err := pg.service().AddKey(r.Context(), actorOf(s), "", title, text); err != nil {
		pg.actionError(w, r, s, err, SettingsData{Title: title, KeyText: text})
		return
	}
	http.Redirect(w, r, "/user/settings", http.StatusSeeOther)
}

func (pg *Pages) deleteKey(w http.ResponseWriter, r *http.Request) {
	s, ok := pg.post(w, r)
	if !ok {
		return
	}
	if _, err := pg.service().DeleteKey(r.Context(), actorOf(s), "", idOf(r)); err != nil {
		pg.actionError(w, r, s, err, SettingsData{})
		return
	}
	http.Redirect(w, r, "/user/settings", http.StatusSeeOther)
}
