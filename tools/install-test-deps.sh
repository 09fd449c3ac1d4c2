#!/usr/bin/env bash
# Installs what `make test` needs beyond Debian's packages: the AWS SDK for
# JavaScript that tests/clients/js drives, exactly as package-lock.json pins
# it, from the npm registry. Skipped when node_modules already matches the
# lock file; re-running it is cheap.
set -euo pipefail

js_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/clients/js"
lock="$js_dir/package-lock.json"
stamp="$js_dir/node_modules/.shmq-lock.sha256"

if ! command -v npm >/dev/null 2>&1; then
  echo "install-test-deps: npm not found; run tools/install-deps.sh (the JS client tests will fail)" >&2
  exit 0
fi

want="$(sha256sum "$lock" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

echo "install-test-deps: npm ci in tests/clients/js"
(cd "$js_dir" && npm ci --no-audit --no-fund --loglevel=error)
echo "$want" >"$stamp"
