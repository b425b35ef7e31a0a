package ui

import (
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"gitserver/gitserver/access"
	"gitserver/gitserver/httperr"
	"gitserver/gitserver/service"
	"gitserver/store"
	"gitserver/ui/wire"
)

// registerSCM adds the SCM configuration and connection routes
// (docs/api.md §10).
func (a *API) registerSCM(r *mux.Router, h func(path string, fn func(w http.ResponseWriter, r *http.Request, p store.Principal), methods ...string)) {
	h("/admin/scm-configs", a.createSCMConfig, http.MethodPost)
	h("/admin/scm-configs", a.listSCMConfigs, http.MethodGet)
	h("/admin/scm-configs/{id:[0-9]+}", a.getSCMConfig, http.MethodGet)
	h("/admin/scm-configs/{id:[0-9]+}", a.patchSCMConfig, http.MethodPatch)
	h("/admin/scm-configs/{id:[0-9]+}", a.deleteSCMConfig, http.MethodDelete)
	h("/scm-configs", a.listUserSCMConfigs, http.MethodGet)
	h("/scm-configs/{id:[0-9]+}/owners", a.scmOwners, http.MethodGet)
	h("/user/scm", a.listSCMConnections, http.MethodGet)
	h("/user/scm/{id:[0-9]+}", a.putSCMToken, http.MethodPut)
	h("/user/scm/{id:[0-9]+}", a.deleteSCMConnection, http.MethodDelete)
	// The browser's side of the OAuth flow: redirects, and plain-text
	// messages for the person in front of it.
	r.HandleFunc("/scm/{id:[0-9]+}/connect", a.scmConnect).Methods(http.MethodGet)
	r.HandleFunc("/scm/{id:[0-9]+}/callback", a.scmCallback).Methods(http.MethodGet)
}

type scmConfigIn struct {
	Name          *string   `json:"name"`
	Kind          *string   `json:"kind"`
	Mode          *string   `json:"mode"`
	WebsiteURL    *string   `json:"website_url"`
	APIURL        *string   `json:"api_url"`
	SSHURL        *string   `json:"ssh_url"`
	ClientID      *string   `json:"client_id"`
	ClientSecret  *string   `json:"client_secret"`
	ProjectKey    *string   `json:"project_key"`
	AccessToken   *string   `json:"access_token"`
	AllowedOwners *[]string `json:"allowed_owners"`
}

func (in scmConfigIn) input() service.SCMConfigInput {
	return service.SCMConfigInput{Name: in.Name, Kind: in.Kind, Mode: in.Mode, WebsiteURL: in.WebsiteURL, APIURL: in.APIURL, SSHURL: in.SSHURL,
		ClientID: in.ClientID, ClientSecret: in.ClientSecret, ProjectKey: in.ProjectKey, AccessToken: in.AccessToken, AllowedOwners: in.AllowedOwners}
}

// scmError is the HTTP form of the SCM operations' own errors: the
// provider's answer (502 when it could not answer, else 400), and 503 when
// this build has no adapters.
func scmError(err error) *httperr.Error {
	var pe *service.ProviderError
	var se *service.StepError
	switch {
	case errors.As(err, &se):
		return &httperr.Error{Status: http.StatusBadGateway, Code: "provider_failed", Message: se.Error(), Err: err}
	case errors.Is(err, service.ErrNoSCM):
		return httperr.New(http.StatusServiceUnavailable, "scm_unavailable", service.ErrNoSCM.Error())
	case errors.As(err, &pe) && pe.Unavailable():
		return &httperr.Error{Status: http.StatusBadGateway, Code: "provider_unavailable", Message: pe.Error(), Err: err}
	case errors.As(err, &pe):
		return &httperr.Error{Status: http.StatusBadRequest, Code: "provider_refused", Message: pe.Error(), Err: err}
	}
	return nil
}

func (a *API) failSCM(w http.ResponseWriter, r *http.Request, p store.Principal, err error) {
	if he := scmError(err); he != nil {
		he.WriteJSON(w)
		return
	}
	a.failOp(w, r, p, err)
}

func (a *API) createSCMConfig(w http.ResponseWriter, r *http.Request, p store.Principal) {
	var in scmConfigIn
	if !decode(w, r, &in) {
		return
	}
	c, err := a.svc().CreateSCMConfig(r.Context(), actor(p), in.input())
	if err != nil {
		a.failSCM(w, r, p, err)
		return
	}
	w.Header().Set("Location", "/api/v1/admin/scm-configs/"+strconv.FormatInt(c.ID, 10))
	writeJSON(w, http.StatusCreated, wire.NewSCMConfig(c))
}

func (a *API) listSCMConfigs(w http.ResponseWriter, r *http.Request, p store.Principal) {
	cs, err := a.svc().SCMConfigs(r.Context(), actor(p))
	if err != nil {
		a.failSCM(w, r, p, err)
		return
	}
	out := []wire.SCMConfig{}
	for _, c := range cs {
		out = append(out, wire.NewSCMConfig(c))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getSCMConfig(w http.ResponseWriter, r *http.Request, p store.Principal) {
	c, err := a.svc().SCMConfig(r.Context(), actor(p), pathID(r))
	if err != nil {
		a.failSCM(w, r, p, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.NewSCMConfig(c))
}

func (a *API) patchSCMConfig(w http.ResponseWriter, r *http.Request, p store.Principal) {
	var in scmConfigIn
	if !decode(w, r, &in) {
		return
	}
	c, err := a.svc().UpdateSCMConfig(r.Context(), actor(p), pathID(r), in.input())
	if err != nil {
		a.failSCM(w, r, p, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.NewSCMConfig(c))
}

func (a *API) deleteSCMConfig(w http.ResponseWriter, r *http.Request, p store.Principal) {
	force := false
	if v := r.URL.Query().Get("force"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			WriteError(w, http.StatusBadRequest, "invalid", "force must be true or false")
			return
		}
		force = b
	}
	if _, err := a.svc().DeleteSCMConfig(r.Context(), actor(p), pathID(r), force); err != nil {
		a.failSCM(w, r, p, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) listUserSCMConfigs(w http.ResponseWriter, r *http.Request, p store.Principal) {
	cs, err := a.svc().SCMConfigsForUser(r.Context(), actor(p))
	if err != nil {
		a.failSCM(w, r, p, err)
		return
	}
	out := []wire.SCMConfigSummary{}
	for _, c := range cs {
		out = append(out, wire.SCMConfigSummary{Connected: c.Connected, ID: c.ID, Kind: c.Kind, Name: c.Name})
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) scmOwners(w http.ResponseWriter, r *http.Request, p store.Principal) {
	owners, err := a.svc().SCMOwners(r.Context(), actor(p), pathID(r))
	if err != nil {
		a.failSCM(w, r, p, err)
		return
	}
	out := []wire.SCMOwner{}
	for _, o := range owners {
		out = append(out, wire.SCMOwner{Kind: o.Kind, Name: o.Name})
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) listSCMConnections(w http.ResponseWriter, r *http.Request, p store.Principal) {
	cs, err := a.svc().SCMConnections(r.Context(), actor(p))
	if err != nil {
		a.failSCM(w, r, p, err)
		return
	}
	out := []wire.SCMConnection{}
	for _, c := range cs {
		out = append(out, wire.NewSCMConnection(c))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) putSCMToken(w http.ResponseWriter, r *http.Request, p store.Principal) {
	var in struct {
		AccessToken string `json:"access_token"`
	}
	if !decode(w, r, &in) {
		return
	}
	c, err := a.svc().PutSCMToken(r.Context(), actor(p), pathID(r), in.AccessToken)
	if err != nil {
		a.failSCM(w, r, p, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.NewSCMConnection(c))
}

func (a *API) deleteSCMConnection(w http.ResponseWriter, r *http.Request, p store.Principal) {
	if err := a.svc().DisconnectSCM(r.Context(), actor(p), pathID(r)); err != nil {
		a.failSCM(w, r, p, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// browserError answers the OAuth flow's failures as a short page for the
// person in front of the browser, never a 500 for the provider's refusal.
func (a *API) browserError(w http.ResponseWriter, r *http.Request, p store.Principal, err error) {
	he := scmError(err)
	if he == nil {
		if d, ok := service.Denied(err); ok {
			he = httperr.New(http.StatusForbidden, d.Code, d.Reason)
		} else {
			he = httperr.From(err)
		}
	}
	if he.Status >= http.StatusInternalServerError && he.Status != http.StatusServiceUnavailable && he.Status != http.StatusBadGateway {
		ref := store.RandomHex(6)
		a.Log.Error("scm connect", "path", r.URL.Path, "err", err, "reference", ref)
		he = &httperr.Error{Status: he.Status, Code: he.Code, Message: "internal error, reference " + ref}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'")
	if he.Challenge {
		h.Set("WWW-Authenticate", `Basic realm="gitserver", charset="UTF-8"`)
	}
	w.WriteHeader(he.Status)
	msg := html.EscapeString(he.Message)
	w.Write([]byte("<!doctype html><title>Connection not made</title><h1>Connection not made</h1><p>" + msg + "</p><p><a href=\"/\">Back</a></p>\n"))
}

func (a *API) scmConnect(w http.ResponseWriter, r *http.Request) {
	p, err := a.Auth.Authenticate(r)
	if err != nil {
		a.browserError(w, r, store.Principal{}, err)
		return
	}
	u, err := a.svc().StartConnect(r.Context(), actor(p), pathID(r), r.URL.Query().Get("return_to"))
	if err != nil {
		a.browserError(w, r, p, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u, http.StatusFound)
}

func (a *API) scmCallback(w http.ResponseWriter, r *http.Request) {
	p, err := a.Auth.Authenticate(r)
	if errors.Is(err, store.ErrNoCredentials) && a.Session != nil {
		// A connection started on the account page: the browser carries
		// the session, and the state is bound to its user.
		var ok bool
		if p, ok, err = a.Session(r); err == nil && !ok {
			err = store.ErrNoCredentials
		}
	}
	if err != nil {
		a.browserError(w, r, store.Principal{}, err)
		return
	}
	q := r.URL.Query()
	back, err := a.svc().FinishConnect(r.Context(), actor(p), pathID(r), service.CallbackInput{
		Code: q.Get("code"), State: q.Get("state"), Error: q.Get("error"), ErrorDescription: q.Get("error_description")})
	if err != nil {
		a.browserError(w, r, p, err)
		return
	}
	if !service.SafeReturnTo(back) {
		back = "/"
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, back, http.StatusFound)
}

// repairMirror re-adds a provider-hosted repository's missing deploy key
// or webhook upstream; when it cannot, 409 repair_by_hand with the steps.
func (a *API) repairMirror(w http.ResponseWriter, r *http.Request, p store.Principal) {
	rp, ok := a.repo(w, r, p, access.OpMirrorWebhook)
	if !ok {
		return
	}
	st, m, err := a.svc().RepairHosted(r.Context(), actor(p), rp)
	var re *service.RepairError
	if errors.As(err, &re) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusConflict)
		type object struct {
			Code    string   `json:"code"`
			Message string   `json:"message"`
			Steps   []string `json:"steps"`
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(map[string]object{"error": {Code: "repair_by_hand", Message: re.Msg, Steps: re.Steps}})
		return
	}
	if err != nil {
		a.failSCM(w, r, p, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.Repair{DeployKey: st.DeployKey, Webhook: st.Webhook, Remote: wire.NewRemote(m)})
}
