package service

import (
	"context"
	"testing"
	"time"

	"counselvideo/shared/metrics"
	"counselvideo/shared/metrics/emftest"
	"counselvideo/shared/sessions"
)

// recordMetrics gives the fixture's service a recorder and returns a reader of what it wrote.
func recordMetrics(t *testing.T, f *fixture) func() []emftest.Metric {
	t.Helper()
	buf := &emftest.Buffer{}
	f.svc.Metrics = metrics.New(buf, "test-stack")
	return func() []emftest.Metric { t.Helper(); return buf.Metrics(t) }
}

func count(ms []emftest.Metric, name string, dims ...string) float64 {
	found := emftest.Find(ms, name, emftest.Dims("test-stack", dims...))
	if name == "CreateRoomLatency" {
		return float64(len(found)) // one sample per answer
	}
	return emftest.Sum(found)
}

// TestMetricsOfASession: created, resumed, ended by the student, each counted once.
func TestMetricsOfASession(t *testing.T) {
	f := newFixture(t)
	read := recordMetrics(t, f)
	first, err := f.svc.CreateRoom(context.Background(), student, catID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateRoom(context.Background(), student, catID); err != nil {
		t.Fatal(err)
	}
	if err := f.store.RecordStudentJoin(context.Background(), first.SessionID, t0); err != nil {
		t.Fatal(err)
	}
	f.svc.Now = func() time.Time { return t0.Add(90 * time.Second) }
	for range 2 { // the repeat changes nothing and counts nothing
		if _, err := f.svc.EndSession(context.Background(), student, first.SessionID); err != nil {
			t.Fatal(err)
		}
	}
	ms := read()
	for _, c := range []struct {
		name string
		dims []string
		want float64
	}{
		{"SessionsCreated", nil, 1},
		{"SessionsResumed", nil, 1},
		{"CreateRoomLatency", nil, 2},
		{"CreateRoomLatency", []string{metrics.DimOutcome, "created"}, 1},
		{"CreateRoomLatency", []string{metrics.DimOutcome, "resumed"}, 1},
		{"SessionsEnded", nil, 1},
		{"SessionsEnded", []string{metrics.DimReason, "ended_by_student"}, 1},
		{"SessionsFailed", nil, 0},
		{"SessionDuration", nil, 90},
	} {
		if got := count(ms, c.name, c.dims...); got != c.want {
			t.Errorf("%s %v = %v, want %v", c.name, c.dims, got, c.want)
		}
	}
	if m := emftest.Find(ms, "SessionsEnded", emftest.Dims("test-stack")); len(m) != 1 || m[0].Doc["session_id"] != first.SessionID {
		t.Errorf("SessionsEnded without the session id: %+v", m)
	}
}

// TestMetricsOfSetupFailures: the session counts as created (its record exists) and as failed with the
// step's reason; create-room answers an error.
func TestMetricsOfSetupFailures(t *testing.T) {
	for reason, breakIt := range map[metrics.Reason]func(*fixture){
		metrics.ReasonRoomCreationFailed:  func(f *fixture) { f.rooms.createErr = errBoom },
		metrics.ReasonAgentLaunchFailed:   func(f *fixture) { f.agents.launchErr = errBoom },
		metrics.ReasonSessionUpdateFailed: func(f *fixture) { f.store.failStarted = errBoom },
	} {
		t.Run(string(reason), func(t *testing.T) {
			f := newFixture(t)
			read := recordMetrics(t, f)
			breakIt(f)
			if _, err := f.svc.CreateRoom(context.Background(), student, catID); err == nil {
				t.Fatal("no error")
			}
			ms := read()
			if count(ms, "SessionsCreated") != 1 || count(ms, "SessionsFailed") != 1 ||
				count(ms, "SessionsFailed", metrics.DimReason, string(reason)) != 1 || count(ms, "SessionsEnded") != 0 {
				t.Errorf("metrics %+v", ms)
			}
			if count(ms, "CreateRoomLatency", metrics.DimOutcome, "error") != 1 {
				t.Error("create-room's error answer not measured")
			}
		})
	}
}

// An unknown category writes no session: an error answer, nothing created.
func TestMetricsOfRefusedCreateRoom(t *testing.T) {
	f := newFixture(t)
	read := recordMetrics(t, f)
	if _, err := f.svc.CreateRoom(context.Background(), student, "00000000-0000-4000-8000-000000000000"); err == nil {
		t.Fatal("no error")
	}
	ms := read()
	if count(ms, "SessionsCreated") != 0 || count(ms, "CreateRoomLatency", metrics.DimOutcome, "error") != 1 {
		t.Errorf("metrics %+v", ms)
	}
}

// The student ends the session while its setup runs: it counts once, as ended by the student, never
// as failed (the setup only undoes the room and the agent).
func TestMetricsOfEndDuringSetup(t *testing.T) {
	f := newFixture(t)
	read := recordMetrics(t, f)
	f.agents.onLaunch = once(func() {
		if _, err := f.svc.EndSession(context.Background(), student, sessionID); err != nil {
			t.Errorf("end: %v", err)
		}
	})
	if _, err := f.svc.CreateRoom(context.Background(), student, catID); err == nil {
		t.Fatal("setup succeeded for a session ended meanwhile")
	}
	ms := read()
	if count(ms, "SessionsEnded", metrics.DimReason, "ended_by_student") != 1 || count(ms, "SessionsFailed") != 0 || count(ms, "SessionsEnded") != 1 {
		t.Errorf("metrics %+v", ms)
	}
}

// A resumed session whose room is gone is closed by create-room: ended, room_gone_on_resume.
func TestMetricsOfRoomGoneOnResume(t *testing.T) {
	f := newFixture(t)
	first, err := f.svc.CreateRoom(context.Background(), student, catID)
	if err != nil {
		t.Fatal(err)
	}
	read := recordMetrics(t, f)
	if err := f.rooms.DeleteRoom(context.Background(), first.RoomName); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateRoom(context.Background(), student, catID); err != nil {
		t.Fatal(err)
	}
	ms := read()
	if count(ms, "SessionsEnded", metrics.DimReason, "room_gone_on_resume") != 1 || count(ms, "SessionsCreated") != 1 ||
		count(ms, "SessionsResumed") != 0 || count(ms, "SessionDuration") != 0 {
		t.Errorf("metrics %+v", ms)
	}
	if s := f.session(t, first.SessionID); s.Status != sessions.StatusEnded {
		t.Fatalf("old session %s", s.Status)
	}
}
