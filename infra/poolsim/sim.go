package poolsim

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"counselvideo/infra/poolscaling"
)

// Run is one simulation: a policy against a scenario at a scale.
type Run struct {
	Policy       poolscaling.Policy
	Scenario     Scenario
	PeakSessions int // the scale: concurrent sessions at the peak rate
	Env          Environment
	Seed         uint64
	// OnScale, if set, hears each scaling activity when the policy decides it (traces, tests).
	OnScale func(at time.Duration, act poolscaling.Activity)
}

// Result is what one run measured over the scenario's measured window.
type Result struct {
	Sessions, Warm int
	// TimeToAgent is create-room → agent in the room, per measured session, sorted.
	TimeToAgent []time.Duration
	// Worker-hours of pool tasks by state, and of the per-session tasks of cold sessions (in a
	// Merge of several runs: the mean of one run).
	IdleHours, StartingHours, BusyHours, ColdTaskHours float64
	// MaxColdWaiting is the largest number of students waiting at once for a cold-started agent.
	MaxColdWaiting int
	MaxDesired     int
	Activities     int // scaling activities (desired count changes)
	Window         time.Duration
	Price          Price
}

// WarmShare is the share of measured sessions a pool worker served.
func (r Result) WarmShare() float64 {
	if r.Sessions == 0 {
		return 0
	}
	return float64(r.Warm) / float64(r.Sessions)
}

// Percentile is the nearest-rank percentile (q in (0, 1]) of the time to agent.
func (r Result) Percentile(q float64) time.Duration {
	if len(r.TimeToAgent) == 0 {
		return 0
	}
	i := int(math.Ceil(float64(len(r.TimeToAgent))*q)) - 1
	return r.TimeToAgent[min(max(i, 0), len(r.TimeToAgent)-1)]
}

// IdleCost is what the idle pool workers cost over the window (USD).
func (r Result) IdleCost() float64 { return r.IdleHours * r.Price.PerTaskHour() }

// OverheadCost is what the pool costs beyond the sessions themselves: idle and starting workers.
func (r Result) OverheadCost() float64 {
	return (r.IdleHours + r.StartingHours) * r.Price.PerTaskHour()
}

// TotalCost is all agent compute over the window: the pool's tasks and the cold sessions' tasks.
func (r Result) TotalCost() float64 {
	return (r.IdleHours + r.StartingHours + r.BusyHours + r.ColdTaskHours) * r.Price.PerTaskHour()
}

// Mean worker counts over the window (time averages).
func (r Result) MeanBusy() float64     { return r.BusyHours / r.Window.Hours() }
func (r Result) MeanIdle() float64     { return r.IdleHours / r.Window.Hours() }
func (r Result) MeanStarting() float64 { return r.StartingHours / r.Window.Hours() }

// Simulate runs one simulation. The same Run always gives the same Result.
func Simulate(run Run) (Result, error) {
	if err := run.validate(); err != nil {
		return Result{}, err
	}
	s := newSim(run)
	s.loop()
	return s.result(), nil
}

func (run Run) validate() error {
	var problems []error
	if err := run.Policy.Validate(); err != nil {
		problems = append(problems, err)
	}
	if err := run.Scenario.Validate(); err != nil {
		problems = append(problems, err)
	}
	if run.PeakSessions < 1 {
		problems = append(problems, fmt.Errorf("peak sessions %d: need at least 1", run.PeakSessions))
	}
	if run.Env.MetricDelay < poolscaling.EmitInterval/2 {
		problems = append(problems, fmt.Errorf("metric delay %s is below half the emit interval", run.Env.MetricDelay))
	}
	if !run.Policy.Off() && run.Policy.MetricPeriod()%poolscaling.EmitInterval != 0 {
		problems = append(problems, fmt.Errorf("metric period %s is not a multiple of the emit interval", run.Policy.MetricPeriod()))
	}
	if run.Env.SessionLength == nil || run.Env.TaskStart == nil {
		problems = append(problems, errors.New("the environment needs session length and task start distributions"))
	}
	return errors.Join(problems...)
}

type taskState int

const (
	starting taskState = iota
	idle
	busy
	gone
)

type task struct{ state taskState }

type eventKind int

const (
	evArrival eventKind = iota
	evTaskReady
	evSessionEnd
	evColdJoined
	evSample
	evEvaluate
	evActuate
)

type event struct {
	at      time.Duration
	seq     uint64
	kind    eventKind
	task    *task
	length  time.Duration // evArrival: the session's length
	desired int           // evActuate
}

type queue []event

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(event)) }
func (q *queue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type sim struct {
	run  Run
	now  time.Duration
	q    queue
	seq  uint64
	rngs struct{ arrivals, lengths, poolStarts, coldStarts *rand.Rand }

	peakRate float64 // arrivals per second at Fraction 1

	desired            int
	idle, starting     []*task
	busyCount          int
	coldWaiting        int
	state              poolscaling.State
	datapoints         []poolscaling.Datapoint // finished periods, oldest first
	visibleAt          []time.Duration         // when alarms can see each of them
	seen               int                     // datapoints[:seen] are visible
	periodStart        time.Duration
	sumBusy, sumSample float64

	res Result
}

func newSim(run Run) *sim {
	s := &sim{run: run}
	stream := func(n uint64) *rand.Rand { return rand.New(rand.NewPCG(run.Seed, n)) }
	s.rngs.arrivals, s.rngs.lengths = stream(1), stream(2)
	s.rngs.poolStarts, s.rngs.coldStarts = stream(3), stream(4)
	s.peakRate = float64(run.PeakSessions) / run.Env.SessionLength.Mean().Seconds()
	s.res.Window = run.Scenario.MeasureUntil - run.Scenario.MeasureFrom
	s.res.Price = run.Env.Price

	s.state = run.Policy.Initial()
	s.desired = s.state.Desired
	for range s.desired { // the stack deploys with the pool at its minimum, all workers ready
		s.idle = append(s.idle, &task{state: idle})
	}
	s.scheduleArrival(0)
	if !run.Policy.Off() {
		s.push(event{at: poolscaling.EmitInterval / 2, kind: evSample})
		interval := run.Policy.EvaluationInterval()
		s.push(event{at: interval / 2, kind: evEvaluate})
	}
	return s
}

func (s *sim) push(e event) {
	s.seq++
	e.seq = s.seq
	heap.Push(&s.q, e)
}

// scheduleArrival draws the next arrival after t (non-homogeneous Poisson process by thinning).
func (s *sim) scheduleArrival(t time.Duration) {
	sc := s.run.Scenario
	top := s.peakRate * sc.maxFraction()
	if top <= 0 {
		return
	}
	if sc.Regular {
		if rate := s.peakRate * sc.Fraction(t); rate > 0 && t+seconds(1/rate) < sc.Duration() {
			t += seconds(1 / rate)
			s.push(event{at: t, kind: evArrival, length: s.run.Env.SessionLength.Sample(s.rngs.lengths)})
		}
		return
	}
	for {
		t += seconds(s.rngs.arrivals.ExpFloat64() / top)
		if t >= sc.Duration() {
			return
		}
		if s.rngs.arrivals.Float64()*top < s.peakRate*sc.Fraction(t) {
			s.push(event{at: t, kind: evArrival, length: s.run.Env.SessionLength.Sample(s.rngs.lengths)})
			return
		}
	}
}

func (s *sim) loop() {
	end := s.run.Scenario.Duration()
	for s.q.Len() > 0 && s.q[0].at <= end {
		s.stepOnce()
	}
	s.advance(s.run.Scenario.MeasureUntil)
}

// stepOnce handles the next event.
func (s *sim) stepOnce() {
	e := heap.Pop(&s.q).(event)
	s.advance(e.at)
	switch e.kind {
	case evArrival:
		s.arrive(e.length)
		s.scheduleArrival(e.at)
	case evTaskReady:
		if e.task.state == starting { // not stopped while it started
			s.starting = slices.DeleteFunc(s.starting, func(t *task) bool { return t == e.task })
			e.task.state = idle
			s.idle = append(s.idle, e.task)
		}
	case evSessionEnd: // the worker exits after its one session; ECS replaces it if still wanted
		e.task.state = gone
		s.busyCount--
		s.reconcile()
	case evColdJoined:
		s.coldWaiting--
	case evSample:
		s.sample()
		s.push(event{at: e.at + poolscaling.EmitInterval, kind: evSample})
	case evEvaluate:
		s.evaluate()
		s.push(event{at: e.at + s.run.Policy.EvaluationInterval(), kind: evEvaluate})
	case evActuate:
		s.desired = e.desired
		s.reconcile()
	}
}

// measuring reports whether t is inside the measured window.
func (s *sim) measuring(t time.Duration) bool {
	return t >= s.run.Scenario.MeasureFrom && t < s.run.Scenario.MeasureUntil
}

// advance moves the clock to t, adding the worker-hours spent since within the measured window.
func (s *sim) advance(t time.Duration) {
	from := max(s.now, s.run.Scenario.MeasureFrom)
	to := min(t, s.run.Scenario.MeasureUntil)
	if to > from {
		h := (to - from).Hours()
		s.res.IdleHours += h * float64(len(s.idle))
		s.res.StartingHours += h * float64(len(s.starting))
		s.res.BusyHours += h * float64(s.busyCount)
	}
	s.now = max(s.now, t)
}

func (s *sim) arrive(length time.Duration) {
	env := s.run.Env
	var wait, coldTask time.Duration
	warm := len(s.idle) > 0
	if warm {
		w := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		w.state = busy
		s.busyCount++
		wait = env.WarmDispatch
		s.push(event{at: s.now + wait + length, kind: evSessionEnd, task: w})
	} else {
		start := env.TaskStart.Sample(s.rngs.coldStarts)
		wait, coldTask = start, start+length // the per-session task is billed from its start
		if !s.run.Policy.Off() {
			wait += env.ColdFallbackWait
		}
		s.coldWaiting++
		s.push(event{at: s.now + wait, kind: evColdJoined})
	}
	if !s.measuring(s.now) {
		return
	}
	s.res.Sessions++
	s.res.TimeToAgent = append(s.res.TimeToAgent, wait)
	if warm {
		s.res.Warm++
	} else {
		s.res.ColdTaskHours += coldTask.Hours()
		s.res.MaxColdWaiting = max(s.res.MaxColdWaiting, s.coldWaiting)
	}
}

// reconcile is the ECS service scheduler: start tasks up to the desired count, or stop unprotected
// ones (still starting first, then idle) down to it. Workers in a session are protected.
func (s *sim) reconcile() {
	total := len(s.idle) + len(s.starting) + s.busyCount
	for ; total < s.desired; total++ {
		t := &task{state: starting}
		s.starting = append(s.starting, t)
		s.push(event{at: s.now + s.run.Env.TaskStart.Sample(s.rngs.poolStarts), kind: evTaskReady, task: t})
	}
	for ; total > s.desired && len(s.starting) > 0; total-- {
		s.starting[len(s.starting)-1].state = gone
		s.starting = s.starting[:len(s.starting)-1]
	}
	for ; total > s.desired && len(s.idle) > 0; total-- {
		s.idle[len(s.idle)-1].state = gone
		s.idle = s.idle[:len(s.idle)-1]
	}
}

// sample is one emission round: every running worker writes its PoolWorkerBusy sample. CloudWatch
// aggregates the samples per metric period.
func (s *sim) sample() {
	period := s.run.Policy.MetricPeriod()
	start := s.now.Truncate(period)
	if start != s.periodStart {
		s.finishPeriod()
		s.periodStart = start
	}
	s.sumBusy += float64(s.busyCount)
	s.sumSample += float64(s.busyCount + len(s.idle))
}

func (s *sim) finishPeriod() {
	if s.sumSample > 0 { // a period without samples has no datapoint
		period := s.run.Policy.MetricPeriod()
		dp := poolscaling.NewDatapoint(s.periodStart, period, s.sumBusy, s.sumSample)
		s.datapoints = append(s.datapoints, dp)
		s.visibleAt = append(s.visibleAt, s.periodStart+period+s.run.Env.MetricDelay)
	}
	s.sumBusy, s.sumSample = 0, 0
}

func (s *sim) evaluate() {
	for s.seen < len(s.datapoints) && s.visibleAt[s.seen] <= s.now {
		s.seen++
	}
	var act poolscaling.Activity
	s.state, act = s.run.Policy.Next(s.state, s.now, s.datapoints[:s.seen:s.seen])
	if act.To != act.From {
		if s.run.OnScale != nil {
			s.run.OnScale(s.now, act)
		}
		if s.measuring(s.now) {
			s.res.Activities++
		}
		s.push(event{at: s.now + s.run.Env.ActuationDelay, kind: evActuate, desired: act.To})
	}
	if s.measuring(s.now) {
		s.res.MaxDesired = max(s.res.MaxDesired, act.To)
	}
}

func (s *sim) result() Result {
	slices.Sort(s.res.TimeToAgent)
	return s.res
}
