// Package service holds the server's multi-step operations, written once
// for every edge that performs them: creating a repository (access check,
// row, directory, undo on failure, audit), deleting one (trash, rows,
// audit), changing its settings (UpdateRepo: HEAD, row, audit) and deploy
// keys, publishing a version (pin, row, audit), committing a Web IDE
// edit (access, mirror refusal, paths; the commit itself is its Committer's,
// which gitserver.WebCommitter implements), and the account
// operations (users, passwords, tokens, SSH keys, organisations and their
// members). Each operation asks the access policy (gitserver/access) on
// behalf of its Actor and writes its audit event in the same store
// transaction as its change (store.AuditEntry), so a change is never
// recorded without its audit event nor audited without happening.
//
// Its importers are the edges: ui (the JSON API, later web pages and the
// Web IDE) and cmd (the admin CLI, the first start). It imports only
// gitserver/store and gitserver/access; what it needs done to repository
// directories it declares itself (RepoFS, which gitserver.Repos
// implements), so it does not import package gitserver.
//
// Errors wrap the store sentinels (store.ErrInvalid, ErrNotFound,
// ErrForbidden, ErrConflict, ErrExists) with messages safe to show to a
// client; an access refusal is an *Error carrying the policy's Decision.
//
// Its tests also import store/sqlite (a real store in a temporary
// directory); the package itself does not.
//
// Imports: gitserver/store, gitserver/gitserver/access, gitserver/gitserver/scm
// Test imports: gitserver/store/sqlite
package service
