// Package httpauth authenticates HTTP requests for both the git transport
// and the JSON API: Basic (account name + password or token) and Bearer
// tokens, a short-lived cache of verified passwords, and the per-address
// throttle on failed sign-ins (contract §3-4).
//
// It imports store only; gitserver and ui import it.
package httpauth
