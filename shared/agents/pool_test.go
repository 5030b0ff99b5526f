package agents

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDispatcher records the pool's LiveKit calls in order; joinAfter is how many presence checks
// pass before the agent is in the room (-1: never).
type fakeDispatcher struct {
	mu        sync.Mutex
	calls     []string
	metadata  string
	joinAfter int
	checks    int
	createErr error
	deleteErr error
	deleted   []string
}

func (f *fakeDispatcher) record(call string) {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
}

func (f *fakeDispatcher) CreateDispatch(_ context.Context, room, agentName, metadata string) (string, error) {
	f.record("create " + room + " " + agentName)
	f.metadata = metadata
	if f.createErr != nil {
		return "", f.createErr
	}
	return "AD_1", nil
}

func (f *fakeDispatcher) DeleteDispatch(_ context.Context, room, dispatchID string) error {
	f.record("delete " + room + " " + dispatchID)
	if f.deleteErr != nil {
		return f.deleteErr
	}
	f.deleted = append(f.deleted, dispatchID)
	return nil
}

func (f *fakeDispatcher) ParticipantPresent(_ context.Context, room, identity string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks++
	return f.joinAfter >= 0 && f.checks > f.joinAfter && identity == "agent-s1", nil
}

// fakeCold is the cold launcher; it shares the dispatcher's call log so the order is visible.
type fakeCold struct {
	d       *fakeDispatcher
	stopped []string
}

func (c *fakeCold) Launch(_ context.Context, s Session) (string, error) {
	c.d.record("cold " + s.SessionID)
	return "arn:task/" + s.SessionID, nil
}

func (c *fakeCold) Stop(_ context.Context, taskID, _ string) error {
	c.stopped = append(c.stopped, taskID)
	return nil
}

var poolSession = Session{SessionID: "s1", RoomName: "video-s1", CategoryID: "c1", MaxDuration: 1800 * time.Second}

func newTestPool(d *fakeDispatcher, name string, wait time.Duration) (*Pool, *fakeCold) {
	cold := &fakeCold{d: d}
	return NewPool(d, cold, name, wait, nil), cold
}

func TestPoolJoinedNeedsNoColdLaunch(t *testing.T) {
	d := &fakeDispatcher{joinAfter: 2}
	p, _ := newTestPool(d, "counselor", time.Second)
	taskID, err := p.Launch(context.Background(), poolSession)
	if err != nil {
		t.Fatal(err)
	}
	if taskID != "pool:video-s1:AD_1" || SourceOf(taskID) != SourcePool {
		t.Fatalf("task id %q (source %s), want the pool's", taskID, SourceOf(taskID))
	}
	if want := []string{"create video-s1 counselor"}; strings.Join(d.calls, "|") != strings.Join(want, "|") {
		t.Fatalf("calls %v, want %v (no delete, no cold launch)", d.calls, want)
	}
	var md map[string]any
	if err := json.Unmarshal([]byte(d.metadata), &md); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"session_id": "s1", "category_id": "c1", "max_duration_seconds": float64(1800)}
	if len(md) != len(want) || md["session_id"] != want["session_id"] || md["category_id"] != want["category_id"] || md["max_duration_seconds"] != want["max_duration_seconds"] {
		t.Fatalf("metadata %v, want %v", md, want)
	}
}

func TestPoolReplacementMetadata(t *testing.T) {
	d := &fakeDispatcher{joinAfter: 0}
	p, _ := newTestPool(d, "counselor", time.Second)
	s := poolSession
	s.Replacement = true
	if _, err := p.Launch(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.metadata, `"replacement":true`) {
		t.Fatalf("metadata %s lacks replacement", d.metadata)
	}
}

func TestPoolMissDeletesTheDispatchBeforeTheColdLaunch(t *testing.T) {
	d := &fakeDispatcher{joinAfter: -1}
	p, _ := newTestPool(d, "counselor", 200*time.Millisecond)
	taskID, err := p.Launch(context.Background(), poolSession)
	if err != nil {
		t.Fatal(err)
	}
	if taskID != "arn:task/s1" || SourceOf(taskID) != SourceCold {
		t.Fatalf("task id %q, want the cold launcher's", taskID)
	}
	want := []string{"create video-s1 counselor", "delete video-s1 AD_1", "cold s1"}
	if strings.Join(d.calls, "|") != strings.Join(want, "|") {
		t.Fatalf("calls %v, want %v", d.calls, want)
	}
	if d.checks < 2 {
		t.Fatalf("%d presence checks, want it polled", d.checks)
	}
}

func TestPoolFailedDeleteMeansNoColdLaunch(t *testing.T) {
	d := &fakeDispatcher{joinAfter: -1, deleteErr: errors.New("livekit down")}
	p, _ := newTestPool(d, "counselor", 100*time.Millisecond)
	if _, err := p.Launch(context.Background(), poolSession); err == nil {
		t.Fatal("launch succeeded, want the failed delete to fail it")
	}
	for _, c := range d.calls {
		if strings.HasPrefix(c, "cold") {
			t.Fatalf("calls %v: a cold launch after a failed delete could make two agents", d.calls)
		}
	}
}

func TestPoolFailedDispatchMeansNoColdLaunch(t *testing.T) {
	d := &fakeDispatcher{joinAfter: -1, createErr: errors.New("livekit down")}
	p, _ := newTestPool(d, "counselor", 100*time.Millisecond)
	if _, err := p.Launch(context.Background(), poolSession); err == nil {
		t.Fatal("launch succeeded, want the failed dispatch to fail it")
	}
	if len(d.calls) != 1 {
		t.Fatalf("calls %v, want the dispatch only", d.calls)
	}
}

func TestPoolCanceledRequestDeletesAndDoesNotFallBack(t *testing.T) {
	d := &fakeDispatcher{joinAfter: -1}
	p, _ := newTestPool(d, "counselor", 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := p.Launch(ctx, poolSession); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the request's deadline", err)
	}
	want := []string{"create video-s1 counselor", "delete video-s1 AD_1"}
	if strings.Join(d.calls, "|") != strings.Join(want, "|") {
		t.Fatalf("calls %v, want %v", d.calls, want)
	}
}

func TestPoolWithoutAgentNameIsCold(t *testing.T) {
	d := &fakeDispatcher{joinAfter: 0}
	p, _ := newTestPool(d, "", time.Second)
	if FirstSource(p) != SourceCold {
		t.Fatal("a pool without agent name must report cold first")
	}
	if taskID, err := p.Launch(context.Background(), poolSession); err != nil || taskID != "arn:task/s1" {
		t.Fatalf("launch %q %v", taskID, err)
	}
	if want := []string{"cold s1"}; strings.Join(d.calls, "|") != strings.Join(want, "|") {
		t.Fatalf("calls %v, want %v", d.calls, want)
	}
}

func TestPoolStopRoutesByTaskID(t *testing.T) {
	d := &fakeDispatcher{}
	p, cold := newTestPool(d, "counselor", time.Second)
	ctx := context.Background()
	if err := p.Stop(ctx, "pool:video-s1:AD_7", "ended"); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(ctx, "arn:task/s1", "ended"); err != nil {
		t.Fatal(err)
	}
	if strings.Join(d.calls, "|") != "delete video-s1 AD_7" {
		t.Fatalf("dispatcher calls %v", d.calls)
	}
	if len(cold.stopped) != 1 || cold.stopped[0] != "arn:task/s1" {
		t.Fatalf("cold stops %v: a pool id must never reach StopTask", cold.stopped)
	}
	if err := p.Stop(ctx, "pool:broken", "x"); err == nil {
		t.Fatal("a malformed pool id must be an error")
	}
	if FirstSource(p) != SourcePool {
		t.Fatal("a pool with an agent name tries the pool first")
	}
}

func TestPoolJoinTimeoutIsBounded(t *testing.T) {
	p, _ := newTestPool(&fakeDispatcher{}, "counselor", time.Minute)
	if p.joinTimeout != PoolJoinTimeoutMax {
		t.Fatalf("join timeout %s, want it cut to %s", p.joinTimeout, PoolJoinTimeoutMax)
	}
}
