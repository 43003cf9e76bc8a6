#!/usr/bin/env bash
# Schema checks (API.md #38): the committed SDL against the relay connection rules
# (graphql-schema-linter), and against the SDL of BASE (default: the previous commit)
# with graphql-inspector's diff, failing on a breaking change docs/schema-changes.md
# does not announce. The drift test (tests/tests/api/http.rs) keeps schema.graphql equal
# to what the server serves.
#
#   bash .ci/schema.sh [BASE]
set -euo pipefail
cd "$(dirname "$0")/.."
BASE="${1:-HEAD~1}"
(cd tests/audit && npm ci --silent --no-audit --no-fund)
tests/audit/node_modules/.bin/graphql-schema-linter \
    --rules relay-connection-types-spec,relay-page-info-spec,relay-connection-arguments-spec \
    schema.graphql
old=$(mktemp)
trap 'rm -f "$old"' EXIT
if git show "$BASE:schema.graphql" >"$old" 2>/dev/null; then
    echo "==> schema diff against $BASE"
    node tests/audit/schema-diff.mjs "$old" schema.graphql docs/schema-changes.md
else
    echo "==> no schema.graphql at $BASE: nothing to diff"
fi
