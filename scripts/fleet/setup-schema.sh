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

# setup <database> <schema name embedded in the tool>. Each step is safe to repeat with this tool:
# create-database accepts an existing database, setup-schema leaves a newer recorded version alone,
# and update-schema applies only the versions above the recorded one.
setup() {
  temporal-sql-tool --db "$1" create-database
  temporal-sql-tool --db "$1" setup-schema -v 0.0
  temporal-sql-tool --db "$1" update-schema --schema-name "$2"
  echo "setup-schema: $1 is at the schema of this Temporal version"
}

setup temporal postgresql/v12/temporal
setup temporal_visibility postgresql/v12/visibility
echo "setup-schema: done"
