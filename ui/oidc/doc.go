// Package oidc is gitserver's OpenID Connect relying party (issue 16,
// docs/api.md §12): discovery (/.well-known/openid-configuration, on first
// use), the authorization URL with state, nonce and a PKCE (S256)
// challenge, the code exchange with the verifier, the ID token's checks
// (signature against the provider's keys, issuer, audience, expiry, nonce),
// the claims this server reads (the account name, the admin claim, the
// allowed e-mail domains and groups), and the refresh that tells whether
// the provider still accepts a user (ErrRevoked on invalid_grant).
//
// It keeps no state of sign-ins and knows nothing of accounts: the pages
// (ui/web) store the pending sign-in, create or find the account, and
// decide what a refusal shows. It is built on github.com/coreos/go-oidc/v3
// and golang.org/x/oauth2.
//
// Imports: none
package oidc
