package poolscaling

import "math"

// StepAdjustment is one step of a step scaling policy, as CloudFormation's StepAdjustment takes it:
// when the alarm breaches by metric − threshold in [Lower, Upper) (nil = unbounded), the desired
// count changes by Adjustment (ChangeInCapacity). For alarms above their threshold the lower bound
// is inclusive and the upper exclusive, which is how adjustmentFor reads them.
type StepAdjustment struct {
	Lower, Upper *float64
	Adjustment   int
}

// ladder is the breach sizes (in workers) at which a step starts. Each step adds its own lower edge,
// so a step never adds more than the measured deficit; a deficit between two edges is topped up by
// the next invocation (a firing alarm invokes the policy again every minute). Exact up to 4, then
// at most a third short, in 13 steps.
var ladder = []int{1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96}

// steps turns the ladder into step adjustments for an alarm whose breach first counts at
// offset+edge (edges at half-integers: the metric's worker counts are whole numbers, and a
// half-way edge leaves no doubt which step a count falls in).
func steps(sign, offset int) []StepAdjustment {
	out := make([]StepAdjustment, len(ladder))
	for i, edge := range ladder {
		s := StepAdjustment{Adjustment: sign * (offset + edge)}
		lower := float64(edge) - 0.5
		if i == 0 {
			lower = 0
		}
		s.Lower = &lower
		if i+1 < len(ladder) {
			upper := float64(ladder[i+1]) - 0.5
			s.Upper = &upper
		}
		out[i] = s
	}
	return out
}

// ScaleOutSteps are the scale-out policy's steps. Its alarm is "deficit > 0", deficit = headroom −
// idle workers; the step adds (about) the deficit.
func ScaleOutSteps() []StepAdjustment { return steps(+1, 0) }

// ScaleInSteps are the scale-in policy's steps. Its alarm is "excess > slack", excess = idle
// workers − headroom; the step removes (about) the whole excess, back down to the headroom.
func (p Policy) ScaleInSteps() []StepAdjustment { return steps(-1, p.ScaleInSlack) }

// adjustmentFor is the adjustment of the step the breach falls in; 0 when it falls in none (no breach).
func adjustmentFor(steps []StepAdjustment, breach float64) int {
	for _, s := range steps {
		lower, upper := math.Inf(-1), math.Inf(1)
		if s.Lower != nil {
			lower = *s.Lower
		}
		if s.Upper != nil {
			upper = *s.Upper
		}
		if breach >= lower && breach < upper {
			return s.Adjustment
		}
	}
	return 0
}
