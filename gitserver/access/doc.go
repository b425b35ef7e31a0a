// Package access is the server's one access policy: every decision about
// who may do what to which repository, organisation or build queue, for
// every transport (smart HTTP git, SSH git, the JSON API, and later web
// pages). Its Decide is a pure function of the principal, the operation,
// the transport, the target and a few facts the caller looked up (the
// principal's role in the owning organisation, the server's
// --anonymous-read); it does no I/O.
//
// The rules are docs/api.md §4 and §5; the choices behind them
// are in docs/decisions.md ("One access policy").
//
// It imports only gitserver/store (for the domain types). gitserver (both
// git transports, through Server.Resolve) and ui (the JSON API) import it;
// nothing else should decide access.
//
// Imports: gitserver/store
package access
