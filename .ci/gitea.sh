#!/usr/bin/env bash
# Build Gitea v1.26.0 from the Go module proxy once per machine and print the
# binary's path (and nothing else) on stdout. The tests of mirrored
# repositories run it as a real upstream SCM (SSH with deploy keys, signed
# webhooks, a repository API). Cold build: ~9 minutes on 2 cores, ~1.4 GB RSS,
# needs gcc (cgo SQLite); afterwards the cached binary is reused.
#   GITSERVER_GITEA_CACHE  where to keep it (default: ${XDG_CACHE_HOME:-~/.cache}/gitserver-test)
# Works from any directory; concurrent callers wait for one build (flock).
set -euo pipefail
version=1.26.0
cache="${GITSERVER_GITEA_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/gitserver-test}"
bin="$cache/gitea-$version"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
mkdir -p "$cache"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache/.gitea-$version.lock"
  flock 9
  if [ -x "$bin" ]; then echo "$bin"; exit 0; fi   # another caller built it meanwhile
fi
command -v go >/dev/null 2>&1 || export PATH=$PATH:/usr/local/go/bin
command -v gcc >/dev/null 2>&1 || { echo "gitea.sh: gcc is needed to build Gitea (cgo SQLite)" >&2; exit 1; }
# None of the caller's module settings apply to Gitea's module.
unset GOFLAGS GOOS GOARCH
export GOWORK=off CGO_ENABLED=1
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
src="$(go env GOMODCACHE)/code.gitea.io/gitea@v$version"
[ -d "$src" ] || go mod download "code.gitea.io/gitea@v$version" >&2
cp -r "$src" "$work/src" && chmod -R u+w "$work/src"
echo "building gitea $version into $bin (once per machine, ~9 min cold)..." >&2
start=$SECONDS
tmp="$bin.tmp.$$"
(cd "$work/src" && GOFLAGS=-mod=mod go build -trimpath -tags 'sqlite sqlite_unlock_notify' \
   -ldflags "-s -w -X main.Version=$version" -o "$tmp" .) >&2 || { rm -f "$tmp"; exit 1; }
mv "$tmp" "$bin"
echo "built gitea $version in $((SECONDS - start))s" >&2
echo "$bin"
