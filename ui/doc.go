// Package ui serves gitserver's JSON API under /api/v1 (docs/api.md §5, §7,
// §8); the web pages are its sub-package ui/web.
//
// ui imports store, httperr, ui/httpauth, gitserver/access (every access
// decision is access.Decide's) and ui/wire (every object it answers with is
// a wire struct). It does not import the git transport
// (package gitserver), not even in tests: what it needs done to
// repositories on disk (create, delete, pin a published commit) it asks of
// a RepoFS given to it by cmd.
//
// Imports: gitserver/store, gitserver/gitserver/httperr, gitserver/ui/httpauth, gitserver/gitserver/access, gitserver/gitserver/service, gitserver/ui/wire
package ui
