# Shared by bench/api-load.sh (closed loop, wrk) and bench/api-open-loop.sh (fixed
# arrival rate): seeds the `bench` scale once into scrm_bench_api, starts the release
# server, and picks the guide whose customers the requests rotate over. Sourced, not run.

PG_URL="${SCRM_BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
DB=scrm_bench_api
DB_URL="${PG_URL%/*}/$DB${SCRM_BENCH_PG_OPTIONS-?sslmode=disable}"
PORT="${PORT:-18777}"
export SCRM_JWT_SECRET="bench-only-9f0c1e5b7d2a4c6e8f0a1b3c5d7e9f1a2b4c6d8e"
# The limiter stays on, with buckets wide enough that it measures the server.
export SCRM_RATE_PER_CALLER=1000000 SCRM_RATE_TENANT_POINTS=1000000000
# One guide sends every request, so its share of requests running at once goes up to
# the connection count too (the default, a fifth of the pool, would measure the limit).
export SCRM_IN_FLIGHT_PER_CALLER=1000 SCRM_IN_FLIGHT_PER_TENANT=1000
BIN=target/release/scrm

cargo build --release --bin scrm -q

if ! psql "$PG_URL" -Atc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
    psql "$PG_URL" -qc "CREATE DATABASE $DB"
    # Autovacuum would get here in time; the bench measures that steady state (index-only
    # scans need the visibility map), not the minutes right after a bulk load. A load that
    # fails drops the database, or the next run would find it and skip the seed.
    if ! { "$BIN" --database-url "$DB_URL" seed --scale bench --tenant bench &&
           "$BIN" --database-url "$DB_URL" rebuild --all &&
           psql "$DB_URL" -qc "VACUUM ANALYZE"; }; then
        psql "$PG_URL" -qc "DROP DATABASE $DB"
        echo "loading $DB failed; it was dropped" >&2
        exit 1
    fi
fi
# A portrait projection of an older version (seeded by an older build) is rebuilt first.
if [ "$(psql "$DB_URL" -Atc "SELECT version FROM projection_checkpoints WHERE name = 'customer_portrait'")" \
     != "$(grep -o 'pub const VERSION: i64 = [0-9]*' projections/src/portrait/mod.rs | grep -o '[0-9]*$')" ]; then
    # The PostGraphile peer's timeline function holds on to the old table's row type.
    psql "$DB_URL" -qc "DROP FUNCTION IF EXISTS rm_customer_timeline(rm_customer)"
    "$BIN" --database-url "$DB_URL" rebuild --all
    psql "$DB_URL" -qc "VACUUM ANALYZE"
fi

# Starts the server on $PORT and waits for its health check; sets SERVER to its pid.
start_server() {
    "$BIN" --database-url "$DB_URL" --log-format json serve --listen "127.0.0.1:$PORT" \
        >/tmp/scrm-bench-serve.log 2>&1 &
    SERVER=$!
    for _ in $(seq 1 120); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 1; done
}

# A guide with a typical book of customers: the median guide by customer count.
read -r GUIDE STORE < <(psql "$DB_URL" -AtF ' ' -c "
    WITH g AS (SELECT r.staff_id, s.store_id, count(*) AS n FROM rm_customer_staff r
                 JOIN rm_staff s USING (tenant_id, staff_id)
                WHERE r.tenant_id = 'bench' AND s.departed_at IS NULL
                GROUP BY 1, 2)
    SELECT staff_id, store_id FROM g ORDER BY n OFFSET (SELECT count(*) / 2 FROM g) LIMIT 1")
TOKEN=$("$BIN" token --tenant bench --role guide --staff "$GUIDE" --stores "$STORE" --hours 2)
# 200 of the guide's customers, one per line, in the order requests rotate over them.
CUSTOMER_IDS=$(psql "$DB_URL" -At -c "SELECT customer_id FROM rm_customer_staff
    WHERE tenant_id = 'bench' AND staff_id = '$GUIDE' ORDER BY customer_id LIMIT 200")
# The same customers as the API's global ids.
CUSTOMERS=$(echo "$CUSTOMER_IDS" |
    python3 -c 'import sys,base64,json; print(json.dumps([base64.urlsafe_b64encode(("Customer:"+l.strip()).encode()).decode().rstrip("=") for l in sys.stdin if l.strip()]))')
echo "guide $GUIDE ($STORE), $(echo "$CUSTOMER_IDS" | grep -c .) customers in the portrait rotation"
# The cold rotation (`portrait-cold`): 100,000 customers across the tenant, in an order
# unrelated to their ids, each asked once per 100,000 requests, by operations (the whole
# tenant is in their scope). A portrait cache holds a fraction of them: mostly misses.
OPS_TOKEN=$("$BIN" token --tenant bench --role operations --hours 2)
COLD_IDS_FILE=$(mktemp)
psql "$DB_URL" -At -c "SELECT customer_id FROM rm_customer WHERE tenant_id = 'bench'
    ORDER BY md5(customer_id) LIMIT 100000" > "$COLD_IDS_FILE"

# Writes the request files both systems are asked with into directory $1:
# {scrm,postgraphile}-{portrait,list}.jsonl, a JSON line per request (token and body).
write_requests() {
local WORK=$1
python3 - "$WORK" "$TOKEN" "$GUIDE" "$CUSTOMERS" "$CUSTOMER_IDS" "$OPS_TOKEN" "$COLD_IDS_FILE" <<'PY'
import base64, json, sys
work, token, guide, node_ids, raw_ids, ops_token, cold_file = sys.argv[1:]
auth = "Bearer " + token
node_ids = json.loads(node_ids)
raw_ids = [l.strip() for l in raw_ids.splitlines() if l.strip()]
ours_portrait = ("query P($id: ID!) { customer(id: $id) { name maskedPhone stage purchases "
    "totalSpentYuan lastActivityAt tags(first: 10) { edges { node { name groupName } } } "
    "groups(first: 5) { edges { node { name } } } coupons(first: 5) { edges { node { campaignId "
    "status } } } timeline(first: 20) { edges { node { occurredAt kind summary } } } } }")
peer_portrait = ("query P($id: String!) { rmCustomerByTenantIdAndCustomerId(tenantId: \"bench\", "
    "customerId: $id) { name phone stage purchases totalFen lastActivityAt "
    "tags(first: 10) { nodes { tag { name group { name } } } } "
    "groups(first: 5) { nodes { group { name } } } coupons(first: 5) { nodes { campaignId status } } "
    "timeline(first: 20) { nodes { recordedAt eventType payload } } } }")
ours_list = ("{ customers(first: 20, filter: {stages: [FIRST_PURCHASE, REPURCHASE, LOYAL], "
    "hasUnredeemedCoupon: false}) { pageInfo { hasNextPage endCursor } edges { node { id name "
    "maskedPhone stage lastActivityAt } } } }")
# The peer's list, as connection-filter writes it: the guide's customers in three stages
# with no issued coupon still valid, newest activity first. The guide is named in the
# filter, since PostGraphile scopes rows only by tenant (RLS).
peer_list = ("query L($now: Datetime!) { allRmCustomers(first: 20, orderBy: [LAST_ACTIVITY_AT_DESC, "
    "CUSTOMER_ID_DESC], filter: { stage: { in: [\"first_purchase\", \"repurchase\", \"loyal\"] }, "
    "staffs: { some: { staffId: { equalTo: \"%s\" } } }, coupons: { none: { status: "
    "{ equalTo: \"issued\" }, expiresAt: { greaterThan: $now } } } }) { pageInfo { hasNextPage "
    "endCursor } nodes { customerId name phone stage lastActivityAt } } }") % guide
def write(name, bodies):
    with open(f"{work}/{name}.jsonl", "w") as f:
        for b in bodies:
            f.write(json.dumps({"authorization": auth, "body": b}) + "\n")
write("scrm-portrait", [{"query": ours_portrait, "variables": {"id": i}} for i in node_ids])
cold = [l.strip() for l in open(cold_file) if l.strip()]
def node(raw):
    return base64.urlsafe_b64encode(("Customer:" + raw).encode()).decode().rstrip("=")
def write_as(name, auth_token, bodies):
    with open(f"{work}/{name}.jsonl", "w") as f:
        for b in bodies:
            f.write(json.dumps({"authorization": "Bearer " + auth_token, "body": b}) + "\n")
write_as("scrm-portrait-cold", ops_token,
         [{"query": ours_portrait, "variables": {"id": node(i)}} for i in cold])
write_as("postgraphile-portrait-cold", ops_token,
         [{"query": peer_portrait, "variables": {"id": i}} for i in cold])
write("postgraphile-portrait", [{"query": peer_portrait, "variables": {"id": i}} for i in raw_ids])
write("scrm-list", [{"query": ours_list}])
import datetime
now = datetime.datetime.now(datetime.timezone.utc).isoformat()
write("postgraphile-list", [{"query": peer_list, "variables": {"now": now}}])
PY
}
