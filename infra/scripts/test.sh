#!/usr/bin/env bash
# Runs every test: Go unit and integration tests (real livekit-server, DynamoDB Local, cognito-local),
# the template checks, the agent's tests (its end-to-end files against its production install) and the
# playground. Called by `make test` after the tools are installed.
#
# The Go suite and the agent suite each start their own components on free loopback ports and spend
# most of their time waiting on real servers, so they run side by side (about halving CI's wall time);
# each one's output is shown whole when it ends. The playground (a dev stack and Chromium) runs last.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
logs=$(mktemp -d "${TMPDIR:-/tmp}/counselvideo-test.XXXXXX")
trap 'rm -rf "$logs"' EXIT

go_suite() {
  echo "== go vet"
  go vet ./shared/... ./functions/... ./infra/...
  echo "== go test"
  go test -count=1 -timeout 20m ./shared/... ./functions/... ./infra/...
}

# The end-to-end files test-agent-image.sh runs against the production install are not run a second
# time against the development install: the production install is the stricter of the two.
image_files=$(sed -n 's/.*else tests=(\([^)]*\)).*/\1/p' infra/scripts/test-agent-image.sh)
[ -n "$image_files" ] || { echo "test.sh: cannot read test-agent-image.sh's default test files" >&2; exit 1; }
agent_suite() {
  local files
  files=$(cd agentimage && node -e '
    const skip = new Set(process.argv[1].split(/\s+/));
    const all = require("./package.json").scripts.test.split(/\s+/).filter((w) => w.startsWith("dist-test/"));
    console.log(all.filter((f) => !skip.has(f)).join(" "));' "$image_files")
  echo "== agent (agentimage: node --test against livekit-server, DynamoDB Local and the stand-ins)"
  # shellcheck disable=SC2086 # a list of file names without spaces
  (cd agentimage && node --test --test-concurrency=1 --test-reporter=spec $files)
  echo "== agent as the image ships it (built image, or the Dockerfile's install in a clean directory)"
  ./infra/scripts/test-agent-image.sh
}

go_suite >"$logs/go.log" 2>&1 &
go_pid=$!
agent_suite >"$logs/agent.log" 2>&1 &
agent_pid=$!
status=0
wait "$go_pid" || status=1
cat "$logs/go.log"
wait "$agent_pid" || status=1
cat "$logs/agent.log"
if [ "$status" -ne 0 ]; then
  echo "test.sh: the Go suite or the agent suite failed (see above)" >&2
  exit 1
fi

echo "== playground (headless Chromium end to end on the dev stack)"
./playground/run-tests.sh
