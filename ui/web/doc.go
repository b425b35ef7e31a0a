// Package web serves gitserver's web pages (docs/api.md §11): server-
// rendered HTML (html/template, templates, CSS and static scripts embedded
// with go:embed: the Web IDE's editor, the Copy buttons and the create
// dialog; no inline script, and every page but the editor works without
// script), signed in with cookie sessions kept in the store.
//
// Today: /login (sign-in form, the API's password check and throttle),
// /logout, / (the signed-in user's repositories) and /{owner}/{name} (the
// repository home: clone URLs, default branch, the README rendered with
// goldmark and sanitised with bluemonday, or push instructions when the
// repository is empty, the default branch's root files, nav links), and
// the browsing pages: /{owner}/{name}/tree/{ref}/{path...},
// /blob/{ref}/{path...} (highlighted with chroma, classes only, its
// stylesheet static/chroma.css; renders of files of 4 KiB and more kept by
// content in a 16 MiB LRU, files over 256 KiB shown as plain text, binary
// and > 1 MiB files not shown),
// /commits/{ref} (50 a page, ?page=N), /branches and /tags. A ref is one
// path segment (its slashes escaped: feature%2Fx); refs and paths are
// checked (no "..", no leading "-") before Git resolves them, and what
// does not resolve is the same 404 page as a repository one may not read.
// /{owner}/{name}/builds (the Builds tab, with the
// Publish modal as a <dialog> the server renders open for ?publish=ID),
// POST /{owner}/{name}/builds/{id}/publish (through service.Publish, as the
// API) and /{owner}/{name}/versions.
// /user/settings (the account page: password, tokens, SSH keys) and its
// POSTs .../password, .../tokens, .../tokens/{id}/revoke, .../keys and
// .../keys/{id}/delete, each through gitserver/service; a new password or
// token is shown once, in the POST's answer (no-store), never again.
// Its "Source Code Management" section connects (POST .../scm/{id}/connect:
// a page that sends the browser to the provider; the API's callback
// accepts this session through SessionPrincipal) and disconnects the
// user's SCM accounts. /admin is the admin panel (users, organisations and
// members, SCM configurations, system status: ?tab=...), its forms posted
// under /-/admin/... (admin.go); anyone but an admin gets 404.
//
// The Web IDE (ide.go): GET /{owner}/{name}/edit[/{path...}] lists the
// default branch's files (EditorGit) as links and opens one in a form
// (a <textarea> labelled "File content", which static/ide.js, a CodeMirror
// 6 bundle built from assets/ by `make assets`, upgrades to an editor in a
// shadow root; the form posts the textarea either way), or the New file
// form (?new=1). POST /{owner}/{name}/edit commits (create, edit or rename,
// delete) through service.CommitFiles with the page's parent commit; a
// refusal shows the form again with the user's text. Mirrors show a note
// and no forms; readers who may not write get 403, others 404.
//
// /oidc/login and /oidc/callback (when cmd sets Pages.SSO): single sign-on
// through an OpenID Connect provider (package ui/oidc). The pending sign-in
// (state, nonce, PKCE verifier) is kept in the store and its state in a
// cookie of the browser that started it; the first sign-in creates the
// account (or links a local one, if the admin allows it); every page
// request of a linked user refreshes its grant once per interval (and
// SweepGrants, which cmd runs, those of users who only use git), and a
// refresh the provider refuses (invalid_grant) disables the account.
// /{owner}/{name}/settings (reposettings.go: visibility and default branch
// through service.UpdateRepo, deploy keys, typed-confirmation delete, and
// for mirrors View Key, View Details, Fetch now, Repair), and the
// create-repository modal: /-/new renders / with the <dialog> open
// (static/dialog.js opens it in place), POST /-/new creates through
// service.CreateRepo, CreateHosted or CreateMirror (newrepo.go). The clone
// URLs' Copy buttons are static/copy.js (hidden without script).
//
// Every page decides access through gitserver/access (transport Web), as
// the API does: a page shows what the API would let that principal read.
// Every state-changing form carries a CSRF token (the session's; before
// sign-in, a signed double-submit cookie) and is checked against the
// request's Origin (or Referer). Pages carry a strict Content-Security-
// Policy (docs/decisions.md "Web pages").
//
// It is an edge, like ui (the API): it imports neither the git transport
// (package gitserver) nor ui. What it needs of repositories on disk (the
// README, trees, blobs, logs, refs) it asks of a Git
// given to it by cmd. Operations that change state go through
// gitserver/service, as the API's do (httperr gives their refusals the
// API's status and message).
//
// Imports: gitserver/store, gitserver/ui/httpauth, gitserver/ui/oidc, gitserver/ui/wire, gitserver/gitserver/access, gitserver/gitserver/service, gitserver/gitserver/httperr
// Test imports: gitserver/store/sqlite
package web
