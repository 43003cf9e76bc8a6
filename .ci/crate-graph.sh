#!/usr/bin/env bash
# The api crates' arrows point one way (docs/adr/0012-api-crates.md):
#   scrm-server -> scrm-graphql -> scrm-wecom -> scrm-engine -> scrm-projections -> scrm-domain
# Each crate's normal dependency tree must not contain what lies above it, nor the
# transport crates it has no business with. Exits non-zero naming every violation.
set -euo pipefail
cd "$(dirname "$0")/.."

failed=0
# forbid CRATE REGEX WHY: CRATE's normal dependency tree has no package matching REGEX.
forbid() {
    local crate=$1 pattern=$2 why=$3 tree found
    # A cycle between workspace crates makes cargo refuse the whole graph: that fails too.
    if ! tree=$(cargo tree -p "$crate" -e normal --prefix none --no-dedupe); then
        echo "cargo tree failed for $crate (a dependency cycle?)"
        failed=1
        return
    fi
    found=$(echo "$tree" | awk '{print $1}' | sort -u | grep -xE "$pattern" || true)
    if [ -n "$found" ]; then
        echo "$crate depends on $(echo "$found" | tr '\n' ' ')- $why"
        failed=1
    fi
}

# An HTTP server; hyper and tower-http come with reqwest too, so they are not it.
server='axum|axum-core|async-graphql-axum'
net='hyper|hyper-util|reqwest|tower-http'
gql='async-graphql|async-graphql-value|async-graphql-parser'

forbid scrm-domain "scrm-(projections|engine|wecom|graphql|server|fixtures)|sqlx.*|$server|$gql|$net|tokio-postgres|postgres-es|sqlite-es|mio" \
    "the domain is pure"
forbid scrm-projections "scrm-(engine|wecom|graphql|server|fixtures)|$server|$gql|$net" \
    "projections know events and SQL, not transports"
forbid scrm-engine "scrm-(wecom|graphql|server)|$server|$gql|$net" \
    "the engine knows no transport, no GraphQL and no WeCom"
forbid scrm-wecom "scrm-(graphql|server)|$server|$gql" \
    "the WeCom integration knows no HTTP server and no GraphQL"
forbid scrm-graphql "scrm-server|$server" \
    "the schema knows no HTTP server"

if [ "$failed" -ne 0 ]; then
    exit 1
fi
echo "crate graph: ok"
