package web

import (
	"fmt"
	"html"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"gitserver/store"
)

// The account page's "Source Code Management" section: per SCM
// configuration, Connect (the API's OAuth authorization-code flow, or for
// Bitbucket Server a personal access token) and Disconnect, with the
// connected account's login on the provider.

func init() {
	templateBuilders["scm-connect"] = func() *template.Template {
		return template.Must(template.New("scm-connect").ParseFS(templateFS, "templates/layout.html", "templates/scm-connect.html"))
	}
}

// SCMConnectionRow is one configuration in the account page's section.
type SCMConnectionRow struct {
	ID        int64
	Name      string
	Kind      string
	Connected bool
	// Login is the connected account on the provider; Since when.
	Login string
	Since string
	// Token: the user connects with a personal access token (Bitbucket
	// Server), not with OAuth.
	Token bool
}

// ConnectData is the page between the Connect form and the provider: a
// form cannot be redirected to another site under the pages' CSP
// (form-action 'self'), so this page sends the browser on with a refresh
// and a link.
type ConnectData struct {
	Name string
	// URL is the provider's authorize URL; Refresh the <meta> attribute
	// that follows it.
	URL     string
	Refresh template.HTMLAttr
}

// registerSCMConnections adds the section's forms (exact routes, with the
// account page's).
func (pg *Pages) registerSCMConnections(r *mux.Router) {
	h := func(f http.HandlerFunc) http.Handler { return pg.headers(f) }
	r.Handle("/user/settings/scm/{id:[0-9]{1,18}}/connect", h(pg.scmConnect)).Methods(http.MethodPost)
	r.Handle("/user/settings/scm/{id:[0-9]{1,18}}/token", h(pg.scmToken)).Methods(http.MethodPost)
	r.Handle("/user/settings/scm/{id:[0-9]{1,18}}/disconnect", h(pg.scmDisconnect)).Methods(http.MethodPost)
}

// scmRows lists the configurations with s's connections.
func (pg *Pages) scmRows(r *http.Request, s session) ([]SCMConnectionRow, error) {
	svc, actor := pg.scmService(), actorOf(s)
	cs, err := svc.SCMConfigsForUser(r.Context(), actor)
	if err != nil {
		return nil, err
	}
	conns, err := svc.SCMConnections(r.Context(), actor)
	if err != nil {
		return nil, err
	}
	var rows []SCMConnectionRow
	for _, c := range cs {
		row := SCMConnectionRow{ID: c.ID, Name: c.Name, Kind: c.Kind, Token: c.Kind == store.SCMBitbucketServer}
		for _, conn := range conns {
			if conn.ConfigID == c.ID {
				row.Connected, row.Login = true, conn.Login
				if !conn.CreatedAt.IsZero() {
					row.Since = conn.CreatedAt.UTC().Format(time.DateOnly)
				}
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// scmActionError answers a refused connection action on the account page
// (the operation's message and the API's status), or 500.
func (pg *Pages) scmActionError(w http.ResponseWriter, r *http.Request, s session, err error) {
	status, msg := refusal(err)
	if status == 0 {
		pg.fail(w, r, err)
		return
	}
	if status == http.StatusNotFound {
		pg.errorPage(w, r, s, true, http.StatusNotFound, "Not found", "There is no such SCM configuration or connection.")
		return
	}
	pg.showSettings(w, r, s, status, SettingsData{Error: msg})
}

func (pg *Pages) scmConnect(w http.ResponseWriter, r *http.Request) {
	s, ok := pg.post(w, r)
	if !ok {
		return
	}
	svc := pg.scmService()
	c, err := pg.Store.SCMConfigByID(r.Context(), idOf(r))
	if err != nil {
		pg.scmActionError(w, r, s, err)
		return
	}
	u, err := svc.StartConnect(r.Context(), actorOf(s), c.ID, "/user/settings")
	if err != nil {
		pg.scmActionError(w, r, s, err)
		return
	}
	if pu, err := url.Parse(u); err != nil || (pu.Scheme != "https" && pu.Scheme != "http") {
		pg.fail(w, r, fmt.Errorf("the authorize URL of %s is not http(s): %q", c.Name, u))
		return
	}
	d := ConnectData{Name: c.Name, URL: u, Refresh: connectRefresh(u)}
	us := s.user
	pg.show(w, r, http.StatusOK, "scm-connect", Page{Title: "Connect " + c.Name, User: &us, CSRF: s.csrf, Data: d})
}

func (pg *Pages) scmToken(w http.ResponseWriter, r *http.Request) {
	s, ok := pg.post(w, r)
	if !ok {
		return
	}
	if _, err := pg.scmService().PutSCMToken(r.Context(), actorOf(s), idOf(r), strings.TrimSpace(r.PostForm.Get("access_token"))); err != nil {
		pg.scmActionError(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/user/settings", http.StatusSeeOther)
}

func (pg *Pages) scmDisconnect(w http.ResponseWriter, r *http.Request) {
	s, ok := pg.post(w, r)
	if !ok {
		return
	}
	if err := pg.scmService().DisconnectSCM(r.Context(), actorOf(s), idOf(r)); err != nil {
		pg.scmActionError(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/user/settings", http.StatusSeeOther)
}

// connectRefresh is the <meta http-equiv="refresh"> attribute that sends
// the browser to u (an http(s) URL), escaped for the attribute.
func connectRefresh(u string) template.HTMLAttr {
	return template.HTMLAttr(`content="0; url=` + html.EscapeString(u) + `"`)
}
