package sweeper

import (
	"context"
	"errors"
	"testing"
	"time"

	"counselvideo/shared/metrics"
	"counselvideo/shared/metrics/emftest"
	"counselvideo/shared/rooms"
	"counselvideo/shared/sessions"
)

// endFailing fails End for one session (its close keeps failing, so it stays open).
type endFailing struct {
	*sessions.MemoryStore
	id string
}

func (e *endFailing) End(ctx context.Context, id string, end sessions.Ending) (sessions.Session, error) {
	if id == e.id {
		return sessions.Session{}, errors.New("dynamodb unavailable")
	}
	return e.MemoryStore.End(ctx, id, end)
}

func recordMetrics(t *testing.T, sw *Sweeper) func() []emftest.Metric {
	t.Helper()
	buf := &emftest.Buffer{}
	sw.Metrics = metrics.New(buf, "test-stack")
	return func() []emftest.Metric { t.Helper(); return buf.Metrics(t) }
}

func value(ms []emftest.Metric, name string, dims ...string) float64 {
	return emftest.Sum(emftest.Find(ms, name, emftest.Dims("test-stack", dims...)))
}

// TestMetricsOfARun: one line per run with its totals; each session it closes counted with its
// reason; a session it cannot close, open long past the maximum duration, counted as stuck in every
// run until it closes.
func TestMetricsOfARun(t *testing.T) {
	mem := sessions.NewMemoryStore()
	lk := &fakeRooms{people: map[string][]rooms.Participant{}}
	student, agent := rooms.Participant{Identity: "u"}, rooms.Participant{Identity: "agent-x", IsAgent: true}
	withAgent := func(s sessions.Session) sessions.Session {
		s.AgentJoinedAt = s.CreatedAt.Add(20 * time.Second)
		return s
	}
	for _, s := range []sessions.Session{
		withAgent(open("long", 61*time.Minute, sessions.StatusActive)),  // past its maximum (from the agent's join): ended
		withAgent(open("stuck", 70*time.Minute, sessions.StatusActive)), // long past it, but its End fails
		open("gone", 10*time.Minute, sessions.StatusActive),             // room gone: ended
		open("noagent", 4*time.Minute, sessions.StatusStarting),
		open("fine", 10*time.Minute, sessions.StatusActive),
	} {
		mem.Put(s)
		if s.SessionID != "gone" {
			lk.people[s.RoomName] = []rooms.Participant{student}
		}
	}
	lk.people[sessions.RoomName("fine")] = []rooms.Participant{student, agent}
	sw := quietSweeper(mem, lk)
	sw.Sessions = &endFailing{MemoryStore: mem, id: "stuck"}
	read := recordMetrics(t, sw)

	rep, err := sw.Run(context.Background())
	if err != nil || rep.Stuck != 1 || rep.Errors != 1 || len(rep.Closed) != 3 {
		t.Fatalf("run: %v %+v", err, rep)
	}
	ms := read()
	for name, want := range map[string]float64{
		"SweepRuns": 1, "SweepExamined": 5, "SweepClosed": 3, "SweepErrors": 1, "SessionsStuckOpen": 1,
	} {
		if got := value(ms, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if len(emftest.Find(ms, "SweepDuration", emftest.Dims("test-stack"))) != 1 {
		t.Error("no SweepDuration")
	}
	for reason, want := range map[string]float64{"max_duration": 1, "room_gone": 1} {
		if got := value(ms, "SessionsEnded", metrics.DimReason, reason); got != want {
			t.Errorf("SessionsEnded %s = %v, want %v", reason, got, want)
		}
	}
	if got := value(ms, "SessionsFailed", metrics.DimReason, "agent_join_timeout"); got != 1 {
		t.Errorf("SessionsFailed agent_join_timeout = %v", got)
	}

	// The next run closes nothing new; the stuck session is still stuck.
	if _, err := sw.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	ms = read()
	if value(ms, "SessionsStuckOpen") != 1 || value(ms, "SweepClosed") != 0 || value(ms, "SessionsEnded") != 0 || value(ms, "SweepRuns") != 1 {
		t.Errorf("second run: %+v", ms)
	}
}

// A run that cannot list anything fails its invocation, and still writes its line (with the error):
// "the sweeper runs" and "the sweeper fails" are different alarms.
func TestMetricsOfAFailedRun(t *testing.T) {
	sw := quietSweeper(sessions.NewMemoryStore(), &fakeRooms{})
	sw.Sessions = &brokenStore{MemoryStore: sessions.NewMemoryStore()}
	read := recordMetrics(t, sw)
	if _, err := sw.Run(context.Background()); err == nil {
		t.Fatal("no error")
	}
	ms := read()
	if value(ms, "SweepRuns") != 1 || value(ms, "SweepErrors") < 1 || value(ms, "SweepExamined") != 0 {
		t.Errorf("metrics %+v", ms)
	}
}
