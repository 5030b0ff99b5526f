package webhook

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"counselvideo/shared/metrics"
	"counselvideo/shared/metrics/emftest"
)

func (f *fixture) recordMetrics(t *testing.T) func() []emftest.Metric {
	t.Helper()
	buf := &emftest.Buffer{}
	f.h.Metrics = metrics.New(buf, "test-stack")
	return func() []emftest.Metric { t.Helper(); return buf.Metrics(t) }
}

func find(ms []emftest.Metric, name string, dims ...string) []emftest.Metric {
	return emftest.Find(ms, name, emftest.Dims("test-stack", dims...))
}

func results(ms []emftest.Metric) map[string]float64 {
	out := map[string]float64{}
	for _, r := range metrics.DimensionValues[metrics.DimResult] {
		if n := emftest.Sum(find(ms, "WebhookEvents", metrics.DimResult, r)); n > 0 {
			out[r] = n
		}
	}
	return out
}

// TestMetricsOfALifecycle: one session's events, each delivered twice (LiveKit's retries): every
// request counted by result; the agent's and the student's first joins and the end counted once, with
// LiveKit's own times.
func TestMetricsOfALifecycle(t *testing.T) {
	f := newFixture(t)
	read := f.recordMetrics(t)
	for _, e := range recorded() {
		for range 2 {
			if w := f.send(t, e); w.Code != http.StatusOK {
				t.Fatalf("%s: %d", e.Event, w.Code)
			}
		}
	}
	ms := read()
	// Both agent joins, the student's join and room_finished apply; room_started (the sid is recorded
	// already) and both departures are ignored; every second delivery is a duplicate.
	want := map[string]float64{"applied": 4, "ignored": 3, "duplicate": 7}
	if got := results(ms); len(got) != len(want) || got["applied"] != 4 || got["ignored"] != 3 || got["duplicate"] != 7 {
		t.Errorf("webhook results %v, want %v", got, want)
	}
	for _, dims := range [][]string{nil, {metrics.DimAgentSource, "cold"}} {
		if m := find(ms, "TimeToAgent", dims...); len(m) != 1 || m[0].Values[0] != 20500 || m[0].Doc["session_id"] != sessionID {
			t.Errorf("TimeToAgent %v: %+v (the agent's join, not the avatar's, once)", dims, m)
		}
	}
	if m := find(ms, "TimeToStudent"); len(m) != 1 || m[0].Values[0] != 30100 {
		t.Errorf("TimeToStudent %+v", m)
	}
	if m := find(ms, "SessionsEnded", metrics.DimReason, "room_finished"); len(m) != 1 {
		t.Errorf("SessionsEnded room_finished %+v", m)
	}
	if m := find(ms, "SessionDuration"); len(m) != 1 || m[0].Values[0] != 602 {
		t.Errorf("SessionDuration %+v", m)
	}
}

// TestMetricsOfShuffledReplays: in any order, with every event three times, each session counts one
// agent join, one student join and one end.
func TestMetricsOfShuffledReplays(t *testing.T) {
	for seed := uint64(0); seed < 50; seed++ {
		f := newFixture(t)
		read := f.recordMetrics(t)
		var all []*livekit.WebhookEvent
		for _, e := range recorded() {
			all = append(all, e, e, e)
		}
		rand.New(rand.NewPCG(seed, 9)).Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		for _, e := range all {
			f.send(t, e)
		}
		ms := read()
		if len(find(ms, "TimeToAgent")) != 1 || len(find(ms, "TimeToStudent")) != 1 || len(find(ms, "SessionsEnded")) != 1 {
			t.Fatalf("seed %d: agent %d student %d ended %d, want one each", seed,
				len(find(ms, "TimeToAgent")), len(find(ms, "TimeToStudent")), len(find(ms, "SessionsEnded")))
		}
		if got := results(ms); got["duplicate"] != 14 || got["applied"]+got["ignored"] != 7 {
			t.Fatalf("seed %d: results %v", seed, got)
		}
	}
}

// Rejected requests (signature, method) and failed ones (5xx, LiveKit retries) are counted apart; a
// session already closed by someone else is not counted as ended again.
func TestMetricsOfRejectedAndFailedRequests(t *testing.T) {
	f := newFixture(t)
	read := f.recordMetrics(t)
	b := body(t, recorded()[0])
	post(f.h, b, sign(t, apiKey, "another-secret-another-secret-xx", b))
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/livekit/webhook", nil))
	f.agent.fail = errors.New("ecs unavailable")
	fin := ev("EV_fin", EventRoomFinished, created.Add(time.Minute), nil)
	if w := f.send(t, fin); w.Code != http.StatusInternalServerError {
		t.Fatalf("status %d", w.Code)
	}
	f.agent.fail = nil
	f.send(t, fin) // the retry: the session was ended by the first attempt
	ms := read()
	if got := results(ms); got["rejected"] != 2 || got["failed"] != 1 || got["applied"] != 1 || len(got) != 3 {
		t.Errorf("results %v", got)
	}
	if n := len(find(ms, "SessionsEnded")); n != 1 {
		t.Errorf("%d SessionsEnded for one end", n)
	}
}
