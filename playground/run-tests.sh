#!/usr/bin/env bash
# Runs the playground's end-to-end test (headless Debian Chromium against a dev stack it starts itself).
# Called by `make test`; needs make tools (livekit-server, DynamoDB Local, cognito-local, chromium) and
# make agent-deps (agentimage/dist) first. Output (screenshots, logs) goes to playground/test-output/.
set -euo pipefail
cd "$(dirname "$0")"

# `make test` installs the pinned packages first (make playground-deps); run by hand, install when missing.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "playground: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

echo "playground: npm test"
npm test
