#!/usr/bin/env bash
# Fails when src/gen differs from what `buf generate` makes of proto/ (someone edited a .proto
# without regenerating, or edited generated code by hand).
set -euo pipefail
cd "$(dirname "$0")/.."
npx buf lint
npx buf generate
if ! git diff --quiet --exit-code -- src/gen || [ -n "$(git status --porcelain -- src/gen)" ]; then
  echo "src/gen is stale: run 'npm run generate' and commit the result" >&2
  git status --short -- src/gen >&2
  exit 1
fi
echo "generated code is up to date"
