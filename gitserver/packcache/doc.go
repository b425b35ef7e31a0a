// Package packcache answers identical git pack requests from a disk cache.
//
// git upload-pack runs `uploadpack.packObjectsHook` (a shell command prefix)
// instead of `git pack-objects`, appending `git pack-objects ARGS...` and
// piping the request (shallow lines, wants, `--not`, haves) on stdin. The
// server sets the hook to `gitserver hook pack-objects --dir DIR ...`, which
// lands in Main. This is the idea of GitLab Gitaly's pack-objects cache: build
// systems clone the same head again and again, and all but the first clone
// are served by copying a file.
//
// # Key
//
// SHA-256 over: the repository directory, the full pack-objects argument
// list (thin, ofs-delta, include-tag, shallow, filter...), the stdin bytes
// (wants, haves, shallow boundaries) and every GIT_* variable of the
// environment except those that cannot change the pack (tracing, protocol
// version, terminal prompts). Wants are object ids that upload-pack has
// already checked against the advertised refs, so refs moving change the key
// by themselves.
//
// # Files (in Dir)
//
//	KEY.pack   a complete entry: the pack stream followed by a trailer
//	           (magic, length, creation time, CRC-32C). Renamed into place
//	           only after the producer succeeded and fsynced it.
//	KEY.part   the entry being produced; its producer holds flock(LOCK_EX) on
//	           it for as long as it writes.
//	KEY.lock   elects one producer per key (flock, never held by readers).
//	stats      hit/miss/join counters (flock-protected), for /metrics.
//
// # Safety
//
// A reader never trusts a file without a valid trailer: a complete entry is
// checked (size, magic, age) before a single byte is sent, and its CRC while
// it streams. A reader that joins a running producer tails KEY.part, always
// holding back the last trailer-sized bytes; once the producer's lock is gone
// (finished, failed or killed) the held-back bytes must be a trailer that
// matches the length and CRC of everything sent, or the reader fails (git then
// aborts the fetch cleanly, the client never indexes a truncated pack). A
// killed producer leaves a KEY.part without a trailer, which no reader serves
// and the next producer replaces.
//
// Entries expire after MaxAge (as in Gitaly): a cached pack is a valid answer
// for its wants forever, but --include-tag adds tags that exist when the
// pack is made, so a bounded age keeps tag auto-following close to live.
// The cache is capped at MaxBytes; producers evict least-recently-used
// entries (mtime, touched on every hit) after writing.
//
// # Direct hook (no sh)
//
// git runs uploadpack.packObjectsHook through sh only when the command has
// shell metacharacters. DirectHook is the binary's bare path, so git execs
// `gitserver git pack-objects ARGS...` itself; the options travel in
// GITSERVER_PACK_CACHE_* variables (HookEnv, MainEnv).
//
// # Responses
//
// Responses (responses.go) keeps whole upload-pack responses for the HTTP
// server process itself, in the same file format and with the same
// producer/joiner protocol, so that a hit is one file sent with sendfile
// and no process at all. Its keys come from the caller
// (gitserver/respcache.go: repository, version of its refs, normalized
// request); a producer keeps its entry only if the caller says the refs did
// not move while git ran. Producers do not fsync; the first hit of an entry
// in a process checks its whole CRC instead.
//
// Imports: none
package packcache
