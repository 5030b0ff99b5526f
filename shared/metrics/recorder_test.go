package metrics_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"counselvideo/shared/metrics"
	"counselvideo/shared/metrics/emftest"
	"counselvideo/shared/sessions"
)

var stamp = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func newRecorder() (*metrics.Recorder, *emftest.Buffer) {
	buf := &emftest.Buffer{}
	r := metrics.New(buf, "counselvideo-test")
	r.Now = func() time.Time { return stamp }
	return r, buf
}

// read validates every line of buf and fails on any problem.
func read(t *testing.T, buf *emftest.Buffer) []emftest.Metric {
	t.Helper()
	return buf.Metrics(t)
}

func only(t *testing.T, ms []emftest.Metric, name string, dims map[string]string) emftest.Metric {
	t.Helper()
	found := emftest.Find(ms, name, dims)
	if len(found) != 1 {
		t.Fatalf("%s %v: %d metrics, want 1 (all: %+v)", name, dims, len(found), ms)
	}
	return found[0]
}

func stack(extra ...string) map[string]string { return emftest.Dims("counselvideo-test", extra...) }

// checkDefinition: each metric of the lines carries its definition's unit and one of its dimension sets.
func checkDefinition(t *testing.T, ms []emftest.Metric) {
	t.Helper()
	defs := map[string]metrics.Definition{}
	for _, d := range metrics.Catalog() {
		defs[d.Name] = d
	}
	for _, m := range ms {
		d, ok := defs[m.Name]
		if !ok || m.Namespace != metrics.Namespace || m.Unit != string(d.Unit) {
			t.Errorf("%s: namespace %s unit %s, not as the catalog defines it", m.Name, m.Namespace, m.Unit)
		}
		if !slices.ContainsFunc(d.Dimensions, func(set []string) bool {
			return slices.Equal(sorted(set), m.DimensionNames())
		}) {
			t.Errorf("%s recorded under %v, not a dimension set of the catalog", m.Name, m.DimensionNames())
		}
		if !m.Timestamp.Equal(stamp) {
			t.Errorf("%s stamped %s", m.Name, m.Timestamp)
		}
	}
}

func sorted(s []string) []string { c := slices.Clone(s); slices.Sort(c); return c }

func TestSessionLifecycleLines(t *testing.T) {
	r, buf := newRecorder()
	created := stamp.Add(-10 * time.Minute)
	s := sessions.Session{SessionID: "s-1", CreatedAt: created}

	r.SessionCreated("s-1")
	r.CreateRoomAnswered(metrics.OutcomeCreated, 1500*time.Millisecond)
	r.AgentJoined(s, metrics.SourcePool, created.Add(300*time.Millisecond))
	r.StudentJoined(s, created.Add(4*time.Second))
	ended := s
	ended.Status, ended.StudentJoinedAt, ended.DurationSeconds = sessions.StatusEnded, created.Add(4*time.Second), 596
	r.SessionClosed(ended, metrics.ReasonEndedByStudent)
	failed := sessions.Session{SessionID: "s-2", Status: sessions.StatusFailed, CreatedAt: created}
	r.SessionClosed(failed, metrics.ReasonAgentLaunchFailed)

	if n := strings.Count(buf.String(), "\n"); n != 6 {
		t.Errorf("%d lines, want one per event (6)", n)
	}
	ms := read(t, buf)
	checkDefinition(t, ms)
	if m := only(t, ms, "SessionsCreated", stack()); m.Values[0] != 1 || m.Doc["session_id"] != "s-1" {
		t.Errorf("SessionsCreated %+v", m)
	}
	for _, dims := range []map[string]string{stack(), stack(metrics.DimOutcome, "created")} {
		if m := only(t, ms, "CreateRoomLatency", dims); m.Values[0] != 1500 {
			t.Errorf("CreateRoomLatency %v = %v ms", dims, m.Values)
		}
	}
	for _, dims := range []map[string]string{stack(), stack(metrics.DimAgentSource, "pool")} {
		if m := only(t, ms, "TimeToAgent", dims); m.Values[0] != 300 {
			t.Errorf("TimeToAgent %v = %v", dims, m.Values)
		}
	}
	if m := only(t, ms, "TimeToStudent", stack()); m.Values[0] != 4000 {
		t.Errorf("TimeToStudent = %v", m.Values)
	}
	only(t, ms, "SessionsEnded", stack())
	if m := only(t, ms, "SessionsEnded", stack(metrics.DimReason, "ended_by_student")); m.Doc["session_id"] != "s-1" {
		t.Errorf("SessionsEnded line lacks the session id: %v", m.Doc)
	}
	if m := only(t, ms, "SessionDuration", stack()); m.Values[0] != 596 {
		t.Errorf("SessionDuration = %v", m.Values)
	}
	only(t, ms, "SessionsFailed", stack(metrics.DimReason, "agent_launch_failed"))
	if len(emftest.Find(ms, "SessionDuration", stack())) != 1 || len(emftest.Find(ms, "SessionsEnded", stack(metrics.DimReason, "agent_launch_failed"))) != 0 {
		t.Error("a failed session counted as ended or with a duration")
	}
}

// A session the student never joined has no duration to report.
func TestEndedWithoutStudentHasNoDuration(t *testing.T) {
	r, buf := newRecorder()
	r.SessionClosed(sessions.Session{SessionID: "s", Status: sessions.StatusEnded}, metrics.ReasonRoomFinished)
	ms := read(t, buf)
	only(t, ms, "SessionsEnded", stack(metrics.DimReason, "room_finished"))
	if len(emftest.Find(ms, "SessionDuration", stack())) != 0 {
		t.Error("duration recorded for a session the student never joined")
	}
}

// Dimension values outside the bounded sets never reach CloudWatch (one metric per value).
func TestUnknownDimensionValuesAreBounded(t *testing.T) {
	r, buf := newRecorder()
	r.SessionClosed(sessions.Session{Status: sessions.StatusFailed}, metrics.Reason("agent did not join within 3m0s (closed by sweeper)"))
	r.CreateRoomAnswered(metrics.Outcome("weird"), time.Millisecond)
	r.AgentJoined(sessions.Session{}, metrics.AgentSource("someplace"), time.Now())
	r.WebhookHandled(metrics.WebhookResult("exploded"))
	ms := read(t, buf)
	only(t, ms, "SessionsFailed", stack(metrics.DimReason, "other"))
	only(t, ms, "CreateRoomLatency", stack(metrics.DimOutcome, "error"))
	only(t, ms, "TimeToAgent", stack(metrics.DimAgentSource, "cold"))
	only(t, ms, "WebhookEvents", stack(metrics.DimResult, "other"))
	for _, m := range ms {
		for dim, v := range m.Dimensions {
			if dim != metrics.DimStack && !slices.Contains(metrics.DimensionValues[dim], v) {
				t.Errorf("%s %s=%q is not a bounded value", m.Name, dim, v)
			}
		}
	}
}

func TestSweepLine(t *testing.T) {
	r, buf := newRecorder()
	r.SweepDone(metrics.Sweep{Duration: 12345 * time.Millisecond, Examined: 40, Closed: 3, Errors: 2, Stuck: 1})
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Fatalf("%d lines for one run, want 1", n)
	}
	ms := read(t, buf)
	checkDefinition(t, ms)
	want := map[string]float64{"SweepRuns": 1, "SweepDuration": 12345, "SweepExamined": 40, "SweepClosed": 3, "SweepErrors": 2, "SessionsStuckOpen": 1}
	for name, v := range want {
		if m := only(t, ms, name, stack()); m.Values[0] != v {
			t.Errorf("%s = %v, want %v", name, m.Values, v)
		}
	}
}

func TestWebhookAndResumeLines(t *testing.T) {
	r, buf := newRecorder()
	for _, res := range []metrics.WebhookResult{metrics.WebhookApplied, metrics.WebhookDuplicate, metrics.WebhookApplied} {
		r.WebhookHandled(res)
	}
	r.SessionResumed("s-9")
	r.CreateRoomAnswered(metrics.OutcomeOf(true, nil), 20*time.Millisecond)
	r.CreateRoomAnswered(metrics.OutcomeOf(false, errors.New("x")), 20*time.Millisecond)
	ms := read(t, buf)
	checkDefinition(t, ms)
	if got := emftest.Sum(emftest.Find(ms, "WebhookEvents", stack(metrics.DimResult, "applied"))); got != 2 {
		t.Errorf("applied = %v", got)
	}
	only(t, ms, "WebhookEvents", stack(metrics.DimResult, "duplicate"))
	only(t, ms, "SessionsResumed", stack())
	only(t, ms, "CreateRoomLatency", stack(metrics.DimOutcome, "resumed"))
	only(t, ms, "CreateRoomLatency", stack(metrics.DimOutcome, "error"))
}

func TestNilRecorderRecordsNothing(t *testing.T) {
	var r *metrics.Recorder
	r.SessionCreated("x")
	r.SessionClosed(sessions.Session{}, metrics.ReasonOther)
	r.SweepDone(metrics.Sweep{})
}

// Concurrent events give whole lines, each valid (no interleaving inside a line).
func TestConcurrentLinesStayWhole(t *testing.T) {
	r, buf := newRecorder()
	var w sync.WaitGroup
	for range 50 {
		w.Go(func() { r.WebhookHandled(metrics.WebhookApplied); r.SessionCreated("s") })
	}
	w.Wait()
	ms := read(t, buf)
	if got := emftest.Sum(emftest.Find(ms, "WebhookEvents", stack(metrics.DimResult, "applied"))); got != 50 {
		t.Errorf("applied = %v, want 50", got)
	}
	if got := emftest.Sum(emftest.Find(ms, "SessionsCreated", stack())); got != 50 {
		t.Errorf("created = %v, want 50", got)
	}
}

// Every definition is one CloudWatch accepts: dimension sets start with Stack, at most 30 dimensions,
// names unique, and every bounded dimension has its values listed.
func TestCatalog(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range metrics.Catalog() {
		if seen[d.Name] || d.Name == "" || d.Help == "" {
			t.Errorf("%q: repeated, unnamed or without help", d.Name)
		}
		seen[d.Name] = true
		if len(d.Dimensions) == 0 {
			t.Errorf("%s has no dimension set", d.Name)
		}
		for _, set := range d.Dimensions {
			if len(set) == 0 || set[0] != metrics.DimStack || len(set) > emftest.MaxDimensionsPerSet {
				t.Errorf("%s: dimension set %v must start with Stack (at most %d)", d.Name, set, emftest.MaxDimensionsPerSet)
			}
			for _, dim := range set[1:] {
				if len(metrics.DimensionValues[dim]) == 0 {
					t.Errorf("%s: dimension %s has no bounded values", d.Name, dim)
				}
			}
		}
	}
}
