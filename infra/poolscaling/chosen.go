package poolscaling

import (
	"math"
	"time"
)

// The chosen policy: step scaling on the 10-second metric. The simulator compared it with target
// tracking on 100 × (busy + headroom) / running (docs/capacity.md): target tracking's AWS-owned
// alarms wait for 3 one-minute datapoints before they act and keep up to 10% of the pool idle
// beyond the headroom (its scale-in alarm sits at 90% of the target), so it needs about twice the
// idle workers for the same warm share in the 5× spike. Each value's reason, for a 20-90 s task start:
const (
	// ChosenKind: our own alarms can use the high-resolution metric; target tracking's cannot.
	ChosenKind = StepScaling
	// ChosenPeriod: 10 s, the shortest alarm period, so a dip below the headroom is seen within
	// seconds instead of the minutes a 20-90 s task start cannot afford to add.
	ChosenPeriod = 10 * time.Second
	// ChosenScaleOutDatapoints: 2 of 2 (20 s), so one late or partial datapoint (AWS advises M-of-N
	// alarms for EMF metrics) cannot scale out alone; 1 or 3 simulated within a point of it.
	ChosenScaleOutDatapoints = 2
	// ChosenScaleOutCooldown: 60 s, the alarm's own repeat interval. A second scale-out within a
	// minute (the alarm leaving and re-entering ALARM) is computed from the capacity before the
	// first, so tasks still starting are not counted twice; after a minute a deficit that is still
	// there is acted on at once. Longer cooldowns (90-180 s) lost warm sessions in the spike.
	ChosenScaleOutCooldown = time.Minute
	// ChosenScaleInDatapoints: 30 of 30 (5 minutes) with more idle workers than headroom + slack:
	// scale in only when demand has really fallen, not between two arrivals.
	ChosenScaleInDatapoints = 30
	// ChosenScaleInSlack: one spare worker above the headroom before scaling in, so one replacement
	// task coming up does not flip the alarm.
	ChosenScaleInSlack = 1
	// ChosenScaleInCooldown: 300 s (the default): one scale-in per 5-minute look at the load. 120 s
	// kept 3-13% fewer idle worker-hours but needed larger headrooms (10 and 41 instead of 8 and 37)
	// to meet the targets in the slower environment, which ate the saving.
	ChosenScaleInCooldown = 5 * time.Minute
)

// Chosen is the chosen policy for a pool with these bounds and headroom; max 0 turns it off.
func Chosen(min, max, headroom int) Policy {
	return Policy{
		Kind: ChosenKind, Min: min, Max: max, Headroom: headroom,
		Period: ChosenPeriod, ScaleOutDatapoints: ChosenScaleOutDatapoints, ScaleInDatapoints: ChosenScaleInDatapoints,
		ScaleInSlack: ChosenScaleInSlack, ScaleOutCooldown: ChosenScaleOutCooldown, ScaleInCooldown: ChosenScaleInCooldown,
	}
}

// ChosenTargetTracking is the alternative the simulator compares with: target tracking on the same
// metric and headroom, with the scale-out cooldown that served it best (60 s; the default 300 s
// lost far more sessions in the spike) and the default 300 s scale-in cooldown.
func ChosenTargetTracking(min, max, headroom int) Policy {
	return Policy{Kind: TargetTracking, Min: min, Max: max, Headroom: headroom,
		ScaleOutCooldown: time.Minute, ScaleInCooldown: 5 * time.Minute}
}

// Sizing is a deployment's scale and the bounds and headroom recommended for it.
type Sizing struct {
	PeakSessions int // peak concurrent sessions the deployment is sized for
	Min, Max     int
	Headroom     int
}

// Policy is the chosen policy at this sizing.
func (s Sizing) Policy() Policy { return Chosen(s.Min, s.Max, s.Headroom) }

// Recommended are the settings docs/capacity.md recommends: per scale, the smallest headroom with
// which the simulation serves at least 99% of sessions warm at steady peak load and at least 95% in
// the 5× spike in each of four checks (seeds 1-5 and 6-10, each in the default environment and in
// a slower one: datapoints 60 s late, task starts 30-120 s), rounded up to 40 at 1,000 (37 needed).
// Min = headroom keeps the ready workers even if the metric stops arriving; Max is MaxFor.
var Recommended = []Sizing{
	{PeakSessions: 10, Min: 4, Max: 28, Headroom: 4},
	{PeakSessions: 100, Min: 8, Max: 146, Headroom: 8},
	{PeakSessions: 1000, Min: 40, Max: 1175, Headroom: 40},
}

// MaxFor is the recommended maximum: the peak, plus 3 × √peak (concurrent sessions at a steady
// rate swing by about √peak, so normal load is never capped), plus twice the headroom (the idle
// workers and the replacements still starting). Above it sessions go cold: a cost guard, and the
// task count to size the account's Fargate vCPU quota by.
func MaxFor(peakSessions, headroom int) int {
	return peakSessions + int(math.Ceil(3*math.Sqrt(float64(peakSessions)))) + 2*headroom
}
