#!/bin/sh
# Creates the namespace batchpilot runs in and registers batchpilot's search attributes, once the
# Temporal server is healthy; retries while the server settles and fails loudly when it cannot. The
# same script runs in docker-compose.yml (Temporal's admin-tools image) and in the process fleet.
#
# Environment: TEMPORAL_ADDRESS (host:port), TEMPORAL_NAMESPACE, BATCHPILOT_SEARCH_ATTRIBUTES
# ("Name=Type Name=Type …", from common/definitions.ts), TEMPORAL_NAMESPACE_RETENTION (72h),
# SETUP_ATTEMPTS (60) and SETUP_SLEEP (1, seconds between attempts).
set -eu

: "${TEMPORAL_ADDRESS:?set TEMPORAL_ADDRESS to the frontend, e.g. temporal:7233}"
: "${TEMPORAL_NAMESPACE:?set TEMPORAL_NAMESPACE, e.g. default}"
: "${BATCHPILOT_SEARCH_ATTRIBUTES:?set BATCHPILOT_SEARCH_ATTRIBUTES, e.g. BatchpilotStatus=Keyword}"
retention=${TEMPORAL_NAMESPACE_RETENTION:-72h}
attempts=${SETUP_ATTEMPTS:-60}
pause=${SETUP_SLEEP:-1}

# retry <what> <command…>: runs the command until it succeeds, at most $attempts times.
retry() {
  what=$1
  shift
  n=1
  until out=$("$@" 2>&1); do
    if [ "$n" -ge "$attempts" ]; then
      printf '%s\n' "$out" >&2
      echo "create-namespace: gave up on $what after $attempts attempts (last error above)" >&2
      exit 1
    fi
    n=$((n + 1))
    sleep "$pause"
  done
}

retry "the health of $TEMPORAL_ADDRESS" temporal operator cluster health --address "$TEMPORAL_ADDRESS"

ensure_namespace() {
  temporal operator namespace describe --address "$TEMPORAL_ADDRESS" -n "$TEMPORAL_NAMESPACE" >/dev/null 2>&1 ||
    temporal operator namespace create --address "$TEMPORAL_ADDRESS" -n "$TEMPORAL_NAMESPACE" --retention "$retention"
}
retry "namespace $TEMPORAL_NAMESPACE" ensure_namespace
echo "create-namespace: namespace $TEMPORAL_NAMESPACE ready"

# A namespace that was just created may not be visible to every service yet, so creating the
# attributes is retried; each round creates only those not yet listed with their type.
listed() {
  temporal operator search-attribute list --address "$TEMPORAL_ADDRESS" -n "$TEMPORAL_NAMESPACE"
}
has() { printf '%s\n' "$1" | grep -Eq "^ *${2%%=*} +${2#*=} *$"; }
create_missing() {
  now=$(listed)
  set --
  for pair in $BATCHPILOT_SEARCH_ATTRIBUTES; do
    has "$now" "$pair" || set -- "$@" --name "${pair%%=*}" --type "${pair#*=}"
  done
  [ "$#" -eq 0 ] || temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" -n "$TEMPORAL_NAMESPACE" "$@"
}
retry "search attributes $BATCHPILOT_SEARCH_ATTRIBUTES" create_missing
now=$(listed)
for pair in $BATCHPILOT_SEARCH_ATTRIBUTES; do
  has "$now" "$pair" || {
    printf '%s\n' "$now" >&2
    echo "create-namespace: search attribute ${pair%%=*} of type ${pair#*=} is not registered (listed above)" >&2
    exit 1
  }
done
echo "create-namespace: search attributes registered: $BATCHPILOT_SEARCH_ATTRIBUTES"
