#!/usr/bin/env bash
# Builds the Kotlin SDK and runs its tests: unit tests, then TenantAuthIT against the Tansu
# server named by TANSU_URL for the tenant TANSU_TENANT. Both must be set; the integration
# tests fail without them. Extra arguments go to Maven (for example -o once ~/.m2 is warm).
#
#   TANSU_URL=http://127.0.0.1:8080 TANSU_TENANT=acme scripts/test-kotlin-sdk.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)

if [[ -z "${TANSU_URL:-}" || -z "${TANSU_TENANT:-}" ]]; then
  echo "test-kotlin-sdk: TANSU_URL and TANSU_TENANT must name a running server and tenant;" \
    "the integration tests will fail without them" >&2
fi

export TANSU_URL="${TANSU_URL:-}" TANSU_TENANT="${TANSU_TENANT:-}"
exec mvn -q -B -f "$root/sdk/kotlin/pom.xml" "$@" verify
