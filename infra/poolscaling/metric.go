// Package poolscaling is the warm pool's scaling policy as code: the parameters template.yaml gives
// Application Auto Scaling for the pool's ECS service, the metric the workers emit for it, and a pure
// function that mirrors what Application Auto Scaling and CloudWatch do with them. The simulator
// (infra/poolsim) runs this same code; the template check compares the template with it.
package poolscaling

import (
	"fmt"
	"time"
)

// The metric. Every pool worker (an ECS task running the agent's worker entry point) writes one
// CloudWatch embedded-metric-format (EMF) line to its log every EmitInterval, at the middle of each
// wall-clock interval (:05, :15, ... so exactly one sample per worker lands in each 10-second
// period), with PoolWorkerBusy = 1 while it holds a session and 0 while it waits for a dispatch.
// CloudWatch aggregates the samples of all workers per period, so for one period:
//
//	Sum(PoolWorkerBusy)         = busy workers   × samples per worker in the period
//	SampleCount(PoolWorkerBusy) = running workers × samples per worker in the period
//
// Tasks still starting (image pull, container start) emit nothing: they are in the service's
// desired count but not in the metric, which is why the policy leans on cooldowns (see policy.go).
const (
	Namespace  = "CounselVideo/AgentPool"
	MetricName = "PoolWorkerBusy"
	// DimensionName's value is the stack name, so two stacks in one account never mix. One dimension
	// value per stack means one custom metric, however many workers emit it.
	DimensionName = "Pool"
	Unit          = "Count"
	// StorageResolution 1 makes it a high-resolution metric, which the 10-second alarms need.
	StorageResolution = 1
	// EmitInterval: one sample per worker per 10-second period.
	EmitInterval = 10 * time.Second
)

// EMFDocument is the log line a worker writes (as one JSON object per line), in the embedded metric
// format: _aws tells CloudWatch Logs which member is the metric and which is the dimension. at is the
// sample's own time (the middle of its interval); CloudWatch aggregates by this timestamp.
func EMFDocument(pool string, busy bool, at time.Time) map[string]any {
	value := 0
	if busy {
		value = 1
	}
	return map[string]any{
		"_aws": map[string]any{
			"Timestamp": at.UnixMilli(),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  Namespace,
				"Dimensions": []any{[]any{DimensionName}},
				"Metrics": []any{map[string]any{
					"Name": MetricName, "Unit": Unit, "StorageResolution": StorageResolution,
				}},
			}},
		},
		DimensionName: pool,
		MetricName:    value,
	}
}

// SampleTime is the instant within the interval containing t at which a worker emits its sample: the
// middle of the interval, so late timers (up to half an interval) still land in the right period.
func SampleTime(t time.Time) time.Time {
	return t.Truncate(EmitInterval).Add(EmitInterval / 2)
}

// MetricQuery is one entry of a CloudWatch metric-math query (a CloudFormation
// TargetTrackingMetricDataQuery or an alarm's Metrics entry): either a statistic of the metric or an
// expression over other entries.
type MetricQuery struct {
	ID         string
	Stat       string // Sum or SampleCount; empty for an expression
	Expression string // empty for a statistic
	ReturnData bool
}

// samplesPerWorker is how many samples one running worker puts in a period.
func samplesPerWorker(period time.Duration) int { return int(period / EmitInterval) }

// Queries is the metric math that turns the samples into the policy's metric, for the template. The
// headroom appears as the literal string headroom (a template reference such as
// "${PoolHeadroom}", or a number). Target tracking tracks
// 100 × (busy + headroom) / running against a target of 100, which makes Application Auto Scaling's
// proportional rule land on desired ≈ busy + headroom (+ tasks still starting). Step scaling alarms on
// the idle deficit, headroom − idle, and on the idle excess, idle − headroom.
func (p Policy) Queries(headroom string) (scaleOut, scaleIn []MetricQuery) {
	n := samplesPerWorker(p.period())
	stats := []MetricQuery{
		{ID: "busy", Stat: "Sum"},
		{ID: "running", Stat: "SampleCount"},
	}
	if p.Kind == TargetTracking {
		// One expression serves both of the alarms Application Auto Scaling creates.
		e := MetricQuery{ID: "utilization", ReturnData: true,
			Expression: fmt.Sprintf("100 * (busy + %d * %s) / running", n, headroom)}
		return append(stats, e), nil
	}
	idle := fmt.Sprintf("(running - busy) / %d", n)
	out := MetricQuery{ID: "deficit", ReturnData: true, Expression: fmt.Sprintf("%s - %s", headroom, idle)}
	in := MetricQuery{ID: "excess", ReturnData: true, Expression: fmt.Sprintf("%s - %s", idle, headroom)}
	return append(stats[:2:2], out), append(stats[:2:2], in)
}
