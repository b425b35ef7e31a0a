package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"gitserver/gitserver/access"
	"gitserver/gitserver/service"
	"gitserver/store"
	"gitserver/ui/httpauth"
	"gitserver/ui/wire"
)

// Git is what the pages need of repositories on disk (cmd implements it on
// the bare repositories with git plumbing).
type Git interface {
	// Readme returns what the repository home shows of r's default branch.
	Readme(ctx context.Context, r store.Repo) (Readme, error)
	// Tree lists the directory path ("" the root) at ref (resolved as
	// REF^{commit}); ErrNotFound when ref or path does not resolve, or
	// path is not a directory.
	Tree(ctx context.Context, r store.Repo, ref, path string) ([]TreeEntry, error)
	// Blob reads the file path at ref: its size, and its content when
	// not larger than max; ErrNotFound as Tree.
	Blob(ctx context.Context, r store.Repo, ref, path string, max int64) (Blob, error)
	// Log lists up to n commits reachable from ref, newest first, after
	// skipping skip; ErrNotFound when ref does not resolve.
	Log(ctx context.Context, r store.Repo, ref string, skip, n int) ([]Commit, error)
	// Refs lists the branches and tags.
	Refs(ctx context.Context, r store.Repo) (Refs, error)
	// LogSince returns up to limit commits reachable from commit to and not
	// from since ("" for none), newest first.
	LogSince(ctx context.Context, r store.Repo, to, since string, limit int) ([]LogEntry, error)
}

// LogEntry is one commit of a log.
type LogEntry struct {
	Commit  string
	Short   string
	Author  string
	When    string
	Subject string
}

// Readme is the README at the head of a repository's default branch.
type Readme struct {
	// Empty: the repository has no branch at all.
	Empty bool
	// NoBranch: it has branches, but not the default branch.
	NoBranch bool
	// Name is the README's file name ("" when there is none); Content its
	// text (possibly cut at a size limit).
	Name    string
	Content []byte
}

// Pages serves the web pages.
type Pages struct {
	Store store.Store
	Auth  *httpauth.Authenticator
	Git   Git
	// Repos is the repository directories (Publish pins the commit).
	Repos service.RepoFS
	// BaseURL is the server's external URL: clone URLs, the Origin check,
	// and whether cookies are Secure (https).
	BaseURL string
	// SSHURL is ssh://git@host:port, "" without SSH; set before serving.
	SSHURL        string
	AnonymousRead bool
	Log           *slog.Logger
	// Web IDE: EditGit lists the files to edit, Committer commits (both
	// nil: no IDE).
	EditGit   EditorGit
	Committer service.Committer

	// Admin: SCM builds the provider of an SCM configuration (nil: the
	// SCM forms answer that this build has no adapters), SCMHostKeys pins
	// their SSH host keys, SCMHTTPClient talks to their OAuth endpoints
	// (as ui.API's); Status is cmd's part of the admin panel's system
	// status (nil: versions and disk unknown).
	SCM           service.SCMFactory
	SCMHostKeys   service.HostKeyScanner
	SCMHTTPClient *http.Client
	Status        func(context.Context) SystemStatus
	// SSO is single sign-on through an OpenID Connect provider (nil: off).
	SSO *SSO

	// Mirrors is what the service's mirror operations need (as the
	// API's; SCM, SCMHostKeys and SCMHTTPClient above serve its provider
	// operations too); nil: this server does not mirror.
	Mirrors service.Mirrorer

	// loginKey signs the sign-in form's CSRF token (random per process:
	// a form older than the process is refused, and reloading fixes it).
	loginKey []byte
}

// Cookie names. Behind https they carry the __Host- prefix: the browser
// then only accepts them Secure, for this host, on path /, so another
// host (a sibling subdomain) cannot plant one.
const (
	sessionCookie = "gitserver_session"
	loginCookie   = "gitserver_login"
	maxFormBody   = 64 << 10
)

// ContentSecurityPolicy is every page's CSP: nothing inline, nothing from
// elsewhere, no framing.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// reserved are first path segments that are not an owner's pages: the
// other handlers' prefixes and the pages' own. "admin" and "user" are not:
// the first account is named admin (its repositories have pages at
// /admin/NAME), and /user/settings and /admin are exact routes registered
// before /{owner}/{name} (the admin panel's forms post under /-/admin/; a
// user named "user" with a repository "settings" has that one page
// shadowed: docs/decisions.md "Admin panel and SCM connections on pages").
var reserved = map[string]bool{
	"api": true, "git": true, "hooks": true, "scm": true, "healthz": true, "readyz": true, "metrics": true,
	"login": true, "logout": true, "-": true, "oidc": true,
}

// IsReserved reports whether a first path segment is not an owner's (its
// pages are someone else's routes). No new account may take such a name
// (store.IsReservedName, the same list).
func IsReserved(segment string) bool {
	return reserved[strings.ToLower(segment)] || store.IsReservedName(segment)
}

const namePattern = `[A-Za-z0-9][A-Za-z0-9_.-]{0,99}`

var repoPath = lazyRegexp(`^/(` + namePattern + `)/(` + namePattern + `)$`)

func (pg *Pages) secure() bool { return strings.HasPrefix(strings.ToLower(pg.BaseURL), "https://") }

func (pg *Pages) cookieName(base string) string {
	if pg.secure() {
		return "__Host-" + base
	}
	return base
}

// Register adds the pages to r. Register them after every other handler:
// /{owner}/{name} matches only names that are not reserved, so it cannot
// shadow /api/, /git/, /hooks/, /scm/, /healthz, /readyz, /metrics.
func (pg *Pages) Register(r *mux.Router) {
	if pg.loginKey == nil {
		pg.loginKey = store.RandomBytes(32)
	}
	if pg.Log == nil {
		pg.Log = slog.Default()
	}
	r.PathPrefix("/-/static/").Handler(pg.headers(http.StripPrefix("/-/static/", staticHandler()))).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/login", pg.headers(http.HandlerFunc(pg.loginForm))).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/login", pg.headers(http.HandlerFunc(pg.login))).Methods(http.MethodPost)
	r.Handle("/logout", pg.headers(http.HandlerFunc(pg.logout))).Methods(http.MethodPost)
	r.Handle("/", pg.headers(http.HandlerFunc(pg.home))).Methods(http.MethodGet, http.MethodHead)
	// Exact routes before /{owner}/{name}: a user named "user" with a
	// repository "settings" is shadowed by the account page.
	pg.registerAccount(r)
	// Web IDE
	pg.registerIDE(r)
	// Admin: /admin and its forms under /-/admin/ (exact routes, before
	// /{owner}/{name}; docs/decisions.md "Admin panel routes").
	pg.registerAdmin(r)
	// OIDC: /oidc/login and /oidc/callback (exact routes; "oidc" is
	// reserved).
	pg.registerSSO(r)
	// Repository settings and creation
	pg.registerRepoSettings(r)
	r.Handle("/{owner}/{name}/builds", pg.headers(http.HandlerFunc(pg.builds))).Methods(http.MethodGet, http.MethodHead).
		MatcherFunc(func(r *http.Request, _ *mux.RouteMatch) bool { return matches(buildsPath())(r) })
	r.Handle("/{owner}/{name}/builds/{id}/publish", pg.headers(http.HandlerFunc(pg.publish))).Methods(http.MethodPost).
		MatcherFunc(func(r *http.Request, _ *mux.RouteMatch) bool { return matches(publishPath())(r) })
	r.Handle("/{owner}/{name}/versions", pg.headers(http.HandlerFunc(pg.versions))).Methods(http.MethodGet, http.MethodHead).
		MatcherFunc(func(r *http.Request, _ *mux.RouteMatch) bool { return matches(versionPath())(r) })
	r.Handle("/{owner}/{name}", pg.headers(http.HandlerFunc(pg.repoHome))).Methods(http.MethodGet, http.MethodHead).
		MatcherFunc(func(r *http.Request, _ *mux.RouteMatch) bool {
			m := repoPath().FindStringSubmatch(r.URL.EscapedPath())
			return m != nil && !IsReserved(m[1])
		})
	pg.registerBrowse(func(re *regexp.Regexp, h http.HandlerFunc) {
		r.Handle("/{owner}/{name}/{rest:.+}", pg.headers(h)).Methods(http.MethodGet, http.MethodHead).
			MatcherFunc(func(r *http.Request, _ *mux.RouteMatch) bool {
				m := re.FindStringSubmatch(r.URL.EscapedPath())
				return m != nil && !IsReserved(m[1])
			})
	})
}

func staticHandler() http.Handler {
	files := http.FileServerFS(staticFiles())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// headers sets the pages' security headers on every answer.
func (pg *Pages) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// --- sessions -------------------------------------------------------------

// session is the request's signed-in session, if any.
type session struct {
	id   string
	user store.Account
	csrf string
}

// current returns the request's live session (ok false when signed out or
// the session ended: expired, signed out, password changed, disabled).
func (pg *Pages) current(r *http.Request) (session, bool, error) {
	c, err := r.Cookie(pg.cookieName(sessionCookie))
	if err != nil || len(c.Value) != 64 {
		return session{}, false, nil
	}
	acct, s, err := pg.Store.SessionByID(r.Context(), c.Value)
	if errors.Is(err, store.ErrNotFound) {
		return session{}, false, nil
	}
	if err != nil {
		return session{}, false, err
	}
	// A user signed in through the identity provider stays signed in
	// while the provider accepts the user (checked once per interval).
	if pg.SSO != nil && !pg.checkGrant(r.Context(), acct) {
		return session{}, false, nil
	}
	return session{id: c.Value, user: acct, csrf: s.CSRF}, true, nil
}

// principal is who the session signs in (anonymous without one).
func (s session) principal(ok bool) store.Principal {
	if !ok {
		return store.Principal{}
	}
	u := s.user
	return store.Principal{User: &u}
}

func (pg *Pages) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: pg.cookieName(name), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: pg.secure(), SameSite: http.SameSiteLaxMode,
	})
}

// --- CSRF -----------------------------------------------------------------

// sameOrigin checks that a state-changing request comes from a page of
// this server: its Origin (or, without one, its Referer) is the base URL's
// origin or the origin the request was addressed to. SameSite cookies do
// not suffice: another site on the same host (another port, or a sibling
// path served by someone else) is "same-site".
func (pg *Pages) sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		ref, err := url.Parse(r.Header.Get("Referer"))
		if err != nil || ref.Scheme == "" || ref.Host == "" {
			return false
		}
		origin = ref.Scheme + "://" + ref.Host
	}
	origin = strings.ToLower(origin)
	if b, err := url.Parse(pg.BaseURL); err == nil && b.Host != "" && origin == strings.ToLower(b.Scheme+"://"+b.Host) {
		return true
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return r.Host != "" && origin == strings.ToLower(scheme+"://"+r.Host)
}

// loginToken is the sign-in form's CSRF token for the login cookie's
// value: an HMAC of it, so a cookie planted by another site is useless
// without a token this server signed for it (signed double-submit).
func (pg *Pages) loginToken(cookie string) string {
	m := hmac.New(sha256.New, pg.loginKey)
	m.Write([]byte("login-csrf\x00"))
	m.Write([]byte(cookie))
	return hex.EncodeToString(m.Sum(nil))
}

// checkForm parses a form post (bounded) and checks its origin and its
// CSRF token against want; it answers 403 itself when they fail.
func (pg *Pages) checkForm(w http.ResponseWriter, r *http.Request, want string, s session, signedIn bool) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		pg.errorPage(w, r, s, signedIn, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return false
	}
	got := r.PostForm.Get("csrf")
	if !pg.sameOrigin(r) || want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		pg.errorPage(w, r, s, signedIn, http.StatusForbidden, "Form refused",
			"This form was not sent from a page of this server, or it has expired. Go back, reload the page and try again.")
		return false
	}
	return true
}

// --- pages ----------------------------------------------------------------

func (pg *Pages) errorPage(w http.ResponseWriter, r *http.Request, s session, signedIn bool, status int, heading, msg string) {
	p := Page{Title: heading, Data: ErrorData{Heading: heading, Message: msg}}
	if signedIn {
		u := s.user
		p.User, p.CSRF = &u, s.csrf
	}
	if err := render(w, status, "error", p); err != nil {
		pg.Log.Error("render error page", "err", err)
	}
}

// fail answers an unexpected error: 500 with a reference, the detail in
// the log.
func (pg *Pages) fail(w http.ResponseWriter, r *http.Request, err error) {
	ref := store.RandomHex(6)
	pg.Log.Error("page error", "method", r.Method, "path", r.URL.Path, "err", err, "reference", ref)
	pg.errorPage(w, r, session{}, false, http.StatusInternalServerError, "Something went wrong", "Internal error, reference "+ref+".")
}

func (pg *Pages) show(w http.ResponseWriter, r *http.Request, status int, name string, p Page) {
	if err := render(w, status, name, p); err != nil {
		pg.Log.Error("render page", "page", name, "err", err)
	}
}

func (pg *Pages) loginForm(w http.ResponseWriter, r *http.Request) {
	if _, ok, err := pg.current(r); err != nil {
		pg.fail(w, r, err)
		return
	} else if ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	pg.showLogin(w, r, http.StatusOK, LoginData{})
}

// showLogin renders the sign-in form with a fresh login cookie and its
// token.
func (pg *Pages) showLogin(w http.ResponseWriter, r *http.Request, status int, d LoginData) {
	c := store.RandomHex(32)
	if old, err := r.Cookie(pg.cookieName(loginCookie)); err == nil && isHex64(old.Value) {
		c = old.Value // another open sign-in form keeps working
	}
	pg.setCookie(w, loginCookie, c, 3600)
	if pg.SSO != nil {
		d.SSOName = pg.SSO.ProviderName
	}
	pg.show(w, r, status, "login", Page{Title: "Sign in", CSRF: pg.loginToken(c), Data: d})
}

func (pg *Pages) login(w http.ResponseWriter, r *http.Request) {
	want := ""
	if c, err := r.Cookie(pg.cookieName(loginCookie)); err == nil && len(c.Value) == 64 {
		want = pg.loginToken(c.Value)
	}
	if !pg.checkForm(w, r, want, session{}, false) {
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("username"))
	acct, err := pg.Auth.SignIn(r.Context(), httpauth.ClientIP(r), name, r.PostForm.Get("password"))
	var throttled *store.ThrottledError
	switch {
	case errors.Is(err, store.ErrBadCredentials):
		pg.showLogin(w, r, http.StatusUnauthorized, LoginData{Username: name, Error: "Incorrect username or password."})
		return
	case errors.As(err, &throttled):
		secs := int(throttled.RetryAfter.Round(time.Second) / time.Second)
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", fmt.Sprint(secs))
		pg.showLogin(w, r, http.StatusTooManyRequests, LoginData{Username: name,
			Error: fmt.Sprintf("Too many failed sign-ins from your address. Try again in %d seconds.", secs)})
		return
	case err != nil:
		pg.fail(w, r, err)
		return
	}
	// Rotate: whatever session the browser held ends, and a new id is
	// issued, so an id planted before sign-in never becomes signed in.
	if c, err := r.Cookie(pg.cookieName(sessionCookie)); err == nil && c.Value != "" {
		if err := pg.Store.DeleteSession(r.Context(), c.Value); err != nil {
			pg.fail(w, r, err)
			return
		}
	}
	id, _, err := pg.Store.CreateSession(r.Context(), acct.ID)
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	pg.setCookie(w, sessionCookie, id, int(store.SessionMaxAge/time.Second))
	pg.setCookie(w, loginCookie, "", -1)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (pg *Pages) logout(w http.ResponseWriter, r *http.Request) {
	s, ok, err := pg.current(r)
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	if !ok {
		pg.setCookie(w, sessionCookie, "", -1)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if !pg.checkForm(w, r, s.csrf, s, true) {
		return
	}
	if err := pg.Store.DeleteSession(r.Context(), s.id); err != nil {
		pg.fail(w, r, err)
		return
	}
	pg.setCookie(w, sessionCookie, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// facts is service.Service.Facts.
func (pg *Pages) facts(ctx context.Context, p store.Principal, ownerKind store.AccountKind, ownerID int64) (access.Facts, error) {
	return pg.service().Facts(ctx, p, ownerKind, ownerID)
}

func (pg *Pages) home(w http.ResponseWriter, r *http.Request) {
	s, ok, err := pg.current(r)
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	if !ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	d, err := pg.homeData(r, s)
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	if r.URL.Query().Get("done") == "deleted" {
		d.Notice = "The repository was deleted."
	}
	u := s.user
	pg.show(w, r, http.StatusOK, "home", Page{Title: "Your repositories", User: &u, CSRF: s.csrf, Data: d})
}

func (pg *Pages) repoHome(w http.ResponseWriter, r *http.Request) {
	m := repoPath().FindStringSubmatch(r.URL.EscapedPath())
	if m == nil {
		http.NotFound(w, r)
		return
	}
	rp, s, ok, readable := pg.readable(w, r, m[1], m[2])
	if !readable {
		return
	}
	d := RepoData{Repo: rp, HTTPURL: wire.HTTPCloneURL(pg.BaseURL, rp.FullName()), SSHURL: wire.SSHCloneURL(pg.SSHURL, rp.FullName())}
	if ok {
		f, err := pg.facts(r.Context(), s.principal(true), rp.OwnerKind, rp.OwnerID)
		if err != nil {
			pg.fail(w, r, err)
			return
		}
		d.CanSettings = access.Decide(s.principal(true), access.OpManageKeys, access.Web, access.Target{Repo: rp}, f).OK()
	}
	rd, err := pg.Git.Readme(r.Context(), rp)
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	d.Empty, d.NoBranch, d.ReadmeName = rd.Empty, rd.NoBranch, rd.Name
	if !rd.Empty && !rd.NoBranch {
		entries, err := pg.Git.Tree(r.Context(), rp, rp.DefaultBranch, "")
		if err != nil && !errors.Is(err, ErrNotFound) {
			pg.fail(w, r, err)
			return
		}
		d.Files = entryLinks(rp, rp.DefaultBranch, "", entries)
		d.CommitsURL = RepoURL(rp, "commits", rp.DefaultBranch, "")
	}
	d.BranchesURL, d.TagsURL = RepoURL(rp, "branches", "", ""), RepoURL(rp, "tags", "", "")
	if rd.Name != "" {
		if isMarkdown(rd.Name) {
			d.ReadmeHTML, err = RenderMarkdown(rd.Content)
			if err != nil {
				pg.fail(w, r, err)
				return
			}
		} else {
			d.ReadmeHTML = template.HTML("<pre>" + template.HTMLEscapeString(string(rd.Content)) + "</pre>")
		}
	}
	if ok {
		if d.EditURL, d.NewFileURL, err = pg.ideLinks(r.Context(), s, rp); err != nil {
			pg.fail(w, r, err)
			return
		}
	}
	page := Page{Title: rp.FullName(), Data: d}
	if ok {
		u := s.user
		page.User, page.CSRF = &u, s.csrf
	}
	pg.show(w, r, http.StatusOK, "repo", page)
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func isMarkdown(name string) bool {
	n := strings.ToLower(name)
	return strings.HasSuffix(n, ".md") || strings.HasSuffix(n, ".markdown")
}

// lazyRegexp compiles a path pattern at its first use, not at start-up:
// every git hook is a start of this binary, and the patterns (names of up
// to 100 characters) cost each push milliseconds.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
