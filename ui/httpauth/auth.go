package httpauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"gitserver/store"
)

// Authenticator checks credentials.
type Authenticator struct {
	Store    store.Store
	Throttle *Throttle

	pepper []byte
	mu     sync.Mutex
	cache  map[[32]byte]cached
}

type cached struct {
	userID  int64
	hash    string // the stored bcrypt hash when verified
	expires time.Time
}

// forget drops a cache entry.
func (a *Authenticator) forget(key [32]byte) {
	a.mu.Lock()
	delete(a.cache, key)
	a.mu.Unlock()
}

// passwordCacheTTL bounds how long a verified password skips bcrypt. A
// password change invalidates entries at once (the stored hash differs),
// and so does disabling the account (checked on every hit).
const passwordCacheTTL = 5 * time.Minute

// New returns an Authenticator.
func New(s store.Store, t *Throttle) *Authenticator {
	return &Authenticator{Store: s, Throttle: t, pepper: []byte(store.RandomHex(32)), cache: map[[32]byte]cached{}}
}

// ClientIP is the request's remote address without the port.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Authenticate returns the request's principal. A request without
// credentials returns store.ErrNoCredentials (the caller decides whether
// anonymous access applies); wrong credentials return
// store.ErrBadCredentials; a throttled address gets *store.ThrottledError.
func (a *Authenticator) Authenticate(r *http.Request) (store.Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return store.Principal{}, store.ErrNoCredentials
	}
	// The attempt takes its throttle slot before the (bcrypt) check, so
	// concurrent guesses cannot all pass a check of earlier failures.
	done, wait := a.Throttle.Begin(ClientIP(r))
	if wait > 0 {
		return store.Principal{}, &store.ThrottledError{RetryAfter: wait}
	}
	failed := false
	defer func() { done(failed) }() // also if the check panics
	p, err := a.check(r.Context(), h)
	failed = errors.Is(err, store.ErrBadCredentials)
	if err != nil {
		return store.Principal{}, err
	}
	return p, nil
}

// tokenUserPlaceholders are user names that git credential helpers and CI
// systems send with a token; the token alone then identifies the account.
var tokenUserPlaceholders = map[string]bool{"x-access-token": true, "oauth2": true, "token": true, "x-token-auth": true}

func (a *Authenticator) check(ctx context.Context, h string) (store.Principal, error) {
	scheme, rest, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		secret := strings.TrimSpace(rest)
		if strings.HasPrefix(secret, store.CloneTokenPrefix) {
			return a.cloneToken(ctx, secret)
		}
		return a.token(ctx, "", secret)
	case strings.EqualFold(scheme, "Basic"):
		r := &http.Request{Header: http.Header{"Authorization": {h}}}
		name, secret, ok := r.BasicAuth()
		if ok && strings.HasPrefix(secret, store.CloneTokenPrefix) {
			// A clone token names no account: any user name goes.
			return a.cloneToken(ctx, secret)
		}
		if !ok || name == "" || secret == "" {
			return store.Principal{}, store.ErrBadCredentials
		}
		if strings.HasPrefix(secret, store.TokenPrefix) {
			if tokenUserPlaceholders[strings.ToLower(name)] {
				name = ""
			}
			return a.token(ctx, name, secret)
		}
		return a.password(ctx, name, secret)
	}
	return store.Principal{}, store.ErrBadCredentials
}

func (a *Authenticator) token(ctx context.Context, name, secret string) (store.Principal, error) {
	acct, tok, err := a.Store.CheckToken(ctx, name, secret)
	if errors.Is(err, store.ErrBadCredentials) {
		return store.Principal{}, store.ErrBadCredentials
	}
	if err != nil {
		return store.Principal{}, err
	}
	return store.Principal{User: &acct, Token: &tok}, nil
}

// cloneToken checks a build's clone token (store.ClaimBuild): a SHA-256
// lookup, no password hash.
func (a *Authenticator) cloneToken(ctx context.Context, secret string) (store.Principal, error) {
	g, err := a.Store.CheckCloneToken(ctx, secret)
	if errors.Is(err, store.ErrBadCredentials) {
		return store.Principal{}, store.ErrBadCredentials
	}
	if err != nil {
		return store.Principal{}, err
	}
	return store.Principal{Build: &g}, nil
}

func (a *Authenticator) password(ctx context.Context, name, secret string) (store.Principal, error) {
	mac := hmac.New(sha256.New, a.pepper)
	mac.Write([]byte(strings.ToLower(name)))
	mac.Write([]byte{0})
	mac.Write([]byte(secret))
	var key [32]byte
	copy(key[:], mac.Sum(nil))

	a.mu.Lock()
	c, ok := a.cache[key]
	a.mu.Unlock()
	if ok && time.Now().Before(c.expires) {
		// Re-validated on every hit, in the one read the hit makes: the
		// stored hash (a password change) and the disabled flag (an admin
		// taking access back) end the entry's use at once.
		acct, hash, err := a.Store.UserWithPasswordHash(ctx, c.userID)
		if err == nil && hmac.Equal([]byte(hash), []byte(c.hash)) {
			if acct.Disabled {
				a.forget(key)
				return store.Principal{}, store.ErrBadCredentials
			}
			return store.Principal{User: &acct}, nil
		}
	}
	acct, err := a.Store.CheckPassword(ctx, name, secret)
	if errors.Is(err, store.ErrBadCredentials) {
		return store.Principal{}, store.ErrBadCredentials
	}
	if err != nil {
		return store.Principal{}, err
	}
	if _, hash, err := a.Store.UserWithPasswordHash(ctx, acct.ID); err == nil {
		a.mu.Lock()
		if len(a.cache) > 10000 {
			clear(a.cache)
		}
		a.cache[key] = cached{userID: acct.ID, hash: hash, expires: time.Now().Add(passwordCacheTTL)}
		a.mu.Unlock()
	}
	return store.Principal{User: &acct}, nil
}

// SignIn checks an account name and password typed into the web sign-in
// form, under the same per-address throttle as Authenticate (clientIP is
// the request's, ClientIP). Only a password signs in here: a token typed
// as the password is refused like a wrong password. Any failure to
// authenticate (an unknown name, a wrong password, a disabled account) is
// store.ErrBadCredentials, never saying which; a throttled address gets
// *store.ThrottledError.
func (a *Authenticator) SignIn(ctx context.Context, clientIP, name, password string) (store.Account, error) {
	done, wait := a.Throttle.Begin(clientIP)
	if wait > 0 {
		return store.Account{}, &store.ThrottledError{RetryAfter: wait}
	}
	failed := false
	defer func() { done(failed) }()
	if name == "" || password == "" || strings.HasPrefix(password, store.TokenPrefix) || strings.HasPrefix(password, store.CloneTokenPrefix) {
		failed = true
		return store.Account{}, store.ErrBadCredentials
	}
	p, err := a.password(ctx, name, password)
	failed = errors.Is(err, store.ErrBadCredentials)
	if err != nil {
		return store.Account{}, err
	}
	return *p.User, nil
}
