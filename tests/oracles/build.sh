#!/usr/bin/env bash
# Build the Go test oracles (Mattermost's bulk-import validator wrapper,
# mmetl and FerretDB) into a cache folder and print the binaries' paths.
#   usage: tests/oracles/build.sh [OUT_DIR]   (default: <repo>/.cache/oracles)
# A binary is rebuilt only when it is missing or older than its go.mod/go.sum
# (and main.go for mmvalidate). Needs Go >= 1.24 and access to the Go module
# proxy on the first build (~64 MB of module zips, ~45 s on 2 cores).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
OUT="${1:-$REPO/.cache/oracles}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

# true when $1 is missing or older than any of the remaining files
stale() {
    local bin="$1"; shift
    [[ -x "$bin" ]] || return 0
    local src
    for src in "$@"; do
        [[ "$src" -nt "$bin" ]] && return 0
    done
    return 1
}

MMV="$HERE/mmvalidate"
if stale "$OUT/mmvalidate" "$MMV/go.mod" "$MMV/go.sum" "$MMV/main.go"; then
    echo "building mmvalidate ..." >&2
    (cd "$MMV" && go build -trimpath -o "$OUT/mmvalidate" .)
fi
# English messages for Mattermost's i18n error ids, read by mmvalidate from
# <its dir>/i18n (taken from the module cache, never from the repo).
if stale "$OUT/i18n/en.json" "$MMV/go.mod"; then
    mkdir -p "$OUT/i18n"
    src="$(cd "$MMV" && go list -m -f '{{.Dir}}' github.com/mattermost/mattermost/server/v8)/i18n/en.json"
    cp "$src" "$OUT/i18n/en.json"
    chmod 644 "$OUT/i18n/en.json"
    touch "$OUT/i18n/en.json"
fi

ETL="$HERE/mmetl"
if stale "$OUT/mmetl" "$ETL/go.mod" "$ETL/go.sum"; then
    echo "building mmetl ..." >&2
    (cd "$ETL" && go build -trimpath -o "$OUT/mmetl" github.com/mattermost/mmetl)
fi

# FerretDB 1.24 (a MongoDB wire server on SQLite) for the Rocket.Chat target's tests; its own command
# panics outside FerretDB's repository, so a small main embeds its `ferretdb` package.
FDB="$HERE/ferretdb"
if stale "$OUT/ferretdb" "$FDB/go.mod" "$FDB/go.sum" "$FDB/main.go"; then
    echo "building ferretdb ..." >&2
    (cd "$FDB" && go build -trimpath -o "$OUT/ferretdb" .)
fi

echo "$OUT/mmvalidate"
echo "$OUT/mmetl"
echo "$OUT/ferretdb"
