package poolsim

import (
	"errors"
	"fmt"
	"slices"

	"counselvideo/infra/poolscaling"
)

// Targets are what the recommended settings must reach (issue 11): the share of sessions served
// warm at steady peak load and in the 5× spike.
var Targets = struct{ Steady, Spike float64 }{Steady: 0.99, Spike: 0.95}

// DaysPerMonth turns the simulated day into a month: every day like a school day (an upper bound
// for months with weekends and holidays).
const DaysPerMonth = 30

// Pooled runs one policy against one scenario at one scale once per seed and pools the results:
// sessions and times to agent together, worker-hours and costs as the mean of one run, the largest
// numbers of all runs.
func Pooled(p poolscaling.Policy, sc Scenario, peakSessions int, env Environment, seeds []uint64) (Result, error) {
	if len(seeds) == 0 {
		return Result{}, errors.New("no seeds")
	}
	results := make([]Result, 0, len(seeds))
	for _, seed := range seeds {
		r, err := Simulate(Run{Policy: p, Scenario: sc, PeakSessions: peakSessions, Env: env, Seed: seed})
		if err != nil {
			return Result{}, err
		}
		results = append(results, r)
	}
	return Merge(results), nil
}

// Merge pools the results of runs of one setting.
func Merge(results []Result) Result {
	var out Result
	n := float64(len(results))
	for _, r := range results {
		out.Sessions += r.Sessions
		out.Warm += r.Warm
		out.TimeToAgent = append(out.TimeToAgent, r.TimeToAgent...)
		out.IdleHours += r.IdleHours / n
		out.StartingHours += r.StartingHours / n
		out.BusyHours += r.BusyHours / n
		out.ColdTaskHours += r.ColdTaskHours / n
		out.MaxColdWaiting = max(out.MaxColdWaiting, r.MaxColdWaiting)
		out.MaxDesired = max(out.MaxDesired, r.MaxDesired)
		out.Activities += r.Activities
		out.Window, out.Price = r.Window, r.Price
	}
	slices.Sort(out.TimeToAgent)
	return out
}

// Check is a policy's result in the two scenarios the targets are set for.
type Check struct {
	Steady, Spike Result
}

// Meets reports whether both targets are reached.
func (c Check) Meets() bool {
	return c.Steady.WarmShare() >= Targets.Steady && c.Spike.WarmShare() >= Targets.Spike
}

// CheckTargets simulates a policy in the steady and spike scenarios.
func CheckTargets(p poolscaling.Policy, peakSessions int, env Environment, seeds []uint64) (Check, error) {
	steady, err := Pooled(p, Steady, peakSessions, env, seeds)
	if err != nil {
		return Check{}, err
	}
	spike, err := Pooled(p, ExamSpike, peakSessions, env, seeds)
	return Check{Steady: steady, Spike: spike}, err
}

// HeadroomCandidates are the headrooms the search tries at a scale, smallest first: every value up
// to a tenth of the scale (at least 8), in steps that keep the search to about 25 tries.
func HeadroomCandidates(peakSessions int) []int {
	top := max(8, peakSessions/10)
	step := max(1, top/25)
	var out []int
	for h := 1; h <= top; h += step {
		out = append(out, h)
	}
	return out
}

// SearchHeadroom finds the smallest candidate headroom with which the chosen policy (min =
// headroom, max from poolscaling.MaxFor) meets the targets.
func SearchHeadroom(peakSessions int, env Environment, seeds []uint64) (poolscaling.Sizing, Check, error) {
	for _, h := range HeadroomCandidates(peakSessions) {
		s := poolscaling.Sizing{PeakSessions: peakSessions, Min: h, Max: poolscaling.MaxFor(peakSessions, h), Headroom: h}
		c, err := CheckTargets(s.Policy(), peakSessions, env, seeds)
		if err != nil {
			return s, c, err
		}
		if c.Meets() {
			return s, c, nil
		}
	}
	return poolscaling.Sizing{}, Check{}, fmt.Errorf("no headroom up to %d meets the targets at %d sessions",
		HeadroomCandidates(peakSessions)[len(HeadroomCandidates(peakSessions))-1], peakSessions)
}
