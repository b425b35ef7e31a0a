package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"golang.org/x/oauth2"

	"gitserver/store"
	"gitserver/ui/httpauth"
	"gitserver/ui/oidc"
)

// SSO is single sign-on through an OpenID Connect provider (issue 16,
// docs/api.md §12). cmd sets Pages.SSO when --oidc-issuer is given.
type SSO struct {
	Client *oidc.Client
	// ProviderName is shown on the sign-in page: "Sign in with <name>".
	ProviderName string
	// AllowLinking lets the first sign-in of an identity whose name is
	// taken by a local user (not linked yet) link to that user. Off: such
	// a sign-in is refused.
	AllowLinking bool
	// RefreshInterval is how often, at most, a signed-in OIDC user's grant
	// is refreshed with the provider (DefaultRefreshInterval when 0); a
	// refresh the provider refuses (invalid_grant) disables the account.
	RefreshInterval time.Duration

	mu  sync.Mutex
	due map[int64]time.Time // user id → when its link is worth asking the store about again

	startsOnce sync.Once
	starts     *httpauth.Throttle // sign-ins started per client (startThrottle)
}

// Sign-ins a client may start within ssoStartWindow: each start stores a
// pending sign-in for ssoStateTTL, for anyone who asks, so the starts of
// one client are bounded (a client is an IPv4 address or an IPv6 /64, as
// for the sign-in throttle; behind a reverse proxy, every user shares the
// proxy's).
const (
	ssoStartLimit  = 120
	ssoStartWindow = 10 * time.Minute
)

func (s *SSO) startThrottle() *httpauth.Throttle {
	s.startsOnce.Do(func() { s.starts = httpauth.NewThrottle(ssoStartLimit, ssoStartWindow) })
	return s.starts
}

// DefaultRefreshInterval is SSO.RefreshInterval's default.
const DefaultRefreshInterval = 10 * time.Minute

// ssoStateTTL is how long a sign-in started at the provider may take.
const ssoStateTTL = 10 * time.Minute

// ssoCookie binds a pending sign-in to the browser that started it: it
// holds the state, which the callback must carry too, so a callback URL
// sent to someone else (login CSRF) signs no one in.
const ssoCookie = "gitserver_oidc"

// BuiltinAdmin is the account the first start creates: it is never linked
// to an identity (it stays the break-glass account).
const BuiltinAdmin = "admin"

func (s *SSO) interval() time.Duration {
	if s.RefreshInterval > 0 {
		return s.RefreshInterval
	}
	return DefaultRefreshInterval
}

func (pg *Pages) registerSSO(r *mux.Router) {
	if pg.SSO == nil {
		return
	}
	r.Handle("/oidc/login", pg.headers(http.HandlerFunc(pg.ssoStart))).Methods(http.MethodGet)
	r.Handle("/oidc/callback", pg.headers(http.HandlerFunc(pg.ssoCallback))).Methods(http.MethodGet)
}

// ssoStart sends the browser to the provider with a fresh state, nonce
// and PKCE verifier (kept server-side; the state also in a cookie).
func (pg *Pages) ssoStart(w http.ResponseWriter, r *http.Request) {
	if _, ok, err := pg.current(r); err != nil {
		pg.fail(w, r, err)
		return
	} else if ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	// Every start counts (as a failure would for the password throttle):
	// the state row it stores lives for ssoStateTTL whether or not the
	// sign-in completes.
	done, wait := pg.SSO.startThrottle().Begin(httpauth.ClientIP(r))
	if done == nil {
		secs := max(int(wait.Round(time.Second)/time.Second), 1)
		w.Header().Set("Retry-After", fmt.Sprint(secs))
		pg.ssoRefused(w, r, http.StatusTooManyRequests, &oidc.Refusal{
			Msg: fmt.Sprintf("Too many sign-ins were started from your address. Try again in %d seconds.", secs),
			Err: errors.New("sign-in starts throttled")})
		return
	}
	done(true)
	st := store.OIDCState{State: store.RandomHex(32), Nonce: store.RandomHex(16), Verifier: oauth2.GenerateVerifier(),
		ExpiresAt: pg.Store.Now().Add(ssoStateTTL)}
	u, err := pg.SSO.Client.AuthCodeURL(r.Context(), st.State, st.Nonce, st.Verifier)
	if err != nil {
		pg.ssoRefused(w, r, http.StatusBadGateway, err)
		return
	}
	if err := pg.Store.CreateOIDCState(r.Context(), st); err != nil {
		pg.fail(w, r, err)
		return
	}
	pg.setCookie(w, ssoCookie, st.State, int(ssoStateTTL/time.Second))
	http.Redirect(w, r, u, http.StatusSeeOther)
}

// ssoRefused shows why a sign-in failed: a *oidc.Refusal's message (its
// detail goes to the log), or a generic one.
func (pg *Pages) ssoRefused(w http.ResponseWriter, r *http.Request, status int, err error) {
	msg := "The sign-in could not be completed. Try again."
	var ref *oidc.Refusal
	if errors.As(err, &ref) {
		msg = ref.Msg
	}
	pg.Log.Warn("oidc sign-in refused", "status", status, "err", err, "client_ip", httpauth.ClientIP(r))
	pg.errorPage(w, r, session{}, false, status, "Sign-in refused", msg)
}

// safeCode keeps what of a provider's error code is safe to show.
func safeCode(s string) string {
	var b strings.Builder
	for _, c := range store.Truncate(s, 64) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// ssoCallback completes a sign-in: the state (this browser's, stored, not
// used, not expired), the code exchange and the ID token's checks, then
// the account (found by its link, created, or linked) and a new session.
func (pg *Pages) ssoCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pg.setCookie(w, ssoCookie, "", -1)
	if e := q.Get("error"); e != "" {
		pg.ssoRefused(w, r, http.StatusForbidden, &oidc.Refusal{
			Msg: fmt.Sprintf("The identity provider did not sign you in (%s). Sign in again, or ask an administrator.", safeCode(e)),
			Err: fmt.Errorf("provider error %q: %q", safeCode(e), store.Truncate(q.Get("error_description"), 200))})
		return
	}
	state, code := q.Get("state"), q.Get("code")
	c, err := r.Cookie(pg.cookieName(ssoCookie))
	if state == "" || code == "" || err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		pg.ssoRefused(w, r, http.StatusBadRequest, &oidc.Refusal{
			Msg: "This sign-in was not started in this browser, or it has expired. Sign in again.",
			Err: errors.New("missing or mismatched state")})
		return
	}
	st, err := pg.Store.ConsumeOIDCState(r.Context(), state)
	if errors.Is(err, store.ErrNotFound) {
		pg.ssoRefused(w, r, http.StatusBadRequest, &oidc.Refusal{
			Msg: "This sign-in has expired or was completed already. Sign in again.", Err: err})
		return
	}
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	id, err := pg.SSO.Client.Exchange(r.Context(), code, st.Verifier, st.Nonce)
	if err != nil {
		pg.ssoRefused(w, r, http.StatusForbidden, err)
		return
	}
	acct, status, msg, err := pg.ssoAccount(r.Context(), id)
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	if msg != "" {
		pg.ssoRefused(w, r, status, &oidc.Refusal{Msg: msg, Err: fmt.Errorf("identity %q of %s (name %q)", store.Truncate(id.Subject, 100), id.Issuer, store.Truncate(id.Username, 100))})
		return
	}
	if old, err := r.Cookie(pg.cookieName(sessionCookie)); err == nil && old.Value != "" {
		if err := pg.Store.DeleteSession(r.Context(), old.Value); err != nil {
			pg.fail(w, r, err)
			return
		}
	}
	sid, _, err := pg.Store.CreateSession(r.Context(), acct.ID)
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	pg.SSO.signedIn(acct.ID)
	pg.setCookie(w, sessionCookie, sid, int(store.SessionMaxAge/time.Second))
	pg.setCookie(w, loginCookie, "", -1)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// ssoAccount finds, creates or links the account of a verified identity.
// A refusal is a status and a message for the user (nothing changed).
func (pg *Pages) ssoAccount(ctx context.Context, id oidc.Identity) (store.Account, int, string, error) {
	signin := func(name string) store.AuditEntry {
		return store.AuditEntry{Actor: name, Action: "user.signin", Target: name, Detail: "oidc " + id.Issuer}
	}
	acct, _, err := pg.Store.OIDCUser(ctx, id.Issuer, id.Subject)
	switch {
	case err == nil:
		if acct.Disabled {
			return acct, http.StatusForbidden, "Your account here is disabled. Ask an administrator.", nil
		}
		audit := []store.AuditEntry{signin(acct.Name)}
		admin := id.Admin
		if admin != nil && *admin != acct.IsAdmin {
			audit = append(audit, adminEntry(acct.Name, *admin, id.Issuer))
		} else {
			admin = nil
		}
		a, err := pg.Store.OIDCSignedIn(ctx, acct.ID, id.RefreshToken, admin, audit...)
		if errors.Is(err, store.ErrConflict) {
			// The last enabled admin keeps the role; the sign-in goes on.
			pg.Log.Warn("oidc: the admin claim would demote the only enabled admin; kept", "user", acct.Name)
			a, err = pg.Store.OIDCSignedIn(ctx, acct.ID, id.RefreshToken, nil, signin(acct.Name))
		}
		return a, 0, "", err
	case !errors.Is(err, store.ErrNotFound):
		return store.Account{}, 0, "", err
	}

	if id.NameRefusal != nil {
		return store.Account{}, http.StatusForbidden, id.NameRefusal.Msg, nil
	}
	name := id.Username
	if !store.ValidName(name) || IsReserved(name) {
		return store.Account{}, http.StatusBadRequest, fmt.Sprintf(
			"The identity provider names you %q, which is not a valid account name here (letters, digits, and _ . - after the first character; at most 100; not a reserved name). Ask an administrator.",
			store.Truncate(name, 100)), nil
	}
	admin := id.Admin != nil && *id.Admin
	existing, err := pg.Store.AccountByName(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		audit := []store.AuditEntry{
			{Actor: "oidc", Action: "user.create", Target: name, Detail: fmt.Sprintf("admin=%v oidc %s", admin, id.Issuer)},
			signin(name),
		}
		a, err := pg.Store.CreateOIDCUser(ctx, store.NewOIDCUser{Name: name, Admin: admin, Issuer: id.Issuer, Subject: id.Subject, RefreshToken: id.RefreshToken}, audit...)
		if errors.Is(err, store.ErrExists) {
			// Taken in between (another sign-in, or the API).
			return store.Account{}, http.StatusConflict, fmt.Sprintf("An account named %q was created here at the same moment. Sign in again.", name), nil
		}
		return a, 0, "", err
	case err != nil:
		return store.Account{}, 0, "", err
	}
	taken := fmt.Sprintf("An account named %q exists here already and is not linked to your identity. Ask an administrator to link it or to rename one of the accounts.", existing.Name)
	if !pg.SSO.AllowLinking || existing.Kind != store.KindUser || strings.EqualFold(existing.Name, BuiltinAdmin) || existing.Disabled {
		return store.Account{}, http.StatusConflict, taken, nil
	}
	if _, err := pg.Store.OIDCLinkOf(ctx, existing.ID); err == nil {
		return store.Account{}, http.StatusConflict, taken, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.Account{}, 0, "", err
	}
	if _, err := pg.Store.LinkOIDCUser(ctx, store.NewOIDCUser{Name: existing.Name, Issuer: id.Issuer, Subject: id.Subject},
		store.AuditEntry{Actor: "oidc", Action: "user.link", Target: existing.Name, Detail: "oidc " + id.Issuer}); errors.Is(err, store.ErrExists) {
		return store.Account{}, http.StatusConflict, taken, nil
	} else if err != nil {
		return store.Account{}, 0, "", err
	}
	audit := []store.AuditEntry{signin(existing.Name)}
	var set *bool
	if id.Admin != nil && *id.Admin != existing.IsAdmin {
		set = id.Admin
		audit = append(audit, adminEntry(existing.Name, *id.Admin, id.Issuer))
	}
	a, err := pg.Store.OIDCSignedIn(ctx, existing.ID, id.RefreshToken, set, audit...)
	if errors.Is(err, store.ErrConflict) {
		a, err = pg.Store.OIDCSignedIn(ctx, existing.ID, id.RefreshToken, nil, signin(existing.Name))
	}
	return a, 0, "", err
}

func adminEntry(name string, admin bool, issuer string) store.AuditEntry {
	return store.AuditEntry{Actor: "oidc", Action: "user.admin", Target: name, Detail: fmt.Sprintf("admin=%v by the admin claim of %s", admin, issuer)}
}

// signedIn notes that userID just signed in (the store's RefreshedAt is
// now): its grant is next checked after the interval.
func (s *SSO) signedIn(userID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.due == nil {
		s.due = map[int64]time.Time{}
	}
	s.due[userID] = time.Now().Add(s.interval())
}

// checkGrant asks the provider, at most once per refresh interval,
// whether it still accepts the signed-in user: it refreshes the grant
// behind the user's link (local accounts have none). It returns false when
// the provider refused for good: the account has been disabled (its
// sessions, password, tokens and keys stop working).
func (pg *Pages) checkGrant(ctx context.Context, acct store.Account) bool {
	s := pg.SSO
	now := time.Now()
	s.mu.Lock()
	if s.due == nil {
		s.due = map[int64]time.Time{}
	}
	if next, ok := s.due[acct.ID]; ok && now.Before(next) {
		s.mu.Unlock()
		return true
	}
	s.due[acct.ID] = now.Add(s.interval())
	if len(s.due) > 100000 {
		clear(s.due)
	}
	s.mu.Unlock()
	return pg.refreshGrant(ctx, acct)
}

// SweepGrants checks the grants of every linked user whose check is due
// (listed limit at a time), as a page request of theirs would: a user who
// only uses git (a regenerated password, tokens, keys) and has left is
// disabled too. cmd calls it once per refresh interval. It returns how
// many accounts it disabled.
func (pg *Pages) SweepGrants(ctx context.Context, limit int) (int, error) {
	disabled := 0
	// A user whose claim fails stays due: seen keeps the sweep from
	// checking it again, and ends it when a batch brings no one new.
	seen := map[int64]bool{}
	for ctx.Err() == nil {
		ids, err := pg.Store.OIDCRefreshesDue(ctx, pg.SSO.interval(), limit)
		if err != nil {
			return disabled, err
		}
		fresh := 0
		for _, id := range ids {
			if ctx.Err() != nil {
				break
			}
			if seen[id] {
				continue
			}
			seen[id] = true
			fresh++
			acct, err := pg.Store.AccountByID(ctx, id)
			if err != nil {
				continue // deleted in between
			}
			if !pg.refreshGrant(ctx, acct) {
				disabled++
			}
		}
		if len(ids) < limit || fresh == 0 {
			break
		}
	}
	return disabled, ctx.Err()
}

// SweepInterval is how often cmd should call SweepGrants.
func (s *SSO) SweepInterval() time.Duration { return s.interval() }

// refreshGrant claims and performs the refresh of acct's grant when it is
// due (ClaimOIDCRefresh: one caller wins on any number of nodes); false
// when the provider refused for good and the account was disabled.
func (pg *Pages) refreshGrant(ctx context.Context, acct store.Account) bool {
	s := pg.SSO
	l, claimed, err := pg.Store.ClaimOIDCRefresh(ctx, acct.ID, s.interval())
	if err != nil || !claimed || l.RefreshToken == "" {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			pg.Log.Warn("oidc: refresh claim", "user", acct.Name, "err", err)
		}
		return true
	}
	rt, err := s.Client.Refresh(ctx, l.RefreshToken)
	if errors.Is(err, oidc.ErrRevoked) {
		pg.Log.Warn("oidc: the identity provider refused the refresh; disabling the account", "user", acct.Name, "err", err)
		_, derr := pg.Store.SetDisabled(ctx, acct.Name, true, store.AuditEntry{Actor: "oidc", Action: "user.disable", Target: acct.Name,
			Detail: "the identity provider refused the refresh (invalid_grant)"})
		if derr != nil {
			// The last enabled admin is not disabled (someone must
			// administer the server), but its credentials stop all the
			// same: the person has left.
			pg.Log.Error("oidc: disable the account the provider refused; ending its credentials instead", "user", acct.Name, "err", derr)
			pg.endCredentials(ctx, acct)
		}
		return false
	}
	if err != nil {
		// The provider is down or unreachable: not a verdict on the user.
		pg.Log.Warn("oidc: refresh failed; retried after the interval", "user", acct.Name, "err", err)
		return true
	}
	if rt != l.RefreshToken {
		if _, err := pg.Store.SetOIDCRefreshToken(ctx, acct.ID, l.Generation, rt); err != nil {
			pg.Log.Warn("oidc: store the refreshed token", "user", acct.Name, "err", err)
		}
	}
	return true
}

// endCredentials stops every credential of acct, which the provider no
// longer accepts but which could not be disabled (the only enabled admin):
// its password becomes a random one nobody knows, its tokens and SSH keys
// are deleted, its sessions end; each audited. Failures are logged (the
// next check tries again).
func (pg *Pages) endCredentials(ctx context.Context, acct store.Account) {
	why := "the identity provider refused the refresh (invalid_grant); the only enabled admin is not disabled"
	fail := func(what string, err error) {
		pg.Log.Error("oidc: end the credentials of the account the provider refused", "user", acct.Name, "what", what, "err", err)
	}
	// SetPassword also ends the sessions.
	if err := pg.Store.SetPassword(ctx, acct.Name, store.RandomHex(32),
		store.AuditEntry{Actor: "oidc", Action: "user.passwd", Target: acct.Name, Detail: why}); err != nil {
		fail("password", err)
		if _, err := pg.Store.DeleteUserSessions(ctx, acct.ID); err != nil {
			fail("sessions", err)
		}
	}
	if toks, err := pg.Store.Tokens(ctx, acct.ID); err != nil {
		fail("tokens", err)
	} else {
		for _, t := range toks {
			if err := pg.Store.DeleteToken(ctx, acct.ID, t.ID, store.AuditEntry{Actor: "oidc", Action: "token.revoke", Target: acct.Name,
				Detail: fmt.Sprintf("token %q: %s", t.Name, why)}); err != nil && !errors.Is(err, store.ErrNotFound) {
				fail("token", err)
			}
		}
	}
	if keys, err := pg.Store.UserKeys(ctx, acct.ID); err != nil {
		fail("keys", err)
	} else {
		for _, k := range keys {
			if err := pg.Store.DeleteUserKey(ctx, acct.ID, k.ID, store.AuditEntry{Actor: "oidc", Action: "key.delete", Target: acct.Name,
				Detail: fmt.Sprintf("key %s: %s", k.Fingerprint, why)}); err != nil && !errors.Is(err, store.ErrNotFound) {
				fail("key", err)
			}
		}
	}
}
