// Package scmtest is the contract suite of the SCM adapters (gitserver/scm):
// Run drives one scm.Provider through everything the server does on a
// provider (the user and the owners, creating a repository twice, lookups by
// name and by stable id, deploy keys, webhooks, a branch head, the
// configuration check) and through its failures (an expired token, a
// foreign owner, missing repositories, rate limits and outages where the
// fixture can inject them), checking that every answer maps to the scm
// sentinels and that no error quotes a token.
//
// It is for tests: gitserver/scm runs it over each adapter against an
// httptest fake, cmd/gitserver over the Gitea adapter against a real Gitea.
//
// Imports: gitserver/gitserver/scm
package scmtest
