// Package gitserver serves hosted repositories to git clients: smart HTTP
// (and, in ssh.go, SSH) transports that run the system's C git
// (upload-pack / receive-pack), repository directories and their creation,
// and the installation of the hooks git runs for every push.
//
// Repository directories are derived from the repository's numeric id
// (<root>/<id>.git), never from names in a URL, so no request text reaches
// the filesystem. Every git process is tied to its request's context and
// killed with its process group when the request ends.
//
// webcommit.go writes Web IDE commits (WebCommitter, a
// service.Committer) with plumbing on the bare repository: a temporary
// index, commit-tree, update-ref with the old value, the push policy, and
// the build queued by the post-receive path's hooks.Trigger.
//
// Identical clone requests over smart HTTP are answered from whole cached
// responses (respcache.go, issue 15): keyed on the repository, a hash of
// its refs read at every request and the normalized request, streamed with
// sendfile, no git process on a hit.
//
// A push of one fast-forward of an existing branch runs receive-pack
// without hooks (fastpush.go, issue 15): the server reads the push's
// commands ahead of git, lets receive.denyNonFastForwards ask the policy's
// only question, rewrites git's refusal into the policy's line, and queues
// the build from git's report. SSH pushes run receive-pack as smart HTTP
// does (advertisement, then request) for that reason.
//
// It also holds the HTTP server's plumbing (middleware.go): the router and
// its safety options, request ids and logging, panic recovery, HTTP
// metrics, /healthz /readyz /metrics, and the build-lease expiry loop;
// and the client address behind trusted reverse proxies (realip.go).
//
// gitserver imports store, hooks, httperr and its own sub-packages (the
// access policy gitserver/access, which Server.Resolve applies for both
// transports); only cmd imports it. Who sent a request it asks of an
// Authenticator that cmd passes in.
//
// Imports: gitserver/store, gitserver/hooks, gitserver/gitserver/httperr, gitserver/gitserver/...
// Test imports: gitserver/store/sqlite, gitserver/store/postgres, gitserver/store/postgres/pgtest
package gitserver
