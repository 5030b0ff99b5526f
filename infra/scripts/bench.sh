#!/usr/bin/env bash
# Runs the Go benchmarks of ./shared/... (BenchmarkCreateRoom, BenchmarkAuthenticate, BenchmarkWebhook and
# any added later) and writes the raw output plus a markdown summary to bench/results/go-bench.md; then
# the Lambda measurements (bench/results/lambda.md) and the sweeper at scale (bench/results/sweeper.md).
# Runnable from any directory. Knobs (environment):
#   BENCH_COUNT   runs per benchmark (go test -count), default 1
#   BENCH_TIME    go test -benchtime, default 1s
#   BENCH_FILTER  go test -bench regexp, default . (all)
#   BENCH_BASELINE git ref whose API Lambda is measured side by side with this tree's (warm create-room,
#                  interleaved in one run); default dbc5f0c, the create-room path before issue 10 cut its
#                  round trips. Empty skips it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

out_dir="$root/bench/results"
out="$out_dir/go-bench.md"
mkdir -p "$out_dir"

count=${BENCH_COUNT:-1}
benchtime=${BENCH_TIME:-1s}
filter=${BENCH_FILTER:-.}

raw=$(mktemp)
trap 'rm -f "$raw"' EXIT

echo "== go test -run '^\$' -bench '$filter' -benchmem -count $count -benchtime $benchtime ./shared/..." >&2
go test -run '^$' -bench "$filter" -benchmem -count "$count" -benchtime "$benchtime" ./shared/... | tee "$raw" >&2

cpu_model() {
	local m
	m=$(grep -m1 -E '^(model name|Model|Hardware|cpu model)[[:space:]]*:' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^[[:space:]]*//' || true)
	echo "${m:-unknown}"
}

# summary_table prints one markdown row per benchmark result line, with its package.
summary_table() {
	echo "| package | benchmark | iterations | ns/op | B/op | allocs/op |"
	echo "|---|---|---:|---:|---:|---:|"
	awk '
		/^pkg: / { pkg = $2; sub(/^counselvideo\//, "", pkg) }
		/^Benchmark/ {
			ns = "-"; bytes = "-"; allocs = "-"
			for (i = 3; i < NF; i++) {
				if ($(i+1) == "ns/op") ns = $i
				if ($(i+1) == "B/op") bytes = $i
				if ($(i+1) == "allocs/op") allocs = $i
			}
			printf "| %s | %s | %s | %s | %s | %s |\n", pkg, $1, $2, ns, bytes, allocs
		}
	' "$raw"
}

{
	echo "# Go benchmarks (\`infra/scripts/bench.sh\`)"
	echo
	echo "Measured $(date -u +%Y-%m-%dT%H:%M:%SZ) with $(go version | cut -d' ' -f3-),"
	echo "CPU: $(cpu_model) ($(nproc) cores visible), GOMAXPROCS default; -count $count, -benchtime $benchtime."
	echo
	echo "What each measures (in-process, no network; fakes stand in for LiveKit, ECS and DynamoDB):"
	echo "- \`BenchmarkCreateRoom\` (shared/httpapi): one create-room request through the whole handler: routing, JSON"
	echo "  decode, authentication (fake), the service with the in-memory session store, a real LiveKit token"
	echo "  signature and the JSON response. A new student per iteration, so every call creates a session."
	echo "- \`BenchmarkAuthenticate\` (shared/auth): Cognito JWT verification with a real RS256 signature, keys cached."
	echo "- \`BenchmarkWebhook\` (shared/webhook): one signed participant_joined webhook, verified and applied."
	echo
	echo "## Summary"
	echo
	summary_table
	echo
	echo "## Raw output"
	echo
	echo '```'
	cat "$raw"
	echo '```'
} >"$out"

# ---------------------------------------------------------------------------------------------------
# Lambda measurements: cold start, warm create-room latency against the local stack and the zipped
# arm64 bootstrap size, written by bench-lambda to their own file.
# ---------------------------------------------------------------------------------------------------
(cd "$root" && go run ./infra/cmd/bench-lambda -out bench/results/lambda.md -baseline "${BENCH_BASELINE-dbc5f0c}" >/dev/null)
echo "wrote $root/bench/results/lambda.md" >&2

# ---------------------------------------------------------------------------------------------------
# Sweeper at scale: 1,000 open sessions on DynamoDB Local against livekit-server behind a proxy that
# delays every request by 100 ms, one run per concurrency setting under the Lambda's 50 s deadline.
# ---------------------------------------------------------------------------------------------------
(cd "$root" && go run ./infra/cmd/bench-sweeper -out bench/results/sweeper.md)
echo "wrote $root/bench/results/sweeper.md" >&2

# Warm pool vs cold start: POST → agent joined and POST → first avatar frame decoded at the student (the
# playground page in headless Chromium) for a local pool worker and a cold agent process, and
# create-room's latency in pool mode next to the RunTask path (n=10 each, on the dev stack).
(cd "$root" && go run ./infra/cmd/bench-pool -out bench/results/pool.md)
echo "wrote $root/bench/results/pool.md" >&2

# Agent image contents (production node_modules, dist, compressed app layers) as the Dockerfile installs them.
"$root/infra/scripts/test-agent-image.sh" --measure "$root/bench/results/agent-image.md" >&2
echo "wrote $out" >&2
