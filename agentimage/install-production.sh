#!/bin/sh
# The agent's production install, exactly as the image has it: run by the Dockerfile's deps stage and
# by infra/scripts/test-agent-image.sh, whose end-to-end run proves the result starts and serves a
# session. Run it next to package.json and package-lock.json, with NODE_ENV=production.
set -eu
npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error
# typescript (23 MB) arrives only as a dependency of @livekit/throws-transformer's compile-time
# transformer: nothing the agent or the framework's worker code runs loads it (module-load trace of
# the end-to-end test; the framework imports only the transformer's runtime helpers).
rm -rf node_modules/typescript node_modules/.bin/tsc node_modules/.bin/tsserver
