package poolscaling

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Kind is the Application Auto Scaling policy type.
type Kind string

const (
	// TargetTracking: Application Auto Scaling creates and owns the alarms (1-minute datapoints,
	// 3 to scale out, 15 to scale in) and sets capacity proportionally to metric / target.
	TargetTracking Kind = "target-tracking"
	// StepScaling: our own CloudWatch alarms (here on the 10-second high-resolution metric) invoke
	// fixed ChangeInCapacity steps chosen by the size of the breach.
	StepScaling Kind = "step-scaling"
)

// What Application Auto Scaling and CloudWatch fix for target tracking; no parameter changes these.
const (
	// TargetValue: the target tracking metric is 100 × (busy + headroom) / running.
	TargetValue = 100.0
	// TargetTrackingPeriod: Application Auto Scaling's target tracking metric has no Period setting
	// (EC2 Auto Scaling's has; the applicationautoscaling API's TargetTrackingMetricStat has not), so
	// its alarms see 1-minute datapoints.
	TargetTrackingPeriod = time.Minute
	// The managed alarms: high after 3 breaching 1-minute datapoints, low after 15.
	TargetTrackingScaleOutDatapoints = 3
	TargetTrackingScaleInDatapoints  = 15
	// TargetTrackingScaleInRatio: the managed low alarm sits about 10% under the target ("scale in
	// only when utilization is sufficiently below the target, usually more than 10% lower").
	TargetTrackingScaleInRatio = 0.9
	// AlarmActionRepeat: an alarm that stays in ALARM invokes its Auto Scaling action again once a
	// minute, whatever its period.
	AlarmActionRepeat = time.Minute
)

// Policy is the pool's scaling configuration: what template.yaml encodes.
type Policy struct {
	Kind Kind
	// Min and Max bound the ECS service's desired count (the scalable target). Max 0 turns the pool
	// off: the service runs no task and every session takes the per-session RunTask path.
	Min, Max int
	// Headroom is the number of idle workers to keep ready ahead of demand.
	Headroom int

	// Period, ScaleOutDatapoints and ScaleInDatapoints describe the step scaling alarms (each alarm
	// goes to ALARM when that many consecutive datapoints breach). Target tracking leaves them zero:
	// its alarms are AWS's (the TargetTracking constants).
	Period             time.Duration
	ScaleOutDatapoints int
	ScaleInDatapoints  int
	// ScaleInSlack: step scaling scales in only while more than Headroom+ScaleInSlack workers are idle.
	ScaleInSlack int

	ScaleOutCooldown time.Duration
	ScaleInCooldown  time.Duration
}

// Off reports whether the pool is turned off (Max 0).
func (p Policy) Off() bool { return p.Max == 0 }

func (p Policy) period() time.Duration {
	if p.Kind == TargetTracking {
		return TargetTrackingPeriod
	}
	return p.Period
}

// MetricPeriod is the period of the datapoints the alarms evaluate.
func (p Policy) MetricPeriod() time.Duration { return p.period() }

// EvaluationInterval is how often CloudWatch evaluates the alarms: every period for high-resolution
// alarms, every minute otherwise.
func (p Policy) EvaluationInterval() time.Duration { return min(p.period(), time.Minute) }

func (p Policy) scaleOutDatapoints() int {
	if p.Kind == TargetTracking {
		return TargetTrackingScaleOutDatapoints
	}
	return p.ScaleOutDatapoints
}

func (p Policy) scaleInDatapoints() int {
	if p.Kind == TargetTracking {
		return TargetTrackingScaleInDatapoints
	}
	return p.ScaleInDatapoints
}

// Validate names every setting AWS would refuse or that cannot work.
func (p Policy) Validate() error {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	if p.Kind != TargetTracking && p.Kind != StepScaling {
		bad("kind %q is neither %q nor %q", p.Kind, TargetTracking, StepScaling)
	}
	switch {
	case p.Max < 0:
		bad("max %d is negative", p.Max)
	case p.Off():
		// Nothing else matters: no task runs, no alarm acts.
		if p.Min != 0 {
			bad("max 0 turns the pool off, so min must be 0 (is %d)", p.Min)
		}
		return errors.Join(problems...)
	default:
		// With no task running no worker emits the metric, and target tracking multiplies by
		// the current capacity: a pool at 0 would never scale out.
		if p.Min < 1 {
			bad("min %d: a pool that is on needs at least 1 task", p.Min)
		}
		if p.Min > p.Max {
			bad("min %d is above max %d", p.Min, p.Max)
		}
		if p.Headroom < 1 || p.Headroom > p.Max {
			bad("headroom %d must be between 1 and max %d", p.Headroom, p.Max)
		}
	}
	if p.Kind == TargetTracking && (p.Period != 0 || p.ScaleOutDatapoints != 0 || p.ScaleInDatapoints != 0 || p.ScaleInSlack != 0) {
		bad("target tracking's period and datapoints are AWS's (leave them zero)")
	}
	if p.Kind == StepScaling {
		// CloudWatch alarms on high-resolution metrics take 10 or 30 seconds, else whole minutes.
		if p.Period != 10*time.Second && p.Period != 30*time.Second && (p.Period <= 0 || p.Period%time.Minute != 0) {
			bad("period %s: CloudWatch alarms take 10 s, 30 s or a multiple of 60 s", p.Period)
		}
		if p.ScaleOutDatapoints < 1 || p.ScaleInDatapoints < 1 {
			bad("datapoints to alarm must be at least 1 (scale-out %d, scale-in %d)", p.ScaleOutDatapoints, p.ScaleInDatapoints)
		}
		if p.ScaleInSlack < 0 {
			bad("scale-in slack %d is negative", p.ScaleInSlack)
		}
	}
	if p.ScaleOutCooldown < 0 || p.ScaleInCooldown < 0 {
		bad("cooldowns must not be negative")
	}
	return errors.Join(problems...)
}

// Datapoint is one CloudWatch datapoint of the metric for one period, already divided by the
// samples per worker: Busy = Sum / samples, Running = SampleCount / samples (the metric math's
// first step). A period in which no worker emitted has no datapoint at all.
type Datapoint struct {
	Start   time.Duration // start of the period, from any fixed origin
	Busy    float64
	Running float64
}

// NewDatapoint makes the datapoint of one period from CloudWatch's Sum and SampleCount.
func NewDatapoint(start, period time.Duration, sum, sampleCount float64) Datapoint {
	n := float64(samplesPerWorker(period))
	return Datapoint{Start: start, Busy: sum / n, Running: sampleCount / n}
}

func (d Datapoint) idle() float64 { return d.Running - d.Busy }

// utilization is the target tracking metric.
func (p Policy) utilization(d Datapoint) float64 {
	return TargetValue * (d.Busy + float64(p.Headroom)) / d.Running
}

type direction int

const (
	scaleOut direction = iota
	scaleIn
)

func (p Policy) breaching(dir direction, d Datapoint) bool {
	switch {
	case p.Kind == TargetTracking && dir == scaleOut:
		return p.utilization(d) > TargetValue
	case p.Kind == TargetTracking:
		return p.utilization(d) < TargetValue*TargetTrackingScaleInRatio
	case dir == scaleOut:
		return float64(p.Headroom)-d.idle() > 0
	default:
		return d.idle()-float64(p.Headroom) > float64(p.ScaleInSlack)
	}
}

// alarm is one CloudWatch alarm's state as far as scaling cares.
type alarm struct {
	firing     bool          // in ALARM
	lastAction time.Duration // when it last invoked the policy
}

// State is what Application Auto Scaling and the alarms remember between evaluations. Start from
// Policy.Initial.
type State struct {
	// Desired is the ECS service's desired count.
	Desired int

	out, in alarm
	// outBase is the capacity before the scale-out that started the running scale-out cooldown:
	// during the cooldown the capacity that scale-out added counts as already there.
	outBase          int
	outCooldownUntil time.Duration
	inCooldownUntil  time.Duration
}

// Initial is the state after the stack is deployed: the service at its minimum.
func (p Policy) Initial() State { return State{Desired: p.Min} }

// Activity is what one evaluation did. From == To when nothing changed.
type Activity struct {
	From, To int
	Cause    string
}

// Next is one evaluation of the alarms at now over the datapoints CloudWatch has by then (complete
// periods, oldest first), and what Application Auto Scaling does if one invokes its policy:
//   - an alarm is in ALARM while its last N datapoints (consecutive periods) all breach, OK as soon
//     as one does not; missing datapoints leave it as it was;
//   - entering ALARM invokes the policy, staying in ALARM invokes it again once a minute;
//   - scale-out: target tracking asks for ceil(capacity × metric / target), step scaling for
//     capacity + the step matching the largest deficit in the window; during the scale-out cooldown
//     "capacity" is the capacity before the scale-out that started it, so what that scale-out added
//     counts as already there and only a larger scale-out changes anything. A scale-out ends a
//     running scale-in cooldown;
//   - scale-in is blocked during the scale-in cooldown; target tracking scales in to
//     ceil(capacity × metric / target), step scaling by the step matching the smallest excess;
//   - the result stays within [Min, Max]. With Max 0 the desired count is 0 whatever the metric.
func (p Policy) Next(s State, now time.Duration, history []Datapoint) (State, Activity) {
	act := Activity{From: s.Desired, To: s.Desired}
	if p.Off() {
		s.Desired, act.To, act.Cause = 0, 0, "pool off"
		return s, act
	}
	var invokeOut, invokeIn bool
	outWindow := window(history, p.scaleOutDatapoints(), p.period())
	inWindow := window(history, p.scaleInDatapoints(), p.period())
	s.out, invokeOut = p.evaluate(s.out, now, outWindow, scaleOut)
	s.in, invokeIn = p.evaluate(s.in, now, inWindow, scaleIn)

	switch {
	case invokeOut:
		base := s.Desired
		inCooldown := now < s.outCooldownUntil
		if inCooldown {
			base = s.outBase
		}
		target := min(p.scaleOutTarget(base, outWindow), p.Max)
		if target > s.Desired {
			if !inCooldown {
				s.outBase, s.outCooldownUntil = s.Desired, now+p.ScaleOutCooldown
			}
			s.inCooldownUntil = now
			act.Cause = fmt.Sprintf("scale-out alarm (base %d)", base)
			s.Desired = target
		}
	case invokeIn && now >= s.inCooldownUntil:
		target := max(p.scaleInTarget(s.Desired, inWindow), p.Min)
		if target < s.Desired {
			s.inCooldownUntil = now + p.ScaleInCooldown
			s.outCooldownUntil = now
			act.Cause = "scale-in alarm"
			s.Desired = target
		}
	}
	act.To = s.Desired
	return s, act
}

// window is the last n datapoints if they are n consecutive periods, else nil.
func window(history []Datapoint, n int, period time.Duration) []Datapoint {
	if n < 1 || len(history) < n {
		return nil
	}
	w := history[len(history)-n:]
	for i := 1; i < len(w); i++ {
		if w[i].Start-w[i-1].Start != period {
			return nil
		}
	}
	return w
}

// evaluate moves one alarm and reports whether it invokes the policy now. Like a CloudWatch alarm
// with DatapointsToAlarm = EvaluationPeriods, it is in ALARM exactly while all of its last N
// datapoints breach and OK as soon as one does not.
func (p Policy) evaluate(a alarm, now time.Duration, w []Datapoint, dir direction) (alarm, bool) {
	switch {
	case w == nil:
		// Missing datapoints (TreatMissingData: missing) keep the state, and without a breach
		// size there is nothing for the policy to compute.
		return a, false
	case slices.ContainsFunc(w, func(d Datapoint) bool { return !p.breaching(dir, d) }):
		return alarm{lastAction: a.lastAction}, false
	case !a.firing:
		return alarm{firing: true, lastAction: now}, true
	case now-a.lastAction >= AlarmActionRepeat:
		return alarm{firing: true, lastAction: now}, true
	}
	return a, false
}

func (p Policy) scaleOutTarget(base int, w []Datapoint) int {
	if p.Kind == TargetTracking {
		return proportional(base, p.utilization(w[len(w)-1]))
	}
	deficit := math.Inf(-1)
	for _, d := range w { // ScaleOutAggregation: Maximum
		deficit = max(deficit, float64(p.Headroom)-d.idle())
	}
	return base + adjustmentFor(ScaleOutSteps(), deficit)
}

func (p Policy) scaleInTarget(capacity int, w []Datapoint) int {
	if p.Kind == TargetTracking {
		return proportional(capacity, p.utilization(w[len(w)-1]))
	}
	excess := math.Inf(1)
	for _, d := range w { // ScaleInAggregation: Minimum
		excess = min(excess, d.idle()-float64(p.Headroom))
	}
	return capacity + adjustmentFor(p.ScaleInSteps(), excess-float64(p.ScaleInSlack))
}

// proportional is target tracking's rule: the capacity that brings the metric back to the target,
// rounded up (never too little).
func proportional(capacity int, metric float64) int {
	return int(math.Ceil(float64(capacity)*metric/TargetValue - 1e-9))
}
