#!/usr/bin/env bash
# GraphQL-over-HTTP spec audit (npm graphql-http, auditServer) against a live scrm server.
#
#   cargo build --bin scrm && bash .ci/audit.sh                                   # debug build
#   cargo build --release --bin scrm && SCRM_BIN=target/release/scrm bash .ci/audit.sh
#
# Makes a fresh PostgreSQL database, starts `scrm serve` on a free loopback port, mints
# an analyst token for tenant `audit`, runs tests/audit/audit.mjs and exits with its
# status: 0 when every MUST holds, 1 when one fails, 2 when the audit could not run.
# The server and the database are removed on exit; on failure the server log's tail is
# printed.
#
# Environment:
#   SCRM_BIN           server binary (default target/debug/scrm)
#   SCRM_TEST_PG_URL   PostgreSQL URL with rights to create databases
#                      (default postgres://postgres@127.0.0.1:5432/postgres)
#   SCRM_AUDIT_SEED=1  also load the `tiny` demo data into tenant `audit` first
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${SCRM_BIN:-target/debug/scrm}"
PG_URL="${SCRM_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
DB="scrm_audit_$$"
TENANT=audit
ROLE=analyst
STAFF=audit-bot
# A fixed, throwaway signing secret for this test server only (>= 32 bytes).
export SCRM_JWT_SECRET="audit-only-a4487827edbfab9670d284bcd3e23f2a7901762f447a7171"

LOG="${TMPDIR:-/tmp}/scrm-audit-$$.log"
SERVER_PID=""
DB_CREATED=""

step() { printf '\n==> %s\n' "$*"; }
die() { echo "audit.sh: $*" >&2; exit 2; }

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    set +e
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    if [[ $status -ne 0 && -s "$LOG" ]]; then
        printf '\n==> last 50 lines of the server log (%s)\n' "$LOG"
        tail -n 50 "$LOG"
    fi
    if [[ -n "$DB_CREATED" ]]; then
        psql "$PG_URL" -qX -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null ||
            echo "audit.sh: could not drop database $DB" >&2
    fi
    [[ $status -eq 0 ]] && rm -f "$LOG"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The URL of database $2 on the server of URL $1 (same credentials, host and options).
db_url() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$1" "$2"
    else
        local base="${1%%\?*}" query=""
        [[ "$1" == *\?* ]] && query="?${1#*\?}"
        echo "${base%/*}/$2$query"
    fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' && return
    fi
    local p
    for p in $(seq 18181 18200); do
        port_in_use "$p" || { echo "$p"; return; }
    done
    die "no free port in 18181-18200"
}

step "checks"
[[ -x "$BIN" ]] || die "no server binary at $BIN: run 'cargo build --bin scrm' (or set SCRM_BIN)"
for tool in psql node npm curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
done
node --version

step "database $DB"
# Leftovers of earlier, killed runs: scrm_audit_<pid> whose process is gone.
psql "$PG_URL" -AtX -c "SELECT datname FROM pg_database WHERE datname ~ '^scrm_audit_[0-9]+$'" |
    while read -r old; do
        kill -0 "${old#scrm_audit_}" 2>/dev/null ||
            psql "$PG_URL" -qX -c "DROP DATABASE IF EXISTS \"$old\" WITH (FORCE)" >/dev/null || true
    done
psql "$PG_URL" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$DB\"" >/dev/null
DB_CREATED=1
DATABASE_URL="$(db_url "$PG_URL" "$DB")"

if [[ "${SCRM_AUDIT_SEED:-}" == 1 ]]; then
    step "seed (tiny, tenant $TENANT)"
    "$BIN" --database-url "$DATABASE_URL" seed --scale tiny --tenant "$TENANT"
fi

step "server"
PORT="$(free_port)"
echo "listening on 127.0.0.1:$PORT, log in $LOG"
"$BIN" --database-url "$DATABASE_URL" serve --listen "127.0.0.1:$PORT" >"$LOG" 2>&1 &
SERVER_PID=$!
up=""
for _ in $(seq 1 120); do # 60 s
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        wait "$SERVER_PID" && rc=0 || rc=$?
        SERVER_PID=""
        die "the server exited (status $rc) before /healthz answered"
    fi
    if [[ "$(curl -fsS --max-time 2 "http://127.0.0.1:$PORT/healthz" 2>/dev/null)" == ok* ]]; then
        up=1
        break
    fi
    sleep 0.5
done
[[ -n "$up" ]] || die "GET /healthz did not answer 200 \"ok\" within 60 s"
echo "up"

step "token (tenant $TENANT, role $ROLE, staff $STAFF)"
TOKEN="$("$BIN" --database-url "$DATABASE_URL" token --tenant "$TENANT" --role "$ROLE" --staff "$STAFF")"
TOKEN="$(printf '%s\n' "$TOKEN" | sed '/^[[:space:]]*$/d' | tail -n 1 | tr -d '[:space:]')"
[[ "$TOKEN" =~ ^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$ ]] ||
    die "'scrm token' did not print a JWT (got: ${TOKEN:0:80})"
echo "minted (${#TOKEN} chars)"

step "npm dependencies"
if [[ ! -d tests/audit/node_modules ]]; then
    (cd tests/audit && npm ci --no-audit --no-fund)
else
    echo "tests/audit/node_modules present"
fi

step "graphql-http audit of http://127.0.0.1:$PORT/graphql"
status=0
SCRM_AUDIT_TOKEN="$TOKEN" node tests/audit/audit.mjs "http://127.0.0.1:$PORT/graphql" || status=$?
exit "$status"
