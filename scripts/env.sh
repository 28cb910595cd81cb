# Source this to put the project's Node 24 and Temporal CLI on PATH (scripts/setup.sh installs them).
NODE_VERSION=24.21.0
TEMPORAL_CLI_VERSION=v1.5.1
# The fleet (scripts/fleet/): the Temporal server and its SQL tool at the version docker-compose.yml
# pins (the one the CLI above embeds), and versitygw as the S3-compatible store. Built from the Go
# module proxy by `BATCHPILOT_FLEET=1 bash scripts/setup.sh`.
TEMPORAL_SERVER_VERSION=v1.29.1
VERSITYGW_VERSION=v1.8.0
BATCHPILOT_CACHE=${BATCHPILOT_CACHE:-$HOME/.cache/batchpilot}
BATCHPILOT_NODE_DIR="$BATCHPILOT_CACHE/node-$NODE_VERSION"
BATCHPILOT_TEMPORAL_CLI="$BATCHPILOT_CACHE/temporal-${TEMPORAL_CLI_VERSION#v}/temporal"
BATCHPILOT_TEMPORAL_SERVER_DIR="$BATCHPILOT_CACHE/temporal-server-${TEMPORAL_SERVER_VERSION#v}"
BATCHPILOT_VERSITYGW="$BATCHPILOT_CACHE/versitygw-${VERSITYGW_VERSION#v}/versitygw"
export BATCHPILOT_CACHE BATCHPILOT_TEMPORAL_CLI BATCHPILOT_TEMPORAL_SERVER_DIR BATCHPILOT_VERSITYGW
case ":$PATH:" in *":$BATCHPILOT_NODE_DIR/bin:"*) ;; *) export PATH="$BATCHPILOT_NODE_DIR/bin:$PATH" ;; esac
