#!/bin/sh
# Temporal's own PostgreSQL: create the persistence and visibility databases and bring their
# schemas to this server version. Run by compose's one-shot `temporal-schema` service (the
# admin-tools image); safe to run again: existing databases are kept, schemas only move forward.
set -eu
tool() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -u "$POSTGRES_USER" -p 5432 "$@"; }
schema=/etc/temporal/schema/postgresql/v12
for pair in temporal:temporal visibility:temporal_visibility; do
  kind=${pair%%:*} db=${pair#*:}
  tool --db "$db" create 2>/dev/null || echo "database $db exists"
  # setup-schema -v 0.0 only makes the version table; update-schema applies every versioned step.
  tool --db "$db" setup-schema -v 0.0 2>/dev/null || echo "schema of $db already set up"
  tool --db "$db" update-schema -d "$schema/$kind/versioned"
done
