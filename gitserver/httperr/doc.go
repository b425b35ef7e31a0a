// Package httperr is the one error value of gitserver's HTTP edges: an
// Error carries a status, a machine-readable code, a message safe to show
// to any client and, apart, the internal cause that only the log sees. The
// JSON API renders it as the contract's error object (WriteJSON), the git
// transport as the plain text git prints after "fatal:" (WriteText); web
// pages will render it as HTML. From classifies any error once: store
// errors by their sentinel with the message the store wrote for clients,
// credential errors as 401 (with a Basic challenge) or 429 (with
// Retry-After), anything else as a 500 that reveals nothing.
//
// Imports: gitserver/store
//
// Both edges (gitserver, ui) and cmd import it; it imports neither.
package httperr
