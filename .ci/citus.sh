#!/usr/bin/env bash
# A local Citus cluster (1 coordinator + 2 workers on loopback) for the Citus tests:
# installs the Citus build this machine kind carries and starts the cluster once; later
# calls find it running. Prints the coordinator's admin URL on its last line.
#
#   .ci/citus.sh            ensure it runs
#   .ci/citus.sh stop       stop it
#
# SCRM_CITUS_DIR: the folder with install.sh and cluster.sh (default /work/shared/citus,
# an absolute path because CI runs from a clone elsewhere). SCRM_CITUS_DATA: where the
# nodes keep their data (default /tmp/scrm-citus). SCRM_CITUS_PORT: the coordinator's port
# (default 9700; workers on the next two).
set -euo pipefail
citus=${SCRM_CITUS_DIR:-/work/shared/citus}
data=${SCRM_CITUS_DATA:-/tmp/scrm-citus}
port=${SCRM_CITUS_PORT:-9700}
url="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"

if [ "${1:-}" = stop ]; then
    bash "$citus/cluster.sh" stop "$data"
    exit 0
fi
[ -f "$citus/cluster.sh" ] || { echo "citus: $citus/cluster.sh not found (set SCRM_CITUS_DIR)" >&2; exit 1; }
mkdir -p "$data"
# Test binaries run at once; one of them starts the cluster, the others wait for it.
exec 9>"$data.lock"
flock 9
ready() {
    for p in "$port" $((port + 1)) $((port + 2)); do
        pg_isready -q -h 127.0.0.1 -p "$p" || return 1
    done
}
if ! ready; then
    if [ "$(id -u)" = 0 ]; then
        bash "$citus/install.sh" >&2 9>&-
    fi
    # A node left running from an earlier, killed cluster would make pg_ctl refuse.
    bash "$citus/cluster.sh" stop "$data" >&2 9>&- || true
    bash "$citus/cluster.sh" start "$data" "$port" 2 >&2 9>&-
fi
# A prepared transaction whose coordinator session was cut off (a test stopping its
# server mid-commit) holds its worker's readers back until Citus recovers it: every
# second here, not every minute (docs/adr/0018-citus.md).
psql "$url" -qAtc "ALTER SYSTEM SET citus.recover_2pc_interval = '1s'" -c "SELECT pg_reload_conf()" >/dev/null
echo "$url"
