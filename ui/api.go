package ui

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"gitserver/gitserver/access"
	"gitserver/gitserver/httperr"
	"gitserver/gitserver/service"
	"gitserver/store"
	"gitserver/ui/httpauth"
	"gitserver/ui/wire"
)

// RepoFS is what the API needs done on disk: what the operations it calls
// need (service.RepoFS).
type RepoFS = service.RepoFS

// API is the JSON API. Fields are set by cmd.
type API struct {
	Store         store.Store
	Auth          *httpauth.Authenticator
	Repos         RepoFS
	Log           *slog.Logger
	BaseURL       string // e.g. http://localhost:8080
	SSHURL        string // e.g. ssh://git@localhost:2222, "" when SSH is off
	AnonymousRead bool
	// MaxClaimWait bounds a claim's wait_seconds (default 60s).
	MaxClaimWait time.Duration
	// Mirrors is the sync engine of mirrored repositories (nil: creating
	// mirrors is refused).
	Mirrors Mirrorer
	// SCM builds the provider of an SCM configuration (nil: the SCM
	// operations answer 503); SCMHostKeys pins their SSH host keys;
	// SCMHTTPClient talks to their OAuth endpoints (nil: the default).
	SCM           service.SCMFactory
	SCMHostKeys   service.HostKeyScanner
	SCMHTTPClient *http.Client
	// Session authenticates the web pages' signed-in browser (its session
	// cookie) on the OAuth callback only, where the provider sends back a
	// connection started on a page (the start is a page's CSRF-checked
	// form). nil: the callback needs API credentials. The JSON endpoints
	// never accept it.
	Session func(*http.Request) (store.Principal, bool, error)
}

// Mirrorer is what the API needs of the mirrors' sync engine: what the
// operations it calls need (service.Mirrorer).
type Mirrorer = service.Mirrorer

// Register adds the /api/v1 routes to r.
func (a *API) Register(r *mux.Router) {
	v1 := r.PathPrefix("/api/v1").Subrouter()
	h := func(path string, fn func(w http.ResponseWriter, r *http.Request, p store.Principal), methods ...string) {
		v1.HandleFunc(path, a.authed(fn, false)).Methods(methods...)
	}
	// Reads of a repository and its builds and versions: with
	// --anonymous-read, anonymous clients may read public repositories here
	// as they may clone them.
	read := func(path string, fn func(w http.ResponseWriter, r *http.Request, p store.Principal)) {
		v1.HandleFunc(path, a.authed(fn, true)).Methods(http.MethodGet)
	}
	h("/user", a.getUser, http.MethodGet)
	h("/user/password", a.regeneratePassword, http.MethodPost)
	h("/user/tokens", a.createToken, http.MethodPost)
	h("/user/tokens", a.listTokens, http.MethodGet)
	h("/user/tokens/{id:[0-9]+}", a.revokeToken, http.MethodDelete)
	h("/user/keys", a.addUserKey, http.MethodPost)
	h("/user/keys", a.listUserKeys, http.MethodGet)
	h("/user/keys/{id:[0-9]+}", a.deleteUserKey, http.MethodDelete)
	h("/orgs", a.createOrg, http.MethodPost)
	h("/orgs/{org}/members/{user}", a.setMember, http.MethodPut)
	h("/orgs/{org}/members/{user}", a.removeMember, http.MethodDelete)
	h("/admin/users/{name}", a.patchUser, http.MethodPatch)
	h("/repos", a.createRepo, http.MethodPost)
	read("/repos/{owner}/{name}", a.getRepo)
	h("/repos/{owner}/{name}", a.deleteRepo, http.MethodDelete)
	h("/repos/{owner}/{name}", a.patchRepo, http.MethodPatch)
	read("/repos/{owner}/{name}/mirror", a.getMirror)
	h("/repos/{owner}/{name}/mirror/sync", a.syncMirror, http.MethodPost)
	h("/repos/{owner}/{name}/mirror/webhook", a.getMirrorWebhook, http.MethodGet)
	h("/repos/{owner}/{name}/mirror/repair", a.repairMirror, http.MethodPost)
	h("/repos/{owner}/{name}/deploy-keys", a.addDeployKey, http.MethodPost)
	h("/repos/{owner}/{name}/deploy-keys", a.listDeployKeys, http.MethodGet)
	h("/repos/{owner}/{name}/deploy-keys/{id:[0-9]+}", a.deleteDeployKey, http.MethodDelete)
	read("/repos/{owner}/{name}/builds", a.listBuilds)
	h("/repos/{owner}/{name}/versions", a.publish, http.MethodPost)
	read("/repos/{owner}/{name}/versions", a.listVersions)
	h("/builds/claim", a.claim, http.MethodPost)
	read("/builds/{id:[0-9]+}", a.getBuild)
	h("/builds/{id:[0-9]+}/heartbeat", a.heartbeat, http.MethodPost)
	h("/builds/{id:[0-9]+}/complete", a.complete, http.MethodPost)
	a.registerSCM(r, h)
	v1.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	v1.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method "+r.Method+" is not allowed here")
	})
}

// WriteError writes the contract's error object.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	httperr.New(status, code, msg).WriteJSON(w)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// fail answers err as httperr.From classifies it: a store error as 4xx with
// the message the store wrote for clients, anything else as 500 with a
// reference, the detail in the log.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	he := httperr.From(err)
	if he.Status >= http.StatusInternalServerError {
		ref := store.RandomHex(6)
		a.Log.Error("api error", "method", r.Method, "path", r.URL.Path, "err", err, "reference", ref)
		he = &httperr.Error{Status: he.Status, Code: he.Code, Message: "internal error, reference " + ref, Err: err}
	}
	he.WriteJSON(w)
}

// svc is the service that performs the multi-step operations (shared with
// the admin CLI); it holds no state, so one per request is cheap.
func (a *API) svc() *service.Service {
	return &service.Service{Store: a.Store, Repos: a.Repos, Mirrors: a.Mirrors, AnonymousRead: a.AnonymousRead, Log: a.Log,
		SCM: a.SCM, HostKeys: a.SCMHostKeys, HTTPClient: a.SCMHTTPClient, BaseURL: a.BaseURL}
}

// actor is p acting through the API.
func actor(p store.Principal) service.Actor { return service.As(p, access.API) }

// failOp answers an error of a service operation: an access refusal as the
// policy's answer (see allowed), anything else as fail does.
func (a *API) failOp(w http.ResponseWriter, r *http.Request, p store.Principal, err error) {
	if d, ok := service.Denied(err); ok {
		a.allowed(w, p, d)
		return
	}
	a.fail(w, r, err)
}

func (a *API) authed(fn func(http.ResponseWriter, *http.Request, store.Principal), anonymousRead bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Auth.Authenticate(r)
		if errors.Is(err, store.ErrNoCredentials) && anonymousRead && a.AnonymousRead {
			p, err = store.Principal{}, nil
		}
		if err != nil {
			a.fail(w, r, err) // 401 or 429 for credential errors, 500 otherwise
			return
		}
		// A build's clone token is for git reads of one repository only.
		if !a.allowed(w, p, access.Admit(p, access.API)) {
			return
		}
		fn(w, r, p)
	}
}

const maxJSONBody = 1 << 20

// decode reads a JSON object into v, refusing unknown fields, trailing data
// and oversized bodies with a precise 400/413.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	// Only application/json: a browser sends text/plain, form or multipart
	// bodies cross-site without asking (no CORS preflight), with the Basic
	// credentials it has cached for this server. Parsing those as JSON let
	// any web page act as the signed-in user (CSRF).
	if !jsonContentType(r) {
		WriteError(w, http.StatusUnsupportedMediaType, "unsupported_media_type",
			"request bodies must be JSON sent with Content-Type: application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON object")
		}
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			WriteError(w, http.StatusRequestEntityTooLarge, "too_large", "request body larger than 1 MiB")
			return false
		}
		if errors.Is(err, io.EOF) {
			err = errors.New("empty body; a JSON object is required")
		}
		WriteError(w, http.StatusBadRequest, "invalid_json", "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

// jsonContentType reports whether r's body may be read as JSON: its
// Content-Type is application/json, with no parameter but charset=utf-8.
// A request without a body (and without a Content-Type) passes, to be
// refused as an empty body.
func jsonContentType(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" && r.ContentLength == 0 {
		return true
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}

// allowed writes the answer to a refusal of the access policy: 404 (to an
// anonymous client, 401 with a challenge) when the target's existence is
// not revealed, 403 otherwise.
func (a *API) allowed(w http.ResponseWriter, p store.Principal, d access.Decision) bool {
	switch d.Outcome {
	case access.Allow:
		return true
	case access.Forbidden:
		WriteError(w, http.StatusForbidden, d.Code, d.Reason)
	default:
		notFound(w, p, d.Reason)
	}
	return false
}

// may asks the access policy about an operation on no repository.
func (a *API) may(w http.ResponseWriter, p store.Principal, op access.Op) bool {
	return a.allowed(w, p, access.Decide(p, op, access.API, access.Target{}, access.Facts{AnonymousRead: a.AnonymousRead}))
}

// facts is service.Service.Facts.
func (a *API) facts(ctx context.Context, p store.Principal, ownerKind store.AccountKind, ownerID int64) (access.Facts, error) {
	return a.svc().Facts(ctx, p, ownerKind, ownerID)
}

// --- users, tokens, keys -------------------------------------------------

func (a *API) getUser(w http.ResponseWriter, r *http.Request, p store.Principal) {
	if p.User == nil {
		WriteError(w, http.StatusForbidden, "forbidden", "not a user")
		return
	}
	writeJSON(w, http.StatusOK, wire.NewUser(*p.User, p.Token))
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request, p store.Principal) {
	toks, _, err := a.svc().Tokens(r.Context(), actor(p), "")
	if err != nil {
		a.failOp(w, r, p, err)
		return
	}
	out := []wire.TokenInfo{}
	for _, t := range toks {
		out = append(out, wire.NewTokenInfo(t))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request, p store.Principal) {
	if _, err := a.svc().RevokeToken(r.Context(), actor(p), "", pathID(r)); err != nil {
		a.failOp(w, r, p, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// patchUser disables or re-enables an account (admins).
func (a *API) patchUser(w http.ResponseWriter, r *http.Request, p store.Principal) {
	var in struct {
		Disabled *bool `json:"disabled"`
	}
	if !decode(w, r, &in) {
		return
	}
	if in.Disabled == nil {
		WriteError(w, http.StatusBadRequest, "invalid", `"disabled" (true or false) is required`)
		return
	}
	u, err := a.svc().SetDisabled(r.Context(), actor(p), mux.Vars(r)["name"], *in.Disabled)
	if err != nil {
		a.failOp(w, r, p, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.NewUser(u, nil))
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request, p store.Principal) {
	var in struct {
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
	}
	if !decode(w, r, &in) {
		return
	}
	// Who may hold the builds and admin scopes is the store's rule
	// (store.ErrForbidden -> 403), the same for the CLI.
	secret, tok, _, err := a.svc().CreateToken(r.Context(), actor(p), "", in.Name, in.Scopes)
	if err != nil {
		a.failOp(w, r, p, err)
		return
	}
	writeJSON(w, http.StatusCreated, wire.NewToken(tok, secret))
}

func (a *API) addUserKey(w http.ResponseWriter, r *http.Request, p store.Principal) {
	var in struct {
		Title string `json:"title"`
		Key   string `json:"key"`
	}
	if !decode(w, r, &in) {
		return
	}
	k, _, err := a.svc().AddKey(r.Context(), actor(p), "", in.Title, in.Key)
	if err != nil {
		a.failOp(w, r, p, err)
		return
	}
	writeJSON(w, http.StatusCreated, wire.NewKey(k))
}

func (a *API) listUserKeys(w http.ResponseWriter, r *http.Request, p store.Principal) {
	keys, err := a.Store.UserKeys(r.Context(), p.User.ID)
	a.writeKeys(w, r, keys, err)
}

func (a *API) writeKeys(w http.ResponseWriter, r *http.Request, keys []store.Key, err error) {
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.NewKeys(keys))
}

func pathID(r *http.Request) int64 {
	id, _ := strconv.ParseInt(mux.Vars(r)["id"], 10, 64)
	return id
}

func (a *API) deleteUserKey(w http.ResponseWriter, r *http.Request, p store.Principal) {
	if _, err := a.svc().DeleteKey(r.Context(), actor(p), "", pathID(r)); err != nil {
		a.failOp(w, r, p, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- organisations -------------------------------------------------------

func (a *API) createOrg(w http.ResponseWriter, r *http.Request, p store.Principal) {
	var in struct {
		Name string `json:"name"`
	}
	if !decode(w, r, &in) {
		return
	}
	org, err := a.svc().CreateOrg(r.Context(), actor(p), in.Name)
	if err != nil {
		a.failOp(w, r, p, err)
		return
	}
	writeJSON(w, http.StatusCreated, wire.NewOrg(org))
}

func (a *API) setMember(w http.ResponseWriter, r *http.Request, p store.Principal) {
	var in struct {
		Role string `json:"role"`
	}
	if !decode(w, r, &in) {
		return
	}
	vars := mux.Vars(r)
	org, user, err := a.svc().SetMember(r.Context(), actor(p), vars["org"], vars["user"], in.Role)
	if err != nil {
		a.failOp(w, r, p, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.NewMembership(org.Name, user.Name, store.Role(in.Role)))
}

func (a *API) removeMember(w http.ResponseWriter, r *http.Request, p store.Principal) {
	vars := mux.Vars(r)
	if _, _, err := a.svc().RemoveMember(r.Context(), actor(p), vars["org"], vars["user"]); err != nil {
		a.failOp(w, r, p, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- repositories --------------------------------------------------------

func (a *API) repoJSON(rp store.Repo) wire.Repo {
	return wire.NewRepo(rp, a.CloneURL(rp), wire.SSHCloneURL(a.SSHURL, rp.FullName()))
}

// CloneURL is the smart-HTTP clone URL of a repository.
func (a *API) CloneURL(rp store.Repo) string {
	return wire.HTTPCloneURL(a.BaseURL, rp.FullName())
}

func (a *API) createRepo(w http.ResponseWriter, r *http.Request, p store.Principal) {
	var in struct {
		Owner         string `json:"owner"`
		Name          string `json:"name"`
		Visibility    string `json:"visibility"`
		DefaultBranch string `json:"default_branch"`
		Mirror        *struct {
			URL        string   `json:"url"`
			PrivateKey string   `json:"private_key"`
			HostKeys   []string `json:"host_keys"`
			Interval   string   `json:"interval"`
		} `json:"mirror"`
		Host *struct {
			SCMConfig   int64  `json:"scm_config"`
			RemoteOwner string `json:"remote_owner"`
			RemoteName  string `json:"remote_name"`
		} `json:"host"`
	}
	if !decode(w, r, &in) {
		return
	}
	nr := service.NewRepoInput{Owner: in.Owner, Name: in.Name, Visibility: in.Visibility, DefaultBranch: in.DefaultBranch}
	if in.Host != nil {
		if in.Mirror != nil {
			httperr.New(http.StatusBadRequest, "invalid", "give mirror or host, not both").WriteJSON(w)
			return
		}
		rp, m, err := a.svc().CreateHosted(r.Context(), actor(p), nr, service.HostInput{
			SCMConfig: in.Host.SCMConfig, RemoteOwner: in.Host.RemoteOwner, RemoteName: in.Host.RemoteName})
		if err != nil {
			a.failSCM(w, r, p, err)
			return
		}
		out := a.repoJSON(rp)
		out.Mirror = wire.NewMirror(m, a.BaseURL)
		out.Remote = wire.NewRemote(m)
		w.Header().Set("Location", "/api/v1/repos/"+rp.FullName())
		writeJSON(w, http.StatusCreated, out)
		return
	}
	if in.Mirror != nil {
		rp, m, err := a.svc().CreateMirror(r.Context(), actor(p), nr, service.MirrorInput{
			URL: in.Mirror.URL, PrivateKey: in.Mirror.PrivateKey, HostKeys: in.Mirror.HostKeys, Interval: in.Mirror.Interval})
		if err != nil {
			a.failOp(w, r, p, err)
			return
		}
		out := a.repoJSON(rp)
		out.Mirror = wire.NewMirror(m, a.BaseURL)
		w.Header().Set("Location", "/api/v1/repos/"+rp.FullName())
		writeJSON(w, http.StatusCreated, out)
		return
	}
	rp, err := a.svc().CreateRepo(r.Context(), actor(p), nr)
	if err != nil {
		a.failOp(w, r, p, err)
		return
	}
	w.Header().Set("Location", "/api/v1/repos/"+rp.FullName())
	writeJSON(w, http.StatusCreated, a.repoJSON(rp))
}

// fullRepoJSON is rp's object with its mirror, if it is one.
func (a *API) fullRepoJSON(ctx context.Context, rp store.Repo) (wire.Repo, error) {
	out := a.repoJSON(rp)
	m, err := a.Store.MirrorByRepo(ctx, rp.ID)
	switch {
	case err == nil:
		out.Mirror = wire.NewMirror(m, a.BaseURL)
		out.Remote = wire.NewRemote(m)
	case !errors.Is(err, store.ErrNotFound):
		return wire.Repo{}, err
	}
	return out, nil
}

func (a *API) getMirror(w http.ResponseWriter, r *http.Request, p store.Principal) {
	rp, ok := a.lookupRepo(w, r, p) // Mirror decides access
	if !ok {
		return
	}
	m, err := a.svc().Mirror(r.Context(), actor(p), rp)
	if err != nil {
		a.failOp(w, r, p, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.NewMirror(m, a.BaseURL))
}

func (a *API) syncMirror(w http.ResponseWriter, r *http.Request, p store.Principal) {
	rp, ok := a.lookupRepo(w, r, p) // SyncMirror decides access
	if !ok {
		return
	}
	m, err := a.svc().SyncMirror(r.Context(), actor(p), rp)
	if err != nil {
		a.failOp(w, r, p, err)
		return
	}
	writeJSON(w, http.StatusAccepted, wire.NewMirror(m, a.BaseURL))
}

func (a *API) getMirrorWebhook(w http.ResponseWriter, r *http.Request, p store.Principal) {
	rp, ok := a.lookupRepo(w, r, p) // MirrorWebhook decides access
	if !ok {
		return
	}
	m, err := a.svc().MirrorWebhook(r.Context(), actor(p), rp)
	if err != nil {
		a.failOp(w, r, p, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.MirrorWebhook{URL: wire.WebhookURL(a.BaseURL, m.HookID), Secret: m.WebhookSecret})
}

// repo resolves {owner}/{name} and asks the access policy whether p may do
// op to it; it writes a 404 when the principal cannot read it (existence is
// not revealed) and 403 when it can read but not do op.
func (a *API) repo(w http.ResponseWriter, r *http.Request, p store.Principal, op access.Op) (store.Repo, bool) {
	rp, ok := a.lookupRepo(w, r, p)
	if !ok {
		return store.Repo{}, false
	}
	f, err := a.facts(r.Context(), p, rp.OwnerKind, rp.OwnerID)
	if err != nil {
		a.fail(w, r, err)
		return store.Repo{}, false
	}
	if !a.allowed(w, p, access.Decide(p, op, access.API, access.Target{Repo: rp}, f)) {
		return store.Repo{}, false
	}
	return rp, true
}

// lookupRepo finds the repository the path names, without asking the access
// policy: for handlers whose service call decides access itself (answered
// through failOp), so the decision is not made twice.
func (a *API) lookupRepo(w http.ResponseWriter, r *http.Request, p store.Principal) (store.Repo, bool) {
	vars := mux.Vars(r)
	if !store.ValidName(vars["owner"]) || !store.ValidName(vars["name"]) {
		notFound(w, p, "repository not found")
		return store.Repo{}, false
	}
	rp, err := a.Store.RepoByName(r.Context(), vars["owner"], vars["name"])
	if errors.Is(err, store.ErrNotFound) {
		notFound(w, p, "repository not found")
		return store.Repo{}, false
	}
	if err != nil {
		a.fail(w, r, err)
		return store.Repo{}, false
	}
	return rp, true
}

// notFound answers 404, or, to an anonymous client, 401 with a challenge:
// whether a repository exists that it cannot read is not revealed, and it
// is told to sign in (as git is).
func notFound(w http.ResponseWriter, p store.Principal, msg string) {
	if p.Anonymous() {
		httperr.Unauthorized().WriteJSON(w)
		return
	}
	WriteError(w, http.StatusNotFound, "not_found", msg)
}

func (a *API) getRepo(w http.ResponseWriter, r *http.Request, p store.Principal) {
	if rp, ok := a.repo(w, r, p, access.OpRead); ok {
		out, err := a.fullRepoJSON(r.Context(), rp)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (a *API) deleteRepo(w http.ResponseWriter, r *http.Request, p store.Principal) {
	rp, ok := a.lookupRepo(w, r, p) // DeleteRepo decides access
	if !ok {
		return
	}
	err := a.svc().DeleteRepo(r.Context(), actor(p), rp)
	switch {
	case errors.Is(err, service.ErrNotDeleted):
		ref := store.RandomHex(6)
		a.Log.Error("delete repository", "repo", rp.FullName(), "err", err, "reference", ref)
		WriteError(w, http.StatusInternalServerError, "internal", service.ErrNotDeleted.Error()+" (reference "+ref+")")
		return
	case err != nil:
		a.failOp(w, r, p, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) addDeployKey(w http.ResponseWriter, r *http.Request, p store.Principal) {
	var in struct {
		Title    string `json:"title"`
		Key      string `json:"key"`
		ReadOnly *bool  `json:"read_only"`
	}
	if !decode(w, r, &in) {
		return
	}
	rp, ok := a.lookupRepo(w, r, p) // AddDeployKey decides access
	if !ok {
		return
	}
	k, err := a.svc().AddDeployKey(r.Context(), actor(p), rp, in.Title, in.Key, in.ReadOnly == nil || *in.ReadOnly)
	if err != nil {
		a.failOp(w, r, p, err)
		return
	}
	writeJSON(w, http.StatusCreated, wire.NewKey(k))
}

// patchRepo changes a repository's visibility and default branch
// (service.UpdateRepo decides access: the repository's owners).
func (a *API) patchRepo(w http.ResponseWriter, r *http.Request, p store.Principal) {
	var in struct {
		Visibility    *string `json:"visibility"`
		DefaultBranch *string `json:"default_branch"`
	}
	if !decode(w, r, &in) {
		return
	}
	rp, ok := a.lookupRepo(w, r, p)
	if !ok {
		return
	}
	nr, err := a.svc().UpdateRepo(r.Context(), actor(p), rp, service.RepoUpdate{Visibility: in.Visibility, DefaultBranch: in.DefaultBranch})
	if err != nil {
		a.failOp(w, r, p, err)
		return
	}
	out, err := a.fullRepoJSON(r.Context(), nr)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) listDeployKeys(w http.ResponseWriter, r *http.Request, p store.Principal) {
	rp, ok := a.repo(w, r, p, access.OpManageKeys)
	if !ok {
		return
	}
	keys, err := a.Store.DeployKeys(r.Context(), rp.ID)
	a.writeKeys(w, r, keys, err)
}

func (a *API) deleteDeployKey(w http.ResponseWriter, r *http.Request, p store.Principal) {
	rp, ok := a.lookupRepo(w, r, p) // DeleteDeployKey decides access
	if !ok {
		return
	}
	if err := a.svc().DeleteDeployKey(r.Context(), actor(p), rp, pathID(r)); err != nil {
		a.failOp(w, r, p, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) audit(r *http.Request, p store.Principal, action, target, detail string) {
	if err := a.Store.Audit(context.WithoutCancel(r.Context()), p.Name(), action, target, detail); err != nil {
		a.Log.Error("audit", "err", err)
	}
}
