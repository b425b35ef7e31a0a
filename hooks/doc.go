// Package hooks is the contract between the gitserver daemon and the git
// hooks it installs, and the logic that runs on each side of it:
//
//   - Env: the typed environment the daemon gives git (who pushed, which
//     repository, where the daemon's hook socket is);
//   - ParseUpdates: pre-/post-receive stdin ("<old> <new> <ref>" lines);
//   - Check: the push policy of docs/api.md §6 (history is never rewritten);
//   - PreReceive / PostReceive: what `gitserver hook pre-receive|post-receive`
//     runs inside git's hook process;
//   - Trigger: the daemon side of post-receive, which queues exactly one
//     build per push of the default branch and reconciles owed builds
//     (Trigger.Pushed is that step for one update: a Web IDE commit uses it);
//   - SocketServer: the unix-socket endpoint through which hook processes
//     reach the daemon.
//
// hooks imports store, and ui/wire for the build object its BuildNotifier
// sends (the one GET /api/v1/builds/{id} returns); gitserver and cmd import
// hooks. In a hook process
// stderr is the pusher's terminal: only deliberate, short messages go there.
//
// Imports: gitserver/store, gitserver/ui/wire
package hooks
