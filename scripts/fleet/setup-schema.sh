#!/bin/sh
# Creates Temporal's two PostgreSQL databases and brings their schemas to the version the tool
# carries. The same script runs in docker-compose.yml (Temporal's admin-tools image) and in the
# process fleet (scripts/fleet/), so the compose file's schema step is what the fleet test runs.
#
# Environment (read by temporal-sql-tool itself): SQL_PLUGIN (postgres12), SQL_HOST, SQL_PORT,
# SQL_USER, SQL_PASSWORD. Safe to run again on every start: an existing database keeps its data
# and only newer schema versions are applied.
set -eu

: "${SQL_PLUGIN:?set SQL_PLUGIN, e.g. postgres12}"
: "${SQL_HOST:?set SQL_HOST to the PostgreSQL host}"
: "${SQL_PORT:?set SQL_PORT to the PostgreSQL port}"
: "${SQL_USER:?set SQL_USER to the PostgreSQL user}"

# setup <database> <schema name embedded in the tool>
setup() {
  db=$1
  schema=$2
  if out=$(temporal-sql-tool --db "$db" create-database 2>&1); then
    echo "setup-schema: created database $db"
    # Only a new database gets the version table at 0.0: run on an existing one it would reset the
    # recorded version and make update-schema re-apply every migration.
    temporal-sql-tool --db "$db" setup-schema -v 0.0
  elif printf '%s' "$out" | grep -q 'already exists'; then
    echo "setup-schema: database $db exists"
  else
    printf '%s\n' "$out" >&2
    echo "setup-schema: cannot create database $db on $SQL_HOST:$SQL_PORT (see above)" >&2
    exit 1
  fi
  temporal-sql-tool --db "$db" update-schema --schema-name "$schema"
}

setup temporal postgresql/v12/temporal
setup temporal_visibility postgresql/v12/visibility
echo "setup-schema: done"
