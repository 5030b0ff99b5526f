// Package poolsim simulates the warm pool on AWS, which cannot run here: students arriving, ECS
// starting and stopping Fargate tasks, workers emitting the pool metric, CloudWatch aggregating it
// into datapoints, and Application Auto Scaling running the pool's policy (infra/poolscaling, the
// same code and parameters the template encodes). It is a discrete-event simulation, deterministic
// for a seed. Simplifications names everything it does not model.
package poolsim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Dist is a distribution of durations.
type Dist interface {
	Sample(r *rand.Rand) time.Duration
	Mean() time.Duration
	String() string
}

// Triangular is the triangular distribution on [Min, Max] with its mode at Mode. Min == Max is a
// fixed duration.
type Triangular struct{ Min, Mode, Max time.Duration }

func (d Triangular) Sample(r *rand.Rand) time.Duration {
	a, c, b := d.Min.Seconds(), d.Mode.Seconds(), d.Max.Seconds()
	if b <= a {
		return d.Min
	}
	u := r.Float64()
	var x float64
	if u < (c-a)/(b-a) {
		x = a + math.Sqrt(u*(b-a)*(c-a))
	} else {
		x = b - math.Sqrt((1-u)*(b-a)*(b-c))
	}
	return seconds(x)
}

func (d Triangular) Mean() time.Duration { return (d.Min + d.Mode + d.Max) / 3 }

func (d Triangular) String() string {
	if d.Min == d.Max {
		return fmt.Sprintf("fixed %s", d.Min)
	}
	return fmt.Sprintf("triangular(min %s, mode %s, max %s; mean %s)", d.Min, d.Mode, d.Max, d.Mean().Round(time.Second))
}

// ClippedLogNormal is a log-normal distribution (median Median, shape Sigma) clipped to [Min, Max].
type ClippedLogNormal struct {
	Median   time.Duration
	Sigma    float64
	Min, Max time.Duration
}

func (d ClippedLogNormal) Sample(r *rand.Rand) time.Duration {
	x := d.Median.Seconds() * math.Exp(d.Sigma*r.NormFloat64())
	return seconds(math.Min(math.Max(x, d.Min.Seconds()), d.Max.Seconds()))
}

// Mean is the clipped distribution's exact mean.
func (d ClippedLogNormal) Mean() time.Duration {
	mu, s := math.Log(d.Median.Seconds()), d.Sigma
	a, b := d.Min.Seconds(), d.Max.Seconds()
	phi := func(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
	za, zb := (math.Log(a)-mu)/s, (math.Log(b)-mu)/s
	inside := math.Exp(mu+s*s/2) * (phi(zb-s) - phi(za-s))
	return seconds(a*phi(za) + inside + b*(1-phi(zb)))
}

func (d ClippedLogNormal) String() string {
	return fmt.Sprintf("log-normal(median %s, sigma %.2f) clipped to [%s, %s]; mean %s",
		d.Median, d.Sigma, d.Min, d.Max, d.Mean().Round(time.Second))
}

func seconds(x float64) time.Duration { return time.Duration(x * float64(time.Second)) }

// Environment is what the simulation assumes about the world around the policy.
type Environment struct {
	SessionLength Dist // how long the agent stays with a student
	TaskStart     Dist // ECS asks for a Fargate task → the worker is registered (image pull included)
	// WarmDispatch: create-room → the pool worker's agent in the room (measured ~0.26-0.34 s).
	WarmDispatch time.Duration
	// ColdFallbackWait: with the pool on, how long create-room waits for a worker to take the job
	// before it falls back to RunTask (issue 10's bound).
	ColdFallbackWait time.Duration
	// MetricDelay: a period's datapoint is visible to alarms this long after the period ends
	// (EMF lines go through CloudWatch Logs first).
	MetricDelay time.Duration
	// ActuationDelay: an alarm invokes the policy → ECS has the new desired count and starts tasks.
	ActuationDelay time.Duration
	Price          Price
}

// Price is the Fargate on-demand price and the task size.
type Price struct {
	PerVCPUHour, PerGBHour float64 // USD
	VCPU, MemoryGB         float64
	Source                 string
}

// PerTaskHour is what one task costs per hour.
func (p Price) PerTaskHour() float64 { return p.VCPU*p.PerVCPUHour + p.MemoryGB*p.PerGBHour }

// FargateARMUSEast1 is Fargate Linux/ARM (Graviton) on-demand in us-east-1 at today's agent task
// size (template.yaml AgentCpu 512, AgentMemory 1024).
var FargateARMUSEast1 = Price{
	PerVCPUHour: 0.03238, PerGBHour: 0.00356, VCPU: 0.5, MemoryGB: 1,
	Source: "Fargate Linux/ARM on-demand, us-east-1: $0.03238 per vCPU-hour, $0.00356 per GB-hour " +
		"(rate tables of vantage.sh/blog/fargate-pricing and cloudburn.io/blog/aws-fargate-pricing, " +
		"the latter \"as of March 2026\" from the AWS Price List API; looked up 2026-12-01; AWS's own pricing page was not reachable from here)",
}

// DefaultEnvironment is the environment the capacity model (docs/capacity.md) assumes.
func DefaultEnvironment() Environment {
	return Environment{
		// Counseling conversations: a median of 20 minutes, a long tail, and the API's maximum session
		// (SESSION_MAX_DURATION_SECONDS 3600) as the hard end. An assumption to replace with the
		// session records' measured durations once there are some.
		SessionLength: ClippedLogNormal{Median: 20 * time.Minute, Sigma: 0.5, Min: time.Minute, Max: time.Hour},
		// Fargate start 20-90 s with the image pull (issue 11; agents-and-aws notes), most near 40 s.
		TaskStart:        Triangular{Min: 20 * time.Second, Mode: 40 * time.Second, Max: 90 * time.Second},
		WarmDispatch:     300 * time.Millisecond,
		ColdFallbackWait: 3 * time.Second,
		MetricDelay:      20 * time.Second,
		ActuationDelay:   5 * time.Second,
		Price:            FargateARMUSEast1,
	}
}

// Simplifications is what the simulation leaves out or assumes; the command prints it.
var Simplifications = []string{
	"Alarms see a period's datapoint only once the period is complete, MetricDelay after its end; real alarms can evaluate a partial newest period, which reads low on counts (more scale-out, never less) — the M-of-M datapoints setting guards against that.",
	"CloudWatch evaluates alarms at fixed instants (every period for 10-s alarms, every minute otherwise), half an interval after the datapoints' boundaries; Application Auto Scaling acts on an invocation after ActuationDelay and ECS starts every task at once (no launch-rate throttling, no Fargate capacity shortage, no vCPU quota).",
	"Application Auto Scaling's current capacity is the service's desired count (tasks still starting included); target tracking's new capacity is ceil(capacity × metric / target) from the newest datapoint; its scale-in alarm sits at 90% of the target.",
	"Scale-out cooldown: a scale-out during the cooldown is computed from the capacity before the scale-out that started it and applies only if larger; it does not extend the cooldown. Step scaling aggregates the breach over the alarm's datapoints (Maximum for scale-out, Minimum for scale-in).",
	"ECS scale-in stops tasks still starting first, then idle workers; workers in a session are protected and never stopped. A worker stopped while a dispatch reaches it, deployments (which suspend scale-in), task failures and Spot interruptions are not modelled.",
	"Arrivals are a Poisson process with the scenario's rate; every arrival is a new session (no resumes, no student who never joins). The pool serves a student only if a worker is idle at the arrival instant; otherwise the session goes cold (ColdFallbackWait + a Fargate start) and never takes a pool worker later.",
	"Cost counts Fargate compute only (per second, no 1-minute minimum), for pool workers that are idle or starting; CloudWatch (one custom metric, two alarms, EMF log ingestion) costs a few dollars a month and is stated separately in docs/capacity.md.",
}
