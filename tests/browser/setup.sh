#!/bin/sh
# setup.sh - installs the browser tests' npm packages (playwright-core, pinned in
# package-lock.json) with `npm ci` when node_modules is missing or was installed from another
# lock file; otherwise does nothing. Never downloads a browser: the tests drive Debian's
# chromium. Works with Debian 12's npm 9 (node 18) and newer.
set -eu
cd "$(dirname "$0")"
stamp=node_modules/.audioclass-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
echo "installing the browser tests' npm packages (npm ci in tests/browser)"
# --ignore-scripts: no package may run an install step (none needs one).
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts
echo "$want" >"$stamp"
