#!/usr/bin/env bash
# Builds the fleet's binaries from the Go module proxy into $BATCHPILOT_CACHE, each only when missing:
# the Temporal server and its SQL schema tool (the version docker-compose.yml pins), and versitygw
# (S3-compatible object storage on a folder). A cold Go build cache takes minutes per binary; the
# time each build took is printed so CI logs show it. Called by `BATCHPILOT_FLEET=1 scripts/setup.sh`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/env.sh
source "$here/scripts/env.sh"

log() { printf 'fleet build: %s\n' "$*" >&2; }

# go_install <target dir> <package@version>...: installs into a sibling folder and renames it into
# place only when every build succeeded, so a half-built folder is never taken for a finished one.
go_install() {
  local dir=$1
  shift
  command -v go >/dev/null || { log "Go is needed to build $* (apt-get install golang, or Go from go.dev)"; exit 1; }
  rm -rf "$dir.partial"
  mkdir -p "$dir.partial"
  local start=$SECONDS
  GOBIN="$dir.partial" GOFLAGS=-mod=mod go install "$@"
  rm -rf "$dir"
  mv "$dir.partial" "$dir"
  log "built $* in $((SECONDS - start)) s"
}

if [ ! -x "$BATCHPILOT_TEMPORAL_SERVER_DIR/server" ] || [ ! -x "$BATCHPILOT_TEMPORAL_SERVER_DIR/sql" ]; then
  log "building Temporal server $TEMPORAL_SERVER_VERSION and its SQL tool (about 2.5 min from a cold Go cache, once)"
  go_install "$BATCHPILOT_TEMPORAL_SERVER_DIR" \
    "go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION" \
    "go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION"
fi
# The names the binaries have in Temporal's images, so the scripts compose runs in the admin-tools
# image (scripts/fleet/*.sh) run unchanged here.
ln -sf server "$BATCHPILOT_TEMPORAL_SERVER_DIR/temporal-server"
ln -sf sql "$BATCHPILOT_TEMPORAL_SERVER_DIR/temporal-sql-tool"

if [ ! -x "$BATCHPILOT_VERSITYGW" ]; then
  log "building versitygw $VERSITYGW_VERSION (about 1.5 min from a cold Go cache, once)"
  go_install "$(dirname "$BATCHPILOT_VERSITYGW")" "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
fi
log "ready: $BATCHPILOT_TEMPORAL_SERVER_DIR/server, $BATCHPILOT_VERSITYGW"
