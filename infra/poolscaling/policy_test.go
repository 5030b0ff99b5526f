package poolscaling

import (
	"strings"
	"testing"
	"time"
)

// points makes consecutive datapoints of period p, starting at 0, with the given busy and running
// workers each.
func points(p time.Duration, busyRunning ...[2]float64) []Datapoint {
	out := make([]Datapoint, len(busyRunning))
	for i, br := range busyRunning {
		out[i] = Datapoint{Start: time.Duration(i) * p, Busy: br[0], Running: br[1]}
	}
	return out
}

func repeat(n int, busy, running float64) [][2]float64 {
	out := make([][2]float64, n)
	for i := range out {
		out[i] = [2]float64{busy, running}
	}
	return out
}

func mustValid(t *testing.T, p Policy) Policy {
	t.Helper()
	if err := p.Validate(); err != nil {
		t.Fatalf("policy %+v: %v", p, err)
	}
	return p
}

func TestTargetTrackingScalesOutAfterThreeBreachingMinutes(t *testing.T) {
	p := mustValid(t, ChosenTargetTracking(2, 50, 2))
	s := State{Desired: 10}
	// 10 running, all busy: metric 100 × (10 + 2) / 10 = 120 > 100.
	two := points(time.Minute, repeat(2, 10, 10)...)
	if next, act := p.Next(s, 3*time.Minute, two); next.Desired != 10 || act.To != act.From {
		t.Fatalf("2 breaching datapoints scaled to %d; AWS's alarm needs 3", next.Desired)
	}
	three := points(time.Minute, repeat(3, 10, 10)...)
	next, act := p.Next(s, 4*time.Minute, three)
	// ceil(10 × 120 / 100) = 12 = busy + headroom.
	if next.Desired != 12 || act.From != 10 || act.To != 12 {
		t.Fatalf("scale-out to %d (activity %+v), want ceil(10 × 1.2) = 12", next.Desired, act)
	}
}

func TestTargetTrackingScaleInWaitsFifteenMinutesAndItsCooldown(t *testing.T) {
	p := mustValid(t, ChosenTargetTracking(1, 50, 2))
	s := State{Desired: 10}
	// 2 busy of 10: metric 100 × (2 + 2) / 10 = 40, under 90% of the target.
	low := repeat(15, 2, 10)
	if next, _ := p.Next(s, 16*time.Minute, points(time.Minute, low[:14]...)); next.Desired != 10 {
		t.Fatalf("14 low datapoints scaled in to %d; the low alarm needs 15", next.Desired)
	}
	s, act := p.Next(s, 16*time.Minute, points(time.Minute, low...))
	if s.Desired != 4 || act.To != 4 {
		t.Fatalf("scale-in to %d, want ceil(10 × 0.4) = 4", s.Desired)
	}
	// Still low a minute later (1 busy of 4: 100 × 3 / 4 = 75 → 3), but within the 300 s
	// scale-in cooldown: blocked, although the firing alarm invokes the policy again.
	later := append(low, [2]float64{1, 4})
	if next, act := p.Next(s, 17*time.Minute, points(time.Minute, later...)); next.Desired != 4 || act.To != act.From {
		t.Fatalf("scale-in during the cooldown went to %d", next.Desired)
	}
	// After the cooldown it proceeds.
	for range 4 {
		later = append(later, [2]float64{1, 4})
	}
	if next, _ := p.Next(s, 21*time.Minute, points(time.Minute, later...)); next.Desired != 3 {
		t.Fatalf("scale-in after the cooldown went to %d, want ceil(4 × 0.75) = 3", next.Desired)
	}
}

func TestStepScalingCooldownCountsTheCapacityAlreadyAdded(t *testing.T) {
	// AWS's documented example: a scale-out by 2 starts a cooldown; the alarm fires again within
	// it asking for 3, so only 1 more is added.
	p := mustValid(t, Chosen(1, 50, 4))
	p.ScaleOutCooldown = 5 * time.Minute
	s := State{Desired: 10}
	// 6 running, 4 busy: 2 idle, deficit 2, for 2 datapoints.
	h := points(10*time.Second, repeat(2, 4, 6)...)
	s, _ = p.Next(s, 30*time.Second, h)
	if s.Desired != 12 {
		t.Fatalf("deficit 2 scaled out to %d, want 12", s.Desired)
	}
	// The firing alarm does not invoke the policy again before a minute has passed, whatever it sees.
	h = append(h, Datapoint{Start: 20 * time.Second, Busy: 5, Running: 6}, Datapoint{Start: 30 * time.Second, Busy: 5, Running: 6})
	if next, _ := p.Next(s, 50*time.Second, h); next.Desired != 12 {
		t.Fatalf("the alarm acted again after 20 s: %d", next.Desired)
	}
	// A minute later the deficit is 3 (1 idle; the 2 added are still starting): base 10 + 3 = 13.
	for i := 4; i < 9; i++ {
		h = append(h, Datapoint{Start: time.Duration(i) * 10 * time.Second, Busy: 5, Running: 6})
	}
	s, act := p.Next(s, 90*time.Second, h)
	if s.Desired != 13 || act.Cause != "scale-out alarm (base 10)" {
		t.Fatalf("second scale-out in the cooldown went to %d (%s), want 13 from base 10", s.Desired, act.Cause)
	}
	// After the cooldown the same deficit counts from the current capacity again.
	for i := 9; i < 40; i++ {
		h = append(h, Datapoint{Start: time.Duration(i) * 10 * time.Second, Busy: 5, Running: 6})
	}
	if next, _ := p.Next(s, 400*time.Second, h); next.Desired != 16 {
		t.Fatalf("scale-out after the cooldown went to %d, want 13 + 3 = 16", next.Desired)
	}
}

func TestStepScalingScaleInBlockedByCooldownAndEndedByScaleOut(t *testing.T) {
	p := mustValid(t, Chosen(2, 50, 4))
	s := State{Desired: 20}
	// 13 idle of 20 for 5 minutes: excess 9 over the headroom, 8 above the slack of 1 (the 8-step).
	h := points(10*time.Second, repeat(30, 7, 20)...)
	s, _ = p.Next(s, 310*time.Second, h)
	if s.Desired != 11 {
		t.Fatalf("excess 9 scaled in to %d, want 20 − 9 = 11", s.Desired)
	}
	// Still an excess a minute later (the stopped tasks have not left the metric yet): blocked.
	more := append(h, points(10*time.Second, repeat(36, 7, 20)...)[30:]...)
	if next, _ := p.Next(s, 370*time.Second, more); next.Desired != 11 {
		t.Fatalf("scale-in during the cooldown went to %d", next.Desired)
	}
	// A deficit during the scale-in cooldown scales out at once.
	deficit := append(more, Datapoint{Start: 360 * time.Second, Busy: 10, Running: 11}, Datapoint{Start: 370 * time.Second, Busy: 10, Running: 11})
	if next, _ := p.Next(s, 390*time.Second, deficit); next.Desired != 14 {
		t.Fatalf("deficit 3 during the scale-in cooldown went to %d, want 14", next.Desired)
	}
	// Between two ladder edges a step removes its lower edge: excess 8 is 7 above the slack, the
	// 6-step, so 1 + 6 = 7 go (scale-in errs on the side of keeping workers).
	if next, _ := p.Next(State{Desired: 20}, 310*time.Second, points(10*time.Second, repeat(30, 8, 20)...)); next.Desired != 13 {
		t.Fatalf("excess 8 scaled in to %d, want 20 − 7 = 13", next.Desired)
	}
}

func TestMinAndMaxBound(t *testing.T) {
	tt := mustValid(t, ChosenTargetTracking(5, 11, 2))
	// Nothing busy: ceil(10 × 100 × 2 / 10 / 100) = 2, held at min 5.
	if s, _ := tt.Next(State{Desired: 10}, 16*time.Minute, points(time.Minute, repeat(15, 0, 10)...)); s.Desired != 5 {
		t.Fatalf("target tracking scaled in to %d, below min 5", s.Desired)
	}
	// All busy: ceil(10 × 1.2) = 12, held at max 11.
	if s, _ := tt.Next(State{Desired: 10}, 4*time.Minute, points(time.Minute, repeat(3, 10, 10)...)); s.Desired != 11 {
		t.Fatalf("target tracking scaled out to %d, above max 11", s.Desired)
	}
	step := mustValid(t, Chosen(6, 30, 2))
	// 20 idle of 20, excess 18: 20 − 18 = 2, held at min 6.
	if s, _ := step.Next(State{Desired: 20}, 310*time.Second, points(10*time.Second, repeat(30, 0, 20)...)); s.Desired != 6 {
		t.Fatalf("step scaled in to %d, below min 6", s.Desired)
	}
}

func TestMaxZeroTurnsThePoolOff(t *testing.T) {
	p := mustValid(t, Chosen(0, 0, 0))
	if !p.Off() {
		t.Fatal("max 0 is not off")
	}
	// Whatever the metric says (a deficit of 10), nothing runs.
	s, act := p.Next(State{Desired: 3}, time.Minute, points(10*time.Second, repeat(6, 10, 10)...))
	if s.Desired != 0 || act.To != 0 {
		t.Fatalf("pool off runs %d tasks", s.Desired)
	}
	if p.Initial().Desired != 0 {
		t.Fatalf("pool off starts with %d tasks", p.Initial().Desired)
	}
	if err := Chosen(1, 0, 0).Validate(); err == nil || !strings.Contains(err.Error(), "min must be 0") {
		t.Fatalf("min 1 with max 0 validated: %v", err)
	}
}

func TestAlarmsNeedConsecutiveDatapoints(t *testing.T) {
	p := mustValid(t, Chosen(1, 50, 4))
	// Two breaching datapoints with a missing period between them: not 2 consecutive.
	h := []Datapoint{{Start: 0, Busy: 4, Running: 4}, {Start: 20 * time.Second, Busy: 4, Running: 4}}
	if s, _ := p.Next(State{Desired: 4}, 40*time.Second, h); s.Desired != 4 {
		t.Fatalf("a gap still scaled out to %d", s.Desired)
	}
	// With no datapoint at all, nothing happens either.
	if s, _ := p.Next(State{Desired: 4}, 40*time.Second, nil); s.Desired != 4 {
		t.Fatalf("no data scaled to %d", s.Desired)
	}
}

func TestStepsFollowTheLadder(t *testing.T) {
	out := ScaleOutSteps()
	want := map[float64]int{0.2: 1, 1: 1, 2: 2, 3: 3, 4: 4, 5: 4, 6: 6, 7: 6, 11: 8, 12: 12, 95: 64, 96: 96, 500: 96}
	for deficit, add := range want {
		if got := adjustmentFor(out, deficit); got != add {
			t.Errorf("deficit %v adds %d, want %d", deficit, got, add)
		}
	}
	if got := adjustmentFor(out, -1); got != 0 {
		t.Errorf("no deficit adds %d", got)
	}
	// CloudFormation's rules: the first step starts at the threshold, steps touch without gaps or
	// overlaps, only the last is open-ended.
	for i, s := range out {
		switch {
		case i == 0 && (s.Lower == nil || *s.Lower != 0):
			t.Errorf("first step does not start at the threshold")
		case i > 0 && (s.Lower == nil || out[i-1].Upper == nil || *s.Lower != *out[i-1].Upper):
			t.Errorf("step %d does not start where step %d ends", i, i-1)
		case i < len(out)-1 && s.Upper == nil:
			t.Errorf("step %d is open-ended before the last", i)
		}
	}
	if out[len(out)-1].Upper != nil || len(out) > 20 {
		t.Errorf("%d steps, last upper %v: want at most 20 and an open last step", len(out), out[len(out)-1].Upper)
	}
	// Scale-in removes the whole excess (breach + slack) back down to the headroom.
	p := Chosen(1, 50, 4)
	in := p.ScaleInSteps()
	if got := adjustmentFor(in, 2-float64(p.ScaleInSlack)); got != -2 {
		t.Errorf("excess 2 removes %d, want 2", -got)
	}
	if got := adjustmentFor(in, 13-float64(p.ScaleInSlack)); got != -13 {
		t.Errorf("excess 13 removes %d, want 13", -got)
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	bad := Policy{Kind: StepScaling, Min: 5, Max: 3, Headroom: 0, Period: 20 * time.Second, ScaleOutCooldown: -time.Second}
	err := bad.Validate()
	for _, want := range []string{"min 5 is above max 3", "headroom 0", "period 20s", "datapoints", "cooldowns"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validation %v does not name %q", err, want)
		}
	}
	tt := ChosenTargetTracking(1, 10, 2)
	tt.Period = 10 * time.Second
	if err := tt.Validate(); err == nil || !strings.Contains(err.Error(), "AWS's") {
		t.Errorf("target tracking with its own period validated: %v", err)
	}
	if err := (Policy{Kind: "predictive", Max: 0}).Validate(); err == nil {
		t.Error("an unknown kind validated")
	}
	if err := Chosen(0, 5, 1).Validate(); err == nil || !strings.Contains(err.Error(), "at least 1 task") {
		t.Errorf("min 0 with the pool on validated: %v", err)
	}
}

func TestRecommendedSizings(t *testing.T) {
	for _, s := range Recommended {
		p := mustValid(t, s.Policy())
		if s.Min != s.Headroom || s.Max != MaxFor(s.PeakSessions, s.Headroom) || p.Kind != ChosenKind {
			t.Errorf("sizing %+v does not follow its rules (min = headroom, max = MaxFor)", s)
		}
	}
	// 1000 + ceil(3 × 31.62) + 2 × 40 and 10 + ceil(3 × 3.16) + 2 × 4.
	if a, b := MaxFor(1000, 40), MaxFor(10, 4); a != 1175 || b != 28 {
		t.Errorf("MaxFor(1000, 40) = %d, MaxFor(10, 4) = %d; want 1175 and 28", a, b)
	}
}

func TestAlarmIsOKAsSoonAsOneDatapointStopsBreaching(t *testing.T) {
	p := mustValid(t, Chosen(1, 50, 4))
	p.ScaleOutCooldown = 5 * time.Minute
	// Deficit 2 (2 idle of headroom 4) for 2 datapoints: ALARM at 30 s, +2.
	h := points(10*time.Second, repeat(2, 4, 6)...)
	s, _ := p.Next(State{Desired: 10}, 30*time.Second, h)
	if s.Desired != 12 {
		t.Fatalf("deficit 2 scaled out to %d", s.Desired)
	}
	// A breaching datapoint, then one with 6 idle: with 2 of 2 the alarm is OK at 50 s.
	h = append(h, Datapoint{Start: 20 * time.Second, Busy: 4, Running: 6}, Datapoint{Start: 30 * time.Second, Busy: 4, Running: 10})
	if s, _ = p.Next(s, 50*time.Second, h); s.Desired != 12 {
		t.Fatalf("a window with one datapoint not breaching scaled to %d", s.Desired)
	}
	// Then no idle worker at all for two datapoints: the alarm enters ALARM again and acts at
	// once, 40 s after its last action (a state change, not the minute's repeat): within the
	// cooldown, base 10 + deficit 4 = 14.
	h = append(h, Datapoint{Start: 40 * time.Second, Busy: 11, Running: 11}, Datapoint{Start: 50 * time.Second, Busy: 11, Running: 11})
	if s, _ = p.Next(s, 70*time.Second, h); s.Desired != 14 {
		t.Fatalf("re-entering ALARM with deficit 4 scaled to %d, want 10 + 4 = 14", s.Desired)
	}
}
