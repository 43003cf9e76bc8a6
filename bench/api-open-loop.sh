#!/usr/bin/env bash
# Open-loop load benchmark of the GraphQL API (issue 19) on the `bench` scale (1,000,000
# customers): requests arrive at a fixed rate in rising steps, as guides' phones do at
# store opening, and each latency counts from the moment its request was due
# (tests/examples/open_loop.rs says why not wrk or oha). In the same run, the peer:
# PostGraphile over the same read-model tables, role, tenant setting and tokens
# (bench/postgraphile), asked for the same fields.
#
#   bash bench/api-open-loop.sh      # RATES=250,500,1000,2000,3000,4000 STEP_SECONDS=30 ROUNDS=3
#
# Each step prints the asked and achieved rate, p50/p99/p99.9, errors, the server's peak
# RSS and CPU (cores), PostgreSQL's CPU and the generator's own; the summary gives
# medians over the rounds and
# each system's sustained rate: the highest step it answered at 95% of the asked rate or
# more, with no errors and a p99 under 100 ms (above that its queue was growing).
# Everything runs on this machine: server, peer, PostgreSQL and the load generator.
set -euo pipefail
cd "$(dirname "$0")/.."

RATES="${RATES:-250,500,1000,2000,3000,4000}"
SECONDS_PER_STEP="${STEP_SECONDS:-30}"
ROUNDS="${ROUNDS:-3}"
PEER_PORT="${PEER_PORT:-18778}"
SYSTEMS="${SYSTEMS:-scrm postgraphile}"
# portrait-cold: 100,000 customers across the tenant instead of one guide's 200, so a
# portrait cache mostly misses (bench/api-setup.sh).
DOCS="${DOCS:-portrait list portrait-cold}"

cargo build --release -p scrm-tests --example open_loop -q
# shellcheck source=bench/api-setup.sh
. bench/api-setup.sh
(cd bench/postgraphile && [ -d node_modules ] || npm ci --silent --no-audit --no-fund)
psql "$DB_URL" -q -f bench/postgraphile/peer.sql

start_server
DATABASE_URL="$DB_URL" PORT="$PEER_PORT" node bench/postgraphile/server.js \
    >/tmp/scrm-bench-postgraphile.log 2>&1 &
PEER=$!
trap 'kill $SERVER $PEER 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do
    curl -s -o /dev/null "http://127.0.0.1:$PEER_PORT/graphql" -d '{}' -H 'content-type: application/json' && break
    sleep 1
done

WORK=$(mktemp -d)
write_requests "$WORK"

url_of() { if [ "$1" = scrm ]; then echo "http://127.0.0.1:$PORT/graphql"; else echo "http://127.0.0.1:$PEER_PORT/graphql"; fi; }
pid_of() { if [ "$1" = scrm ]; then echo "$SERVER"; else echo "$PEER"; fi; }

# Sanity: each document answers with data and a non-empty root before it is timed.
for system in $SYSTEMS; do
    for doc in $DOCS; do
        line=$(head -1 "$WORK/$system-$doc.jsonl")
        body=$(echo "$line" | python3 -c 'import sys,json; print(json.dumps(json.load(sys.stdin)["body"]))')
        auth=$(echo "$line" | python3 -c 'import sys,json; print(json.load(sys.stdin)["authorization"])')
        out=$(curl -s "$(url_of "$system")" -H 'content-type: application/json' \
            -H "authorization: $auth" -d "$body")
        echo "$out" | python3 -c '
import sys, json
d = json.load(sys.stdin)
assert "errors" not in d and d.get("data"), d
root = next(iter(d["data"].values()))
assert root, "empty root: %s" % d
rows = root.get("edges", root.get("nodes"))
assert rows is None or len(rows) > 0, "no rows: %s" % d
' || { echo "$system $doc: $out"; exit 1; }
    done
done

echo "machine: $(nproc) cores; steps $RATES req/s, ${SECONDS_PER_STEP}s each; $ROUNDS rounds; server, peer, PostgreSQL and the generator on the same machine"
results="$WORK/results.jsonl"
# Rounds alternate documents and systems so drift on this noisy machine hits all alike.
for round in $(seq 1 "$ROUNDS"); do
    for doc in $DOCS; do
        for system in $SYSTEMS; do
            target/release/examples/open_loop --url "$(url_of "$system")" \
                --requests "$WORK/$system-$doc.jsonl" --rates "$RATES" \
                --seconds "$SECONDS_PER_STEP" --pid "$(pid_of "$system")" \
                --label "$system $doc" --stop-when-behind |
                while read -r line; do
                    echo "$line" | python3 -c "import sys,json; d=json.load(sys.stdin); d['round']=$round; print(json.dumps(d))" |
                        tee -a "$results"
                done
        done
    done
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def ok(r):
    return r["achieved"] >= 0.95 * r["rate"] and r["errors"] == 0 and r["p99_ms"] < 100
print()
print("| system | query | asked req/s | achieved (median) | p50 ms | p99 ms | p99.9 ms | errors | server RSS MiB | server cores | PostgreSQL cores | generator cores | rounds |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
labels = sorted({r["label"] for r in rows}, key=lambda l: (l.split()[1], l.split()[0] != "scrm"))
for label in labels:
    for rate in sorted({r["rate"] for r in rows if r["label"] == label}):
        rs = [r for r in rows if r["label"] == label and r["rate"] == rate]
        med = lambda k: statistics.median(r[k] for r in rs)
        system, doc = label.split()
        print(f"| {system} | {doc} | {rate:,} | {med('achieved'):,.0f} | {med('p50_ms'):.2f} | "
              f"{med('p99_ms'):.2f} | {med('p999_ms'):.2f} | {sum(r['errors'] for r in rs)} | "
              f"{max(r['server_rss_mib'] for r in rs):.0f} | {med('server_cores'):.2f} | "
              f"{med('postgres_cores'):.2f} | {med('generator_cores'):.2f} | {len(rs)} |")
print()
print("sustained rate (highest step at >= 95% of the asked rate, no errors, p99 < 100 ms), per round and median:")
sustained = {}
for label in labels:
    per_round = []
    for rnd in sorted({r["round"] for r in rows}):
        steps = sorted((r for r in rows if r["label"] == label and r["round"] == rnd), key=lambda r: r["rate"])
        best = 0
        for r in steps:
            if not ok(r):
                break
            best = r["rate"]
        per_round.append(best)
    sustained[label] = statistics.median(per_round)
    print(f"  {label:<22} {sustained[label]:>7,.0f}  rounds {per_round}")
for doc in ("portrait", "list", "portrait-cold"):
    a, b = sustained.get(f"scrm {doc}"), sustained.get(f"postgraphile {doc}")
    if a is not None and b:
        print(f"  {doc}: scrm / postgraphile = {a / b:.1f}x")
PY
