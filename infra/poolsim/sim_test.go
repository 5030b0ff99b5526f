package poolsim

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"counselvideo/infra/poolscaling"
)

func fixed(d time.Duration) Triangular { return Triangular{Min: d, Mode: d, Max: d} }

// handWorked is the case worked out by hand: one arrival every 30 s (20 peak sessions of exactly
// 10 minutes), every task start exactly 50 s, a fixed pool of 40 (min = max, so scaling never
// changes it).
func handWorked(p poolscaling.Policy) Run {
	env := DefaultEnvironment()
	env.SessionLength = fixed(10 * time.Minute)
	env.TaskStart = fixed(50 * time.Second)
	sc := Steady
	sc.Regular = true
	return Run{Policy: p, Scenario: sc, PeakSessions: 20, Env: env, Seed: 1}
}

func near(t *testing.T, what string, got, want, tolerance float64) {
	t.Helper()
	if math.Abs(got-want) > tolerance {
		t.Errorf("%s = %.4f, want %.4f ± %g", what, got, want, tolerance)
	}
}

func TestHandWorkedSteadyState(t *testing.T) {
	r, err := Simulate(handWorked(poolscaling.Chosen(40, 40, 1)))
	if err != nil {
		t.Fatal(err)
	}
	// Arrivals every 30 s for 4 measured hours, all warm (40 workers, about 22 needed).
	if r.Sessions != 480 || r.Warm != 480 || r.Percentile(0.99) != 300*time.Millisecond {
		t.Fatalf("%d sessions, %d warm, p99 %s; want 480, 480, 0.3 s", r.Sessions, r.Warm, r.Percentile(0.99))
	}
	// Little's law, exact here: a worker is busy from the dispatch (0.3 s before the agent joins)
	// to the session's end, so busy = rate × (600 s + 0.3 s) = 600.3 / 30; a worker that exits is
	// replaced and starts for 50 s, so starting = 50 / 30; the rest of the 40 is idle. Arrivals and
	// lengths are deterministic and the 4-hour window holds whole 30-s cycles, so the time averages
	// are exact; the tolerance only absorbs floating-point sums over ~14,000 events.
	const tolerance = 1e-6
	near(t, "busy workers", r.MeanBusy(), 600.3/30, tolerance)
	near(t, "starting workers", r.MeanStarting(), 50.0/30, tolerance)
	near(t, "idle workers", r.MeanIdle(), 40-600.3/30-50.0/30, tolerance)
	near(t, "idle cost", r.IdleCost(), r.IdleHours*(0.5*0.03238+1*0.00356), 1e-9)
}

func TestHandWorkedColdPath(t *testing.T) {
	r, err := Simulate(handWorked(poolscaling.Chosen(0, 0, 0)))
	if err != nil {
		t.Fatal(err)
	}
	// Pool off: every session waits for its own task, 50 s (no dispatch wait without a pool); with
	// an arrival every 30 s, at most 2 students wait at once; each task runs 50 s + 10 min.
	if r.Warm != 0 || r.Percentile(0.5) != 50*time.Second || r.MaxColdWaiting != 2 {
		t.Fatalf("warm %d, p50 %s, max waiting %d; want 0, 50 s, 2", r.Warm, r.Percentile(0.5), r.MaxColdWaiting)
	}
	near(t, "cold task-hours", r.ColdTaskHours, 480*650.0/3600, 1e-6)
	if r.IdleHours != 0 || r.BusyHours != 0 || r.StartingHours != 0 {
		t.Fatalf("pool off has pool worker-hours: %+v", r)
	}
}

func TestLittlesLawWithRandomArrivalsAndLengths(t *testing.T) {
	// Poisson arrivals and log-normal lengths, a pool large enough never to miss: the mean of busy
	// workers is rate × mean length (M/G/∞). Busy counts are Poisson(100), std 10, correlated over
	// about a session (23 min): a 4-hour average has a standard deviation near 10 / √5 ≈ 4.5, so
	// 3 runs pooled are within ±8 (about 3σ) unless the simulation is wrong.
	env := DefaultEnvironment()
	p := poolscaling.Chosen(200, 200, 1)
	r, err := Pooled(p, Steady, 100, env, []uint64{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	near(t, "mean busy workers", r.MeanBusy(), 100, 8)
	if r.WarmShare() != 1 {
		t.Fatalf("a pool of 200 missed: %.4f warm", r.WarmShare())
	}
}

func TestSimulationIsDeterministicForASeed(t *testing.T) {
	run := Run{Policy: poolscaling.Chosen(8, 135, 8), Scenario: ExamSpike, PeakSessions: 100, Env: DefaultEnvironment(), Seed: 7}
	a, err := Simulate(run)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Simulate(run)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same run gave two results")
	}
	run.Seed = 8
	c, _ := Simulate(run)
	if reflect.DeepEqual(a, c) {
		t.Fatal("seeds 7 and 8 gave the same result")
	}
}

func TestReportIsDeterministicForASeed(t *testing.T) {
	report := func(seed uint64) []byte {
		var buf bytes.Buffer
		o := ReportOptions{Command: "test", Seeds: []uint64{seed}, Scales: []int{10}, Env: DefaultEnvironment()}
		if err := WriteReport(&buf, o); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	a, b, c := report(1), report(1), report(2)
	if !bytes.Equal(a, b) {
		t.Fatal("the same seed wrote two reports")
	}
	if bytes.Equal(a, c) {
		t.Fatal("seeds 1 and 2 wrote the same report")
	}
	for _, want := range []string{"## Recommended settings", "## Monthly cost", "| 10 | exam-spike | pool off (max 0) |",
		"| 10 | steady | target tracking, headroom 4 (min 4, max 28) |", "Where the simulation simplifies:"} {
		if !bytes.Contains(a, []byte(want)) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestRecommendedSettingsMeetTheTargets(t *testing.T) {
	env := DefaultEnvironment()
	for _, s := range poolscaling.Recommended {
		c, err := CheckTargets(s.Policy(), s.PeakSessions, env, []uint64{1, 2, 3, 4, 5})
		if err != nil {
			t.Fatal(err)
		}
		if !c.Meets() {
			t.Errorf("%d sessions, headroom %d: %.2f%% warm steady, %.2f%% in the spike; targets %.0f%% and %.0f%%",
				s.PeakSessions, s.Headroom, 100*c.Steady.WarmShare(), 100*c.Spike.WarmShare(), 100*Targets.Steady, 100*Targets.Spike)
		}
	}
}

func TestTheScalerKeepsTheMinimumWithoutDemand(t *testing.T) {
	quiet := Scenario{Name: "quiet", Shape: []Point{{0, 0}, {time.Hour, 0}}, MeasureFrom: 0, MeasureUntil: time.Hour}
	r, err := Simulate(Run{Policy: poolscaling.Chosen(5, 20, 5), Scenario: quiet, PeakSessions: 10, Env: DefaultEnvironment()})
	if err != nil {
		t.Fatal(err)
	}
	// No one comes: the 5 workers of the minimum stay idle the whole hour, nothing scales.
	if r.Sessions != 0 || r.StartingHours != 0 || r.Activities != 0 || r.MaxDesired != 5 {
		t.Fatalf("quiet hour: %d sessions, %v starting hours, %d activities, max desired %d", r.Sessions, r.StartingHours, r.Activities, r.MaxDesired)
	}
	near(t, "idle worker-hours", r.IdleHours, 5, 1e-9)
}

func TestScenarioShapes(t *testing.T) {
	for _, c := range []struct {
		sc   Scenario
		at   time.Duration
		want float64
	}{
		{ExamSpike, 30 * time.Minute, 0.2}, {ExamSpike, 65 * time.Minute, 0.6}, {ExamSpike, 90 * time.Minute, 1},
		{Lunch, clock(3, 15), 0.625}, {Day, clock(12, 30), 1}, {Steady, clock(4, 0), 1},
	} {
		if got := c.sc.Fraction(c.at); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s at %s: %v, want %v", c.sc.Name, c.at, got, c.want)
		}
	}
	for _, sc := range Scenarios {
		if err := sc.Validate(); err != nil {
			t.Error(err)
		}
	}
	bad := Scenario{Name: "bad", Shape: []Point{{0, 1}, {time.Hour, 1}}, MeasureFrom: 0, MeasureUntil: 2 * time.Hour}
	if bad.Validate() == nil {
		t.Error("a window past the end validated")
	}
}

func TestDistributionMeans(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, d := range []Dist{DefaultEnvironment().SessionLength, DefaultEnvironment().TaskStart} {
		var sum time.Duration
		const n = 200_000
		for range n {
			sum += d.Sample(r)
		}
		// The sample mean of 200,000 draws is within 1% of the stated (exact) mean.
		near(t, d.String(), (sum / n).Seconds(), d.Mean().Seconds(), d.Mean().Seconds()/100)
	}
}

func TestInvalidRunsAreRefused(t *testing.T) {
	env := DefaultEnvironment()
	env.MetricDelay = time.Second
	_, err := Simulate(Run{Policy: poolscaling.Chosen(5, 2, 0), Scenario: Steady, PeakSessions: 0, Env: env})
	if err == nil {
		t.Fatal("an invalid run simulated")
	}
	for _, want := range []string{"min 5 is above max 2", "peak sessions 0", "metric delay"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestFirstScaleOutWaitsForTheDatapointsAndTheAlarm(t *testing.T) {
	// Worked by hand: headroom 2, both workers idle; the first student arrives at 30 s. The
	// samples at 35 s and 45 s show 1 idle (< 2); periods [30 s, 40 s) and [40 s, 50 s) become
	// visible 20 s after they end, at 60 s and 70 s; the next evaluation (every 10 s, at 5, 15, …)
	// that sees both is at 75 s: the alarm fires and the policy adds the deficit of 1. A 60 s
	// metric delay moves it to 115 s.
	for _, c := range []struct {
		delay, want time.Duration
	}{{20 * time.Second, 75 * time.Second}, {60 * time.Second, 115 * time.Second}} {
		run := handWorked(poolscaling.Chosen(2, 50, 2))
		run.Env.MetricDelay = c.delay
		var first *poolscaling.Activity
		var at time.Duration
		run.OnScale = func(when time.Duration, act poolscaling.Activity) {
			if first == nil {
				first, at = &act, when
			}
		}
		if _, err := Simulate(run); err != nil {
			t.Fatal(err)
		}
		if first == nil || at != c.want || first.From != 2 || first.To != 3 {
			t.Errorf("metric delay %s: first scaling %+v at %s, want 2 → 3 at %s", c.delay, first, at, c.want)
		}
	}
}

func TestDocsShowTheRecommendedSettings(t *testing.T) {
	// docs/capacity.md (written by hand) and docs/capacity-model.md (written by `make capacity`)
	// must give the sizings poolscaling.Recommended holds: peak | min | max | headroom.
	for _, doc := range []string{"../../docs/capacity.md", "../../docs/capacity-model.md"} {
		raw, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(raw), ",", "")
		for _, s := range poolscaling.Recommended {
			row := fmt.Sprintf("| %d | %d | %d | %d |", s.PeakSessions, s.Min, s.Max, s.Headroom)
			if !strings.Contains(text, row) {
				t.Errorf("%s has no row %q: regenerate it (make capacity) or fix it", doc, row)
			}
		}
	}
}
