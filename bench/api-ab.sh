#!/usr/bin/env bash
# Two (or more) builds of the server side by side, for a change's effect in one run on
# this noisy machine: each round starts each binary in turn on the bench database and
# asks it at a fixed open-loop rate, then prints the medians per binary: achieved rate,
# p99, and CPU per answered request on the server and on PostgreSQL.
#
#   bash bench/api-ab.sh /tmp/scrm-before target/release/scrm   # DOC=portrait RATE=1000 STEP_SECONDS=10 ROUNDS=3
#
# Build the "before" binary from another checkout (`git worktree add`), with
# CARGO_TARGET_DIR pointing here so only the changed crates rebuild, and copy it aside.
set -euo pipefail
cd "$(dirname "$0")/.."
DOC="${DOC:-portrait}"
RATE="${RATE:-1000}"
SECONDS_PER_STEP="${STEP_SECONDS:-10}"
ROUNDS="${ROUNDS:-3}"
[ $# -ge 2 ] || { echo "usage: $0 BINARY BINARY..." >&2; exit 2; }

cargo build --release -p scrm-tests --example open_loop -q
# shellcheck source=bench/api-setup.sh
. bench/api-setup.sh
WORK=$(mktemp -d)
write_requests "$WORK"
results="$WORK/results.jsonl"

for round in $(seq 1 "$ROUNDS"); do
    for binary in "$@"; do
        BIN="$binary" start_server
        target/release/examples/open_loop --url "http://127.0.0.1:$PORT/graphql" \
            --requests "$WORK/scrm-$DOC.jsonl" --rates "$RATE" --seconds "$SECONDS_PER_STEP" \
            --warmup 2 --pid "$SERVER" --label "$binary" | tee -a "$results"
        kill "$SERVER"
        wait "$SERVER" 2>/dev/null || true
    done
done

python3 - "$results" "$DOC" "$RATE" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"\n{sys.argv[2]} at {sys.argv[3]} req/s, medians of {len(rows) // len({r['label'] for r in rows})} rounds")
print("| binary | achieved | p99 ms | server CPU ms/request | PostgreSQL CPU ms/request |")
print("|---|---|---|---|---|")
for label in dict.fromkeys(r["label"] for r in rows):
    rs = [r for r in rows if r["label"] == label]
    med = lambda f: statistics.median(f(r) for r in rs)
    print(f"| {label} | {med(lambda r: r['achieved']):,.0f} | {med(lambda r: r['p99_ms']):.2f} | "
          f"{med(lambda r: r['server_cores'] * 1000 / max(r['achieved'], 1)):.3f} | "
          f"{med(lambda r: r['postgres_cores'] * 1000 / max(r['achieved'], 1)):.3f} |")
PY
