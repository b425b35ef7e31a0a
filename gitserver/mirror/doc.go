// Package mirror keeps mirrored repositories (docs/api.md §9) in step with
// their upstreams: it validates mirror URLs, makes or checks deploy keys,
// pins the upstream's host keys, fetches with the system's C git over the
// system's OpenSSH client with the repository's key only, reports history
// rewrites, queues one build per new default-branch head (hooks.Trigger),
// schedules syncs (webhook, interval, on demand; coalesced per repository,
// bounded in number and time) and serves the inbound webhooks
// (POST /hooks/scm/{hook_id}) through gitserver/scm/webhook.
//
// It is an edge of its own beside the git transport and the API: the
// service (gitserver/service) and the API (ui) reach it through the
// interfaces they declare (service.Mirrorer), wired by cmd.
//
// Imports: gitserver/store, gitserver/hooks, gitserver/gitserver, gitserver/gitserver/httperr, gitserver/gitserver/packcache, gitserver/gitserver/scm/webhook
// Test imports: gitserver/store/sqlite, gitserver/store/postgres, gitserver/store/postgres/pgtest
package mirror
