#!/usr/bin/env bash
# Build Gitea v1.26.0 from the Go module proxy once per machine and print the
# binary's path. The tests of mirrored repositories run it as a real upstream
# SCM (SSH with deploy keys, signed webhooks, a repository API). Cold build:
# ~9 minutes on 2 cores; afterwards the cached binary is reused.
#   GITSERVER_GITEA_CACHE  where to keep it (default: ${XDG_CACHE_HOME:-~/.cache}/gitserver-test)
set -euo pipefail
version=1.26.0
cache="${GITSERVER_GITEA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gitserver-test}"
bin="$cache/gitea-$version"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
mkdir -p "$cache"
command -v go >/dev/null 2>&1 || export PATH=$PATH:/usr/local/go/bin
src="$(go env GOMODCACHE)/code.gitea.io/gitea@v$version"
[ -d "$src" ] || go mod download "code.gitea.io/gitea@v$version" >&2
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -r "$src" "$work/src" && chmod -R u+w "$work/src"
echo "building gitea $version (once per machine, ~9 min cold)..." >&2
(cd "$work/src" && CGO_ENABLED=1 GOFLAGS=-mod=mod go build -trimpath -tags 'sqlite sqlite_unlock_notify' \
   -ldflags "-s -w -X main.Version=$version" -o "$bin.tmp" .) >&2
mv "$bin.tmp" "$bin"
echo "$bin"
