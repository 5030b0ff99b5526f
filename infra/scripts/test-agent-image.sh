#!/usr/bin/env bash
# Runs the agent's end-to-end test files, both entry points (the direct entry and the pool worker,
# whose framework code paths load other modules), against the agent as its image ships it, so a
# runtime dependency missing from the production install (or pruned by mistake) fails the build.
# - With a container engine (`docker info` succeeds): builds agentimage/Dockerfile and runs the test
#   with AGENT_IMAGE (the harness starts each agent with `docker run --init`, as ECS does with
#   initProcessEnabled; the worker with `node dist/worker.js` as the container's command).
# - Without one: repeats the image's install in a clean temporary directory: the sources the
#   .dockerignore admits compiled as the build stage does (stand-ins removed, tsc), the production
#   dependencies installed by agentimage/install-production.sh (the deps stage's own script), nothing
#   else (no dev dependencies, no lockfile, no stand-ins); then runs the tests with AGENT_ENTRY on that
#   install (the worker entry beside it) and NODE_ENV=production.
# Called by infra/scripts/test.sh after `make agent-deps`. Usage: test-agent-image.sh [test files...]
# `test-agent-image.sh --measure FILE` runs no test: it installs the same way and writes the sizes
# (the part of the image the project controls) to FILE (infra/scripts/bench.sh: bench/results/agent-image.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
agent=$root/agentimage
report=""
if [ "${1:-}" = "--measure" ]; then report=${2:?--measure needs a file}; shift 2; fi
if [ $# -gt 0 ]; then tests=("$@"); else tests=(dist-test/test/agent.test.js dist-test/test/crisis.test.js dist-test/test/worker.test.js); fi
run_tests() { (cd "$agent" && node --test --test-concurrency=1 --test-reporter=spec "${tests[@]}"); }

if [ -z "$report" ] && docker info >/dev/null 2>&1; then
  tag=counselvideo-agent:test-$$
  trap 'docker image rm -f "$tag" >/dev/null 2>&1 || true' EXIT
  echo "test-agent-image: building $tag from agentimage/Dockerfile"
  docker build -q -t "$tag" "$agent" >/dev/null
  AGENT_IMAGE=$tag run_tests
  exit
fi

echo "test-agent-image: no container engine; installing the agent as the Dockerfile does"
[ -x "$agent/node_modules/.bin/tsc" ] || { echo "test-agent-image: run make agent-deps first" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/agent-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/build" "$work/app"

# build stage: its `npm ci` is the full install `make agent-deps` already made from the same lockfile.
cp -R "$agent/package.json" "$agent/package-lock.json" "$agent/tsconfig.json" "$agent/src" "$work/build/"
ln -s "$agent/node_modules" "$work/build/node_modules"
(cd "$work/build" && rm -rf src/standins && node_modules/.bin/tsc -p tsconfig.json --outDir "$work/app/dist")

# deps stage, then the runtime stage's layout: package.json, node_modules, dist.
cp "$agent/package.json" "$agent/package-lock.json" "$agent/install-production.sh" "$work/app/"
(cd "$work/app" && NODE_ENV=production sh install-production.sh && rm package-lock.json install-production.sh)
echo "test-agent-image: production install $(du -sm "$work/app/node_modules" | cut -f1) MB node_modules, $(du -sk "$work/app/dist" | cut -f1) KB dist"

if [ -z "$report" ]; then
  AGENT_ENTRY=$work/app/dist/main.js NODE_ENV=production run_tests
  exit
fi
mb() { du -sm "$@" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
nm=$work/app/node_modules
{
  echo "# Agent image contents (\`infra/scripts/test-agent-image.sh --measure\`)"
  echo
  echo "Measured $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -sm), Node $(node --version): the app layers of the"
  echo "runtime stage (\`/app\`: package.json, node_modules from install-production.sh, dist), installed as the"
  echo "Dockerfile does. The image adds the base (\`node:22-bookworm-slim\`) and ca-certificates; no container"
  echo "engine or registry was reachable, so those and the final arm64 image were not measured here (with a"
  echo "container engine: \`docker image inspect --format '{{.Size}}'\`). Native packages are this platform's"
  echo "(the arm64 ones are of similar size)."
  echo
  echo "| part | size |"
  echo "|---|---:|"
  echo "| node_modules (on disk) | $(mb "$nm") MB |"
  echo "| dist (compiled agent) | $(du -sk "$work/app/dist" | cut -f1) KB |"
  echo "| app layers, tar + gzip -6 (close to what Fargate pulls for them) | $(tar -C "$work/app" -cf - . | gzip -6 | wc -c | awk '{printf "%.1f", $1 / 1048576}') MB |"
  echo
  echo "Largest packages (MB on disk):"
  echo
  echo "| package | MB |"
  echo "|---|---:|"
  (cd "$nm" && du -sm -- @*/* [!@]* 2>/dev/null | sort -rn | head -12 | awk '{printf "| `%s` | %s |\n", $2, $1}')
  echo
  echo "Pruned by install-production.sh: \`typescript\` (23 MB; only @livekit/throws-transformer's compile-time"
  echo "transformer uses it). Kept although the direct room join never loads it: \`@livekit/local-inference*\`"
  echo "($(mb "$nm"/@livekit/local-inference*) MB, almost incompressible): the framework's worker mode loads it when present to start"
  echo "its end-of-turn inference process, and skips that process (with a warning) when it is absent."
} >"$report"
echo "test-agent-image: wrote $report"
