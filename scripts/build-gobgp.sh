#!/usr/bin/env bash
# Builds GoBGP's gobgpd (the BGP speaker trunkline-bgp supervises) and the
# gobgp CLI from the Go module proxy at the version pinned in
# scripts/versions.env, into a cache outside the repository keyed by version:
#
#   $TRUNKLINE_CACHE/gobgp/gobgp-<version>/{gobgpd,gobgp}
#
# Warm: a no-op. Cold: about two minutes on two cores. The vendored API
# (operator/bgp/proto) is of the same version. Prints GOBGPD=<path> and
# GOBGP=<path> last.
#
# Usage: scripts/build-gobgp.sh            build if missing, print the paths
#        scripts/build-gobgp.sh --print    only print the paths
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

cache=${TRUNKLINE_CACHE:-$HOME/.cache/trunkline}
dir="$cache/gobgp/gobgp-$GOBGP_VERSION"
log() { printf '[build-gobgp] %s\n' "$*" >&2; }

if [ "${1:-}" != "--print" ] && { [ ! -x "$dir/gobgpd" ] || [ ! -x "$dir/gobgp" ]; }; then
  command -v go >/dev/null || { log "go is required"; exit 1; }
  mkdir -p "$cache/gobgp"
  exec 9>"$cache/gobgp/.build.lock"
  flock 9
  if [ ! -x "$dir/gobgpd" ] || [ ! -x "$dir/gobgp" ]; then
    start=$(date +%s)
    mkdir -p "$dir.tmp"
    GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOBIN="$dir.tmp" \
      go install -trimpath -ldflags "-s -w" \
      "github.com/osrg/gobgp/v3/cmd/gobgpd@v$GOBGP_VERSION" \
      "github.com/osrg/gobgp/v3/cmd/gobgp@v$GOBGP_VERSION"
    mkdir -p "$dir"
    mv "$dir.tmp"/* "$dir/"
    rmdir "$dir.tmp"
    log "built gobgp v$GOBGP_VERSION in $(($(date +%s) - start)) s"
  fi
fi
echo "GOBGPD=$dir/gobgpd"
echo "GOBGP=$dir/gobgp"
