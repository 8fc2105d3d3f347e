#!/usr/bin/env bash
# Deploys the Worker (npm run deploy): first says what the deploy leaves open (rooms without
# keys, pages of any origin; scripts/deploy-check.mjs), then `wrangler deploy`, which builds
# with scripts/build.sh. Arguments go to wrangler: `npm run deploy -- --dry-run` builds and
# bundles without uploading or logging in.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

check=()
for arg in "$@"; do [ "$arg" = --dry-run ] && check=(--offline); done
node scripts/deploy-check.mjs ${check[@]+"${check[@]}"}
exec wrangler deploy "$@"
