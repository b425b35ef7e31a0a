// Package webhook is the provider-specific half of inbound SCM webhooks
// (mirrored repositories, POST /hooks/scm/{hook_id}): it authenticates a
// delivery from GitHub / GitHub Enterprise Server, GitLab, Bitbucket
// Cloud, Bitbucket Server (Data Center) or Gitea / Forgejo, and turns a
// verified one into a provider-neutral Event. It does no I/O beyond
// reading the body it is given, keeps no state and knows nothing of
// mirrors, stores or HTTP status codes.
//
// The endpoint uses it in this order, and never decodes a body before
// Verify accepted it:
//
//	body, err := webhook.ReadBody(r.Body)         // ErrTooLarge -> 413
//	p := hook.Provider                            // recorded with the hook; webhook.Detect(r.Header) for a hook that has none,
//	                                              // and a Detect answer naming another provider is a refusal
//	err = webhook.Verify(p, r.Header, body, hook.Secret) // ErrNoSignature, ErrBadSignature, ErrNoSecret -> 401
//	ev, err := webhook.Parse(p, r.Header, body)   // ErrUnsupported -> 2xx, ignored; ErrMalformed -> 400
//	// ev.Kind == Ping -> 200; Push -> dedupe on ev.DeliveryID, 202, sync in the background
//
// What each provider sends and how it signs it is in the SCM providers'
// fact sheet (scm-providers.md §1, §3–§7); the choices are in
// docs/decisions.md ("Inbound webhooks: verify before parsing"). Only
// the standard library is used: the webhook libraries that exist parse
// before they verify, or skip verification when a header is missing
// (go-scm), or cover one provider each.
//
// Who may import it: the mirror and webhook-endpoint code of gitserver,
// and later the SCM adapters under gitserver/scm. It imports no package
// of this module.
//
// Imports: none
package webhook
