#!/usr/bin/env bash
# Load benchmark of the GraphQL API on the `bench` scale (1,000,000 customers):
# a guide's customer-portrait query and a filtered customer list, each with wrk at 64
# concurrent connections, reporting throughput and p50/p99 (wrk --latency).
#
#   bash bench/api-load.sh            # seeds once into scrm_bench_api, reuses it after
#
# Needs: PostgreSQL (SCRM_BENCH_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres),
# wrk (apt-get install wrk), a release build (done here).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-15s}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-64}"
command -v wrk >/dev/null || { apt-get install -y -q wrk >/dev/null; }
# shellcheck source=bench/api-setup.sh
. bench/api-setup.sh
start_server
trap 'kill $SERVER 2>/dev/null || true' EXIT

LUA_DIR=$(mktemp -d)
cat >"$LUA_DIR/portrait.lua" <<LUA
local ids = $(echo "$CUSTOMERS" | sed 's/\[/{/; s/\]/}/')
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
request = function()
  i = i % #ids + 1
  local body = '{"query":"query P(\$id: ID!) { customer(id: \$id) { name maskedPhone stage purchases totalSpentYuan lastActivityAt tags(first: 10) { edges { node { name groupName } } } groups(first: 5) { edges { node { name } } } coupons(first: 5) { edges { node { campaignId status } } } timeline(first: 20) { edges { node { occurredAt kind summary } } } } }","variables":{"id":"' .. ids[i] .. '"}}'
  return wrk.format(nil, "/graphql", nil, body)
end
LUA
cat >"$LUA_DIR/list.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.body = '{"query":"{ customers(first: 20, filter: {stages: [FIRST_PURCHASE, REPURCHASE, LOYAL], hasUnredeemedCoupon: false}) { pageInfo { hasNextPage endCursor } edges { node { id name maskedPhone stage lastActivityAt } } } }"}'
LUA

# Sanity: both documents answer without errors before they are timed.
for script in portrait list; do
    out=$(wrk -t1 -c1 -d1s -s "$LUA_DIR/$script.lua" "http://127.0.0.1:$PORT/graphql" 2>&1 | grep -c "Non-2xx" || true)
    [ "$out" = 0 ] || { echo "$script: non-2xx answers"; exit 1; }
done
body=$(curl -s "http://127.0.0.1:$PORT/graphql" -H 'content-type: application/json' \
    -H "authorization: Bearer $TOKEN" -d "$(sed -n "s/^wrk.body = '\(.*\)'$/\1/p" "$LUA_DIR/list.lua")")
echo "$body" | grep -q '"errors"' && { echo "list query failed: $body"; exit 1; }

echo "machine: $(nproc) cores; wrk -t1 -c$CONNECTIONS -d$DURATION --latency; $ROUNDS rounds; server, PostgreSQL and wrk on the same machine"
# Rounds alternate the two documents so drift on this noisy machine hits both alike;
# the summary gives each one's median throughput, p50 and p99 over the rounds.
results=$(mktemp)
for round in $(seq 1 "$ROUNDS"); do
    for script in portrait list; do
        wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$LUA_DIR/$script.lua" \
            "http://127.0.0.1:$PORT/graphql" >"$LUA_DIR/out" 2>&1
        grep -q "Non-2xx" "$LUA_DIR/out" && { cat "$LUA_DIR/out"; echo "$script: non-2xx answers"; exit 1; }
        python3 - "$script" "$round" "$LUA_DIR/out" >>"$results" <<'PY'
import re, sys
script, rnd, path = sys.argv[1:]
text = open(path).read()
def ms(label):
    m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % label, text, re.M)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
print(f"{script} {rnd} {rps:.0f} {ms('50'):.2f} {ms('99'):.2f}")
PY
        tail -1 "$results"
    done
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
print("query     req/s(median)  p50 ms(median)  p99 ms(median)  rounds")
for name in ("portrait", "list"):
    r = [x for x in rows if x[0] == name]
    med = lambda i: statistics.median(float(x[i]) for x in r)
    print(f"{name:<9} {med(2):>13.0f} {med(3):>15.2f} {med(4):>15.2f} {len(r):>7}")
PY
