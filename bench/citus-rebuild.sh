#!/usr/bin/env bash
# Rebuild rate on Citus versus one PostgreSQL, same log, same machine, same run:
# `scrm seed` the same tenant into a plain database and into a Citus database (one
# coordinator, two workers, started by .ci/citus.sh), then `scrm rebuild --all` on each,
# alternating, ROUNDS times. Prints each run's figures and the medians.
#
#   bash bench/citus-rebuild.sh                 # 200,000 customers (~2.4 M events)
#   CUSTOMERS=1000000 bash bench/citus-rebuild.sh
#
# Needs: PostgreSQL at SCRM_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres),
# the Citus build (.ci/citus.sh installs and starts it), a release build (done here).
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL="${SCRM_BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
CUSTOMERS="${CUSTOMERS:-200000}"
ROUNDS="${ROUNDS:-3}"
DB="scrm_bench_citus_${CUSTOMERS}"
BIN=target/release/scrm
cargo build --release --bin scrm -q

CITUS_ADMIN=$(bash .ci/citus.sh)
PG_DB="${PG_URL%/*}/$DB?sslmode=disable"
CITUS_DB="${CITUS_ADMIN%/*}/$DB?sslmode=disable"
port_of() { sed -E 's#.*:([0-9]+)/.*#\1#' <<<"$1"; }
CITUS_PORT=$(port_of "$CITUS_ADMIN")

fresh() { # url-of-admin database
    psql "$1" -qc "DROP DATABASE IF EXISTS $2 WITH (FORCE)" -c "CREATE DATABASE $2"
}

echo "== a plain database and a Citus one (coordinator :$CITUS_PORT, workers :$((CITUS_PORT + 1)) :$((CITUS_PORT + 2)))"
fresh "$PG_URL" "$DB"
for p in "$CITUS_PORT" $((CITUS_PORT + 1)) $((CITUS_PORT + 2)); do
    node="postgres://postgres@127.0.0.1:$p/postgres?sslmode=disable"
    fresh "$node" "$DB"
    psql "postgres://postgres@127.0.0.1:$p/$DB?sslmode=disable" -qc "CREATE EXTENSION citus"
done
psql "$CITUS_DB" -qAt \
    -c "SELECT citus_set_coordinator_host('127.0.0.1', $CITUS_PORT)" \
    -c "SELECT citus_add_node('127.0.0.1', $((CITUS_PORT + 1)))" \
    -c "SELECT citus_add_node('127.0.0.1', $((CITUS_PORT + 2)))" >/dev/null

seed=(seed --scale bench --tenant bench --customers "$CUSTOMERS")
for side in postgres citus; do
    url=$PG_DB; [ "$side" = citus ] && url=$CITUS_DB
    echo "== seed ($side)"
    "$BIN" --database-url "$url" "${seed[@]}" | tail -n1
done
echo "shards of events on Citus: $(psql "$CITUS_DB" -Atc "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'events'::regclass")"

declare -A rates
for round in $(seq 1 "$ROUNDS"); do
    for side in postgres citus; do
        url=$PG_DB; [ "$side" = citus ] && url=$CITUS_DB
        line=$(/usr/bin/time -f 'peak_rss_kb=%M' "$BIN" --database-url "$url" rebuild --all 2>/tmp/citus-bench-time |
            grep ' events in ')
        rss=$(grep -o 'peak_rss_kb=[0-9]*' /tmp/citus-bench-time | cut -d= -f2)
        rate=$(sed -E 's/.*\(([0-9]+) events\/s.*/\1/' <<<"$line")
        rates[$side]="${rates[$side]:-} $rate"
        echo "round $round $side: $line, peak RSS $((rss / 1024)) MiB"
    done
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
pg=$(median "${rates[postgres]}")
ci=$(median "${rates[citus]}")
echo "== medians of $ROUNDS: postgres $pg events/s, citus $ci events/s, citus/postgres $(awk -v a="$ci" -v b="$pg" 'BEGIN {printf "%.2f", a / b}')"
