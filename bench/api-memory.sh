#!/usr/bin/env bash
# What a long-running server keeps in memory (issue 19: RSS under 200 MB under load), for
# one or more builds side by side. Unlike bench/api-ab.sh, each build's server lives for
# the whole run, as in production and in bench/api-open-loop.sh's ladder, since what
# matters is what it still holds after hours of store openings: every build's server is
# started once, and each round takes them in turn through the ladder's sequence (the
# guide's portraits, the filtered list, then the cold rotation, whose top step is above
# the sustained rate and queues). After each round the server idles, and its RSS is read
# again: what it kept, not what it needed at the peak.
#
#   bash bench/api-memory.sh target/release/scrm /tmp/scrm-other
#   # RATES=1000,2000,3000 COLD_RATES=1000,2000 STEP_SECONDS=10 ROUNDS=3 IDLE_SECONDS=10
#
# A "build" may be a script that sets allocator options and execs a binary.
set -euo pipefail
cd "$(dirname "$0")/.."
RATES="${RATES:-1000,2000,3000}"
COLD_RATES="${COLD_RATES:-1000,2000}"
SECONDS_PER_STEP="${STEP_SECONDS:-10}"
ROUNDS="${ROUNDS:-3}"
IDLE_SECONDS="${IDLE_SECONDS:-10}"
[ $# -ge 1 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }

cargo build --release -p scrm-tests --example open_loop -q
# shellcheck source=bench/api-setup.sh
. bench/api-setup.sh
WORK=$(mktemp -d)
write_requests "$WORK"
results="$WORK/results.jsonl"

rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

BASE_PORT=$PORT
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT
for i in $(seq 0 $(($# - 1))); do
    binary=${*:$((i + 1)):1}
    PORT=$((BASE_PORT + 10 + i)) BIN="$binary" start_server
    PIDS+=("$SERVER")
    echo "{\"label\": \"$binary\", \"round\": 0, \"settled_rss_mib\": $(rss_mib "$SERVER")}" | tee -a "$results"
done

for round in $(seq 1 "$ROUNDS"); do
    for i in $(seq 0 $(($# - 1))); do
        binary=${*:$((i + 1)):1}
        pid=${PIDS[$i]}
        url="http://127.0.0.1:$((BASE_PORT + 10 + i))/graphql"
        for doc in portrait list portrait-cold; do
            rates=$RATES
            [ "$doc" = portrait-cold ] && rates=$COLD_RATES
            target/release/examples/open_loop --url "$url" --requests "$WORK/scrm-$doc.jsonl" \
                --rates "$rates" --seconds "$SECONDS_PER_STEP" --pid "$pid" \
                --label "$binary $doc" |
                python3 -c "
import sys, json
for line in sys.stdin:
    d = json.loads(line); d['round'] = $round
    print(json.dumps(d), flush=True)" | tee -a "$results"
        done
        sleep "$IDLE_SECONDS"
        echo "{\"label\": \"$binary\", \"round\": $round, \"settled_rss_mib\": $(rss_mib "$pid")}" | tee -a "$results"
    done
done

python3 - "$results" "$@" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"\nmachine: 2 cores; one server per build for the whole run; RSS in MiB")
print("| build | round | peak RSS under load | peak during cold overload | settled after idling | worst step p99, portrait ms | worst step p99, list ms | errors, of them busy (503) | cold overload step: answered/s |")
print("|---|---|---|---|---|---|---|---|---|")
for binary in sys.argv[2:]:
    for rnd in sorted({r["round"] for r in rows}):
        settled = [r["settled_rss_mib"] for r in rows if r["label"] == binary and r["round"] == rnd]
        steps = [r for r in rows if r["label"].startswith(binary + " ") and r.get("round") == rnd]
        peak = max((r["server_rss_mib"] for r in steps), default=float("nan"))
        cold = max((r["server_rss_mib"] for r in steps if r["label"].endswith("portrait-cold")), default=float("nan"))
        p99 = lambda doc: max((r["p99_ms"] for r in steps if r["label"] == f"{binary} {doc}"), default=float("nan"))
        errors = sum(r["errors"] for r in steps)
        busy = sum(r.get("busy", 0) for r in steps)
        cold_steps = [r for r in steps if r["label"].endswith("portrait-cold")]
        overload = max(cold_steps, key=lambda r: r["rate"])["achieved"] if cold_steps else float("nan")
        print(f"| {binary} | {rnd} | {peak:.0f} | {cold:.0f} | {settled[0] if settled else float('nan'):.0f} | "
              f"{p99('portrait'):.2f} | {p99('list'):.2f} | {errors}, {busy} | {overload:.0f} |")
PY
