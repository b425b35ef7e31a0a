// Package scm is the narrow interface this server needs from an external
// SCM (GitHub and GitHub Enterprise, GitLab, Bitbucket Cloud, Bitbucket
// Server, Gitea and Forgejo): OAuth endpoints and scopes, the user's
// owners, creating a repository, its deploy keys and webhooks, looking a
// repository up by its stable id, and a branch's head. One small adapter per
// provider implements it; the mirror engine, the service layer and the
// SCM-configuration endpoints use it; nothing here knows about the store.
//
// Inbound webhooks are gitserver/scm/webhook's.
//
// The adapters are plain net/http and encoding/json (docs/decisions.md,
// "SCM adapters"); New picks one by Kind. scmtest holds their contract
// suite.
//
// Imports: none
// Test imports: gitserver/gitserver/scm/scmtest
package scm
