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
// gitserver imports store, hooks, ui/httpauth and its own gitserver/access
// (the access policy, which Server.Resolve applies for both transports);
// only cmd imports gitserver, while ui and gitserver import access.
package gitserver
