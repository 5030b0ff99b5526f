#!/usr/bin/env bash
# Runs every test: Go unit and integration tests (real livekit-server, DynamoDB Local, cognito-local),
# the template checks, the agent's tests (also against its production install) and the playground.
# Called by `make test` after the tools are installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

echo "== go vet"
go vet ./shared/... ./functions/... ./infra/...

echo "== go test"
go test -count=1 -timeout 20m ./shared/... ./functions/... ./infra/...

echo "== agent (agentimage: node --test against livekit-server, DynamoDB Local and the stand-ins)"
(cd agentimage && npm test)

echo "== agent as the image ships it (built image, or the Dockerfile's install in a clean directory)"
./infra/scripts/test-agent-image.sh

echo "== playground (headless Chromium end to end on the dev stack)"
./playground/run-tests.sh
