// Command poolsim runs the warm pool's scaling policy (infra/poolscaling: the code and parameters
// the template encodes) against simulated demand and writes the capacity model (markdown): warm
// share, time to agent, idle worker-hours and cost per scenario and setting, the recommended
// settings and their monthly cost. Deterministic for a seed.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"counselvideo/infra/poolsim"
)

func main() {
	env := poolsim.DefaultEnvironment()
	seed := flag.Uint64("seed", 1, "first seed; the runs of each setting use seed, seed+1, …")
	runs := flag.Int("runs", 5, "runs (seeds) per setting, pooled")
	scales := flag.String("scales", "10,100,1000", "peak concurrent sessions, comma-separated")
	flag.DurationVar(&env.MetricDelay, "metric-delay", env.MetricDelay, "delay before alarms see a finished period's datapoint")
	start := flag.String("task-start", "20s,40s,90s", "Fargate task start distribution: min,mode,max (triangular)")
	search := flag.Bool("search", false, "also search the smallest headroom meeting the targets at each scale")
	out := flag.String("out", "", "write the report to this file instead of stdout")
	flag.Parse()
	if err := run(env, *seed, *runs, *scales, *start, *search, *out); err != nil {
		fmt.Fprintln(os.Stderr, "poolsim:", err)
		os.Exit(2)
	}
}

func run(env poolsim.Environment, seed uint64, runs int, scales, start string, search bool, out string) error {
	if runs < 1 {
		return fmt.Errorf("-runs %d: need at least 1", runs)
	}
	o := poolsim.ReportOptions{Env: env, Search: search, Command: "go run ./infra/cmd/poolsim " + strings.Join(os.Args[1:], " ")}
	for i := range runs {
		o.Seeds = append(o.Seeds, seed+uint64(i))
	}
	for _, s := range strings.Split(scales, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-scales: %q is not a positive number of sessions", s)
		}
		o.Scales = append(o.Scales, n)
	}
	ds, err := durations(start, 3)
	if err != nil {
		return fmt.Errorf("-task-start: %w", err)
	}
	if !(ds[0] <= ds[1] && ds[1] <= ds[2]) {
		return fmt.Errorf("-task-start: want min <= mode <= max, got %s", start)
	}
	o.Env.TaskStart = poolsim.Triangular{Min: ds[0], Mode: ds[1], Max: ds[2]}
	var buf bytes.Buffer
	if err := poolsim.WriteReport(&buf, o); err != nil {
		return err
	}
	if out == "" {
		_, err := os.Stdout.Write(buf.Bytes())
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

func durations(list string, n int) ([]time.Duration, error) {
	parts := strings.Split(list, ",")
	if len(parts) != n {
		return nil, fmt.Errorf("want %d comma-separated durations, got %q", n, list)
	}
	out := make([]time.Duration, n)
	for i, p := range parts {
		d, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%q is not a positive duration", p)
		}
		out[i] = d
	}
	return out, nil
}
