package poolsim

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"counselvideo/infra/poolscaling"
)

// Describe is a policy's short name in the report; Timing gives the rest.
func Describe(p poolscaling.Policy) string {
	switch {
	case p.Off():
		return "pool off (max 0)"
	case p.Kind == poolscaling.TargetTracking:
		return fmt.Sprintf("target tracking, headroom %d (min %d, max %d)", p.Headroom, p.Min, p.Max)
	default:
		return fmt.Sprintf("step scaling, headroom %d (min %d, max %d)", p.Headroom, p.Min, p.Max)
	}
}

// Timing is a policy's alarms and cooldowns.
func Timing(p poolscaling.Policy) string {
	if p.Kind == poolscaling.TargetTracking {
		return fmt.Sprintf("target tracking on 100 × (busy + headroom) / running, target 100: AWS's alarms "+
			"(%d × 1-min datapoints to scale out, %d below 90%% to scale in); cooldowns out %s, in %s",
			poolscaling.TargetTrackingScaleOutDatapoints, poolscaling.TargetTrackingScaleInDatapoints,
			short(p.ScaleOutCooldown), short(p.ScaleInCooldown))
	}
	return fmt.Sprintf("step scaling on %s datapoints: scale out when idle < headroom for %d datapoints "+
		"(cooldown %s), scale in when idle > headroom + %d for %d datapoints (cooldown %s)",
		short(p.Period), p.ScaleOutDatapoints, short(p.ScaleOutCooldown), p.ScaleInSlack,
		p.ScaleInDatapoints, short(p.ScaleInCooldown))
}

func short(d time.Duration) string {
	if d%time.Minute == 0 && d >= time.Minute {
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// Row is one line of the report.
type Row struct {
	Scale    int
	Scenario string
	Policy   poolscaling.Policy
	Result   Result
}

// TableHeader is the report table's header.
const TableHeader = "| peak sessions | scenario | policy | sessions | warm | time to agent p50 / p95 / p99 | idle worker-h | idle cost | starting worker-h | max cold waiting | max desired |\n" +
	"|---:|---|---|---:|---:|---|---:|---:|---:|---:|---:|\n"

// Markdown is the row as a markdown table line.
func (r Row) Markdown() string {
	res := r.Result
	return fmt.Sprintf("| %d | %s | %s | %d | %.1f%% | %s / %s / %s | %.1f | $%.2f | %.1f | %d | %d |\n",
		r.Scale, r.Scenario, Describe(r.Policy), res.Sessions, 100*res.WarmShare(),
		secs(res.Percentile(0.50)), secs(res.Percentile(0.95)), secs(res.Percentile(0.99)),
		res.IdleHours, res.IdleCost(), res.StartingHours, res.MaxColdWaiting, res.MaxDesired)
}

func secs(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%.0f s", d.Seconds())
}

// WriteAssumptions writes the environment and the simplifications, for the report's reader.
func WriteAssumptions(w io.Writer, env Environment, seeds []uint64) {
	fmt.Fprintf(w, "Assumptions (seeds %v):\n", seeds)
	fmt.Fprintf(w, "- session length: %s\n", env.SessionLength)
	fmt.Fprintf(w, "- Fargate task start (to worker registered): %s\n", env.TaskStart)
	fmt.Fprintf(w, "- warm dispatch %s; cold = %s dispatch wait + a task start (pool off: the task start only)\n",
		env.WarmDispatch, env.ColdFallbackWait)
	fmt.Fprintf(w, "- metric: %s/%s every %s per worker; datapoints visible %s after their period; policy acts %s after an alarm invokes it\n",
		poolscaling.Namespace, poolscaling.MetricName, poolscaling.EmitInterval, env.MetricDelay, env.ActuationDelay)
	fmt.Fprintf(w, "- price: %.1f vCPU / %.0f GB task = $%.5f per hour; %s\n",
		env.Price.VCPU, env.Price.MemoryGB, env.Price.PerTaskHour(), env.Price.Source)
	fmt.Fprintln(w, "\nScenarios:")
	for _, s := range Scenarios {
		fmt.Fprintf(w, "- %s: %s\n", s.Name, s.Description)
	}
	fmt.Fprintln(w, "\nWhere the simulation simplifies:")
	for _, s := range Simplifications {
		fmt.Fprintf(w, "- %s\n", s)
	}
}

// Seeds formats seeds for a flag.
func Seeds(seeds []uint64) string {
	parts := make([]string, len(seeds))
	for i, s := range seeds {
		parts[i] = fmt.Sprint(s)
	}
	return strings.Join(parts, ",")
}

// ReportOptions say what WriteReport simulates.
type ReportOptions struct {
	Command string // how the report was made, printed at its top
	Seeds   []uint64
	Scales  []int // peak concurrent sessions
	Env     Environment
	// Search also finds, per scale, the smallest headroom meeting the targets.
	Search bool
}

// comparisonPolicies are the settings the comparison shows at a scale: the pool off, step scaling
// around the recommended headroom, and target tracking from it up to three times it (it needs
// more idle workers for the same warm share).
func comparisonPolicies(scale, recommended int) []poolscaling.Policy {
	out := []poolscaling.Policy{poolscaling.Chosen(0, 0, 0)}
	headrooms := func(factors ...float64) []int {
		var hs []int
		for _, f := range factors {
			if h := max(1, int(float64(recommended)*f+0.5)); !slices.Contains(hs, h) {
				hs = append(hs, h)
			}
		}
		return hs
	}
	for _, h := range headrooms(0.5, 0.75, 1, 1.5) {
		out = append(out, poolscaling.Chosen(h, poolscaling.MaxFor(scale, h), h))
	}
	for _, h := range headrooms(1, 2, 3) {
		out = append(out, poolscaling.ChosenTargetTracking(h, poolscaling.MaxFor(scale, h), h))
	}
	return out
}

// sizingFor is the recommended sizing at a scale, or one made by the same rules (headroom a
// twenty-fifth of the scale, at least 3) for a scale without a recommendation.
func sizingFor(peakSessions int) poolscaling.Sizing {
	for _, s := range poolscaling.Recommended {
		if s.PeakSessions == peakSessions {
			return s
		}
	}
	h := max(3, peakSessions/25)
	return poolscaling.Sizing{PeakSessions: peakSessions, Min: h, Max: poolscaling.MaxFor(peakSessions, h), Headroom: h}
}

// SlowerEnvironment is env with datapoints 60 s late and task starts of 30-120 s (mode 60 s): the
// recommendations must hold there too.
func SlowerEnvironment(env Environment) Environment {
	env.MetricDelay = time.Minute
	env.TaskStart = Triangular{Min: 30 * time.Second, Mode: time.Minute, Max: 2 * time.Minute}
	return env
}

// WriteReport simulates the recommended settings and the alternatives and writes the capacity
// model's tables as markdown. The same options always write the same report.
func WriteReport(w io.Writer, o ReportOptions) error {
	fmt.Fprintf(w, "# Warm pool capacity model\n\n`%s`\n\n", o.Command)
	fmt.Fprintf(w, "One idle worker (%.1f vCPU, %.0f GB, Fargate Linux/ARM on demand, us-east-1) costs $%.5f per hour, $%.2f per 730-hour month.\n",
		o.Env.Price.VCPU, o.Env.Price.MemoryGB, o.Env.Price.PerTaskHour(), o.Env.Price.PerTaskHour()*730)
	for _, section := range []func(io.Writer, ReportOptions) error{writeRecommended, writeMonthly, writeComparison, writeTimings, writeSearch} {
		if err := section(w, o); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	WriteAssumptions(w, o.Env, o.Seeds)
	return nil
}

const recommendedHeader = "| peak sessions | min | max | headroom | steady warm | lunch warm | spike warm | spike p95 / p99 | spike max cold waiting | idle workers at steady peak (mean) | their cost per hour | targets met |\n" +
	"|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|\n"

func writeRecommended(w io.Writer, o ReportOptions) error {
	fmt.Fprintf(w, "\n## Recommended settings\n\nPolicy: %s. Targets: %.0f%% warm at steady peak load, %.0f%% in the 5× spike.\n",
		Timing(poolscaling.Chosen(1, 1, 1)), 100*Targets.Steady, 100*Targets.Spike)
	slower := SlowerEnvironment(o.Env)
	for _, env := range []struct {
		title string
		env   Environment
	}{
		{"In the assumed environment", o.Env},
		{fmt.Sprintf("In a slower one (datapoints %s late, task start %s)", short(slower.MetricDelay), slower.TaskStart), slower},
	} {
		fmt.Fprintf(w, "\n%s:\n\n%s", env.title, recommendedHeader)
		for _, scale := range o.Scales {
			s := sizingFor(scale)
			c, err := CheckTargets(s.Policy(), scale, env.env, o.Seeds)
			if err != nil {
				return err
			}
			lunch, err := Pooled(s.Policy(), Lunch, scale, env.env, o.Seeds)
			if err != nil {
				return err
			}
			met := "yes"
			if !c.Meets() {
				met = "**no**"
			}
			fmt.Fprintf(w, "| %d | %d | %d | %d | %.2f%% | %.2f%% | %.2f%% | %s / %s | %d | %.1f | $%.2f | %s |\n",
				scale, s.Min, s.Max, s.Headroom, 100*c.Steady.WarmShare(), 100*lunch.WarmShare(), 100*c.Spike.WarmShare(),
				secs(c.Spike.Percentile(0.95)), secs(c.Spike.Percentile(0.99)), c.Spike.MaxColdWaiting,
				c.Steady.MeanIdle(), c.Steady.MeanIdle()*env.env.Price.PerTaskHour(), met)
		}
	}
	return nil
}

func writeMonthly(w io.Writer, o ReportOptions) error {
	fmt.Fprintf(w, "\n## Monthly cost of the recommended settings (the day scenario × %d days)\n\n", DaysPerMonth)
	fmt.Fprintln(w, "| peak sessions | sessions per month | warm | idle worker-h | idle cost | starting worker-h | pool overhead (idle + starting) | all agent compute with the pool | all agent compute, pool off |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, scale := range o.Scales {
		day, err := Pooled(sizingFor(scale).Policy(), Day, scale, o.Env, o.Seeds)
		if err != nil {
			return err
		}
		off, err := Pooled(poolscaling.Chosen(0, 0, 0), Day, scale, o.Env, o.Seeds)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "| %d | %d | %.2f%% | %.0f | $%.0f | %.0f | $%.0f | $%.0f | $%.0f |\n",
			scale, day.Sessions*DaysPerMonth/len(o.Seeds), 100*day.WarmShare(), day.IdleHours*DaysPerMonth,
			day.IdleCost()*DaysPerMonth, day.StartingHours*DaysPerMonth, day.OverheadCost()*DaysPerMonth,
			day.TotalCost()*DaysPerMonth, off.TotalCost()*DaysPerMonth)
	}
	return nil
}

func writeComparison(w io.Writer, o ReportOptions) error {
	fmt.Fprintln(w, "\n## Every setting, per scenario")
	fmt.Fprintf(w, "\nStep scaling: %s.\nTarget tracking: %s.\n", Timing(poolscaling.Chosen(1, 1, 1)), Timing(poolscaling.ChosenTargetTracking(1, 1, 1)))
	fmt.Fprintln(w, "Idle and starting worker-hours and the idle cost are per run, over the scenario's measured window; sessions, warm share and times to agent pool all runs.")
	for _, scale := range o.Scales {
		fmt.Fprintf(w, "\n### %d peak concurrent sessions\n\n%s", scale, TableHeader)
		policies := comparisonPolicies(scale, sizingFor(scale).Headroom)
		for _, sc := range []Scenario{Steady, Lunch, ExamSpike} {
			for _, p := range policies {
				r, err := Pooled(p, sc, scale, o.Env, o.Seeds)
				if err != nil {
					return err
				}
				fmt.Fprint(w, Row{Scale: scale, Scenario: sc.Name, Policy: p, Result: r}.Markdown())
			}
		}
	}
	return nil
}

// timingVariant is the chosen policy with one timing changed.
type timingVariant struct {
	name   string
	change func(*poolscaling.Policy)
}

var timingVariants = []timingVariant{
	{"chosen", func(*poolscaling.Policy) {}},
	{"scale-out cooldown 120 s", func(p *poolscaling.Policy) { p.ScaleOutCooldown = 2 * time.Minute }},
	{"scale-out cooldown 300 s (the default)", func(p *poolscaling.Policy) { p.ScaleOutCooldown = 5 * time.Minute }},
	{"scale out after 1 datapoint", func(p *poolscaling.Policy) { p.ScaleOutDatapoints = 1 }},
	{"scale out after 3 datapoints", func(p *poolscaling.Policy) { p.ScaleOutDatapoints = 3 }},
	{"scale in after 3 minutes", func(p *poolscaling.Policy) { p.ScaleInDatapoints = 18 }},
	{"scale in after 10 minutes", func(p *poolscaling.Policy) { p.ScaleInDatapoints = 60 }},
	{"scale-in cooldown 120 s", func(p *poolscaling.Policy) { p.ScaleInCooldown = 2 * time.Minute }},
	{"scale-in cooldown 600 s", func(p *poolscaling.Policy) { p.ScaleInCooldown = 10 * time.Minute }},
	{"scale-in slack 0", func(p *poolscaling.Policy) { p.ScaleInSlack = 0 }},
	{"scale-in slack 3", func(p *poolscaling.Policy) { p.ScaleInSlack = 3 }},
	{"30-second period (same windows)", func(p *poolscaling.Policy) {
		p.Period, p.ScaleOutDatapoints, p.ScaleInDatapoints = 30*time.Second, 1, 10
	}},
	{"target tracking, twice the headroom", func(p *poolscaling.Policy) {
		*p = poolscaling.ChosenTargetTracking(2*p.Min, p.Max+2*p.Headroom, 2*p.Headroom)
	}},
	{"target tracking, twice the headroom, default cooldowns (300 s)", func(p *poolscaling.Policy) {
		*p = poolscaling.ChosenTargetTracking(2*p.Min, p.Max+2*p.Headroom, 2*p.Headroom)
		p.ScaleOutCooldown = 5 * time.Minute
	}},
}

func writeTimings(w io.Writer, o ReportOptions) error {
	fmt.Fprintln(w, "\n## The chosen timings against alternatives (recommended sizing, one setting changed)")
	fmt.Fprintln(w, "\n| peak sessions | variant | steady warm | lunch warm | spike warm | idle worker-h steady | idle worker-h lunch |\n|---:|---|---:|---:|---:|---:|---:|")
	for _, scale := range o.Scales {
		s := sizingFor(scale)
		for _, v := range timingVariants {
			p := s.Policy()
			v.change(&p)
			var rs [3]Result
			for i, sc := range []Scenario{Steady, Lunch, ExamSpike} {
				r, err := Pooled(p, sc, scale, o.Env, o.Seeds)
				if err != nil {
					return err
				}
				rs[i] = r
			}
			fmt.Fprintf(w, "| %d | %s | %.2f%% | %.2f%% | %.2f%% | %.1f | %.1f |\n", scale, v.name,
				100*rs[0].WarmShare(), 100*rs[1].WarmShare(), 100*rs[2].WarmShare(), rs[0].IdleHours, rs[1].IdleHours)
		}
	}
	return nil
}

func writeSearch(w io.Writer, o ReportOptions) error {
	if !o.Search {
		return nil
	}
	fmt.Fprintln(w, "\n## Smallest headroom meeting the targets (chosen policy, min = headroom)")
	fmt.Fprintln(w, "\n| peak sessions | environment | headroom | max | steady warm | spike warm |\n|---:|---|---:|---:|---:|---:|")
	for _, scale := range o.Scales {
		for _, env := range []struct {
			name string
			env  Environment
		}{{"assumed", o.Env}, {"slower", SlowerEnvironment(o.Env)}} {
			s, c, err := SearchHeadroom(scale, env.env, o.Seeds)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "| %d | %s | %d | %d | %.2f%% | %.2f%% |\n", scale, env.name, s.Headroom, s.Max,
				100*c.Steady.WarmShare(), 100*c.Spike.WarmShare())
		}
	}
	return nil
}
