#!/usr/bin/env bash
# Lints the SAM template with cfn-lint (which runs the SAM translator first, offline).
# Fails on any finding, warnings included. Usage: infra/scripts/lint-template.sh [template.yaml]
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
template=${1:-$root/template.yaml}

if ! command -v cfn-lint >/dev/null 2>&1; then
  echo "lint-template: cfn-lint not found on PATH (machines of this kind have it in the system Python; elsewhere: pip install cfn-lint==1.51.0)" >&2
  exit 1
fi

# Exit codes are bit flags (2 error, 4 warning, 8 informational; 8 only with --include-checks I):
# anything non-zero fails the build.
if ! cfn-lint --format parseable -- "$template"; then
  echo "lint-template: cfn-lint reported findings in $template" >&2
  exit 1
fi
echo "lint-template: $template is clean ($(cfn-lint --version 2>/dev/null))"
