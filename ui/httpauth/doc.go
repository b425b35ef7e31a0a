// Package httpauth authenticates HTTP requests for both the git transport
// and the JSON API: Basic (account name + password or token) and Bearer
// tokens, a short-lived cache of verified passwords, and the per-address
// throttle on failed sign-ins (per IPv4 address or IPv6 /64; docs/api.md
// §3-4).
//
// Its errors are the store's credential errors (store.ErrNoCredentials,
// store.ErrBadCredentials, *store.ThrottledError); httperr turns them into
// 401 and 429 answers.
//
// It imports store only; ui and cmd import it. The git transport does not:
// it declares the gitserver.Authenticator it needs, and cmd passes this
// package's Authenticator in.
//
// Imports: gitserver/store
// Test imports: gitserver/store/sqlite
package httpauth
