package service

import (
	"context"
	"sync"
	"testing"
	"time"

	"counselvideo/shared/agents"
	"counselvideo/shared/sessions"
)

// poolDispatcher is LiveKit's dispatch side for a service test: the agent is in the room at once
// when join is set. It notes the session record as the agent's join webhook would read it.
type poolDispatcher struct {
	mu        sync.Mutex
	join      bool
	store     sessions.Store
	sourceAt  string // the record's agent_source when the agent was first seen in the room
	deleted   int
	hasBudget bool
}

func (d *poolDispatcher) CreateDispatch(ctx context.Context, _, _, _ string) (string, error) {
	dl, ok := ctx.Deadline()
	d.hasBudget = ok && time.Until(dl) > RequestTimeout // the pool's wait is on top of the request's
	return "AD_1", nil
}

func (d *poolDispatcher) DeleteDispatch(context.Context, string, string) error {
	d.mu.Lock()
	d.deleted++
	d.mu.Unlock()
	return nil
}

func (d *poolDispatcher) ParticipantPresent(ctx context.Context, room, _ string) (bool, error) {
	if !d.join {
		return false, nil
	}
	id, _ := sessions.SessionIDFromRoom(room)
	if s, err := d.store.Get(ctx, id); err == nil && d.sourceAt == "" {
		d.sourceAt = s.AgentSource
	}
	return true, nil
}

func poolFixture(t *testing.T, join bool) (*fixture, *poolDispatcher) {
	f := newFixture(t)
	d := &poolDispatcher{join: join, store: f.store}
	f.svc.Agents = agents.NewPool(d, f.agents, "counselor", time.Second, f.svc.Log)
	f.svc.PoolWait = time.Second + agents.DispatchDeleteTimeout
	return f, d
}

func TestCreateRoomPoolHitRecordsPool(t *testing.T) {
	f, d := poolFixture(t, true)
	if _, err := f.svc.CreateRoom(context.Background(), student, catID); err != nil {
		t.Fatal(err)
	}
	s := f.session(t, sessionID)
	if s.AgentSource != agents.SourcePool || s.AgentTaskID != "pool:video-"+sessionID+":AD_1" {
		t.Fatalf("source %q task %q, want the pool's", s.AgentSource, s.AgentTaskID)
	}
	// The agent's join webhook can read the record before MarkStarted: it already says pool.
	if d.sourceAt != agents.SourcePool {
		t.Fatalf("record's source while the agent joined: %q, want pool", d.sourceAt)
	}
	if len(f.agents.launched) != 0 || d.deleted != 0 {
		t.Fatalf("cold launches %d, deletes %d, want none", len(f.agents.launched), d.deleted)
	}
	if !d.hasBudget {
		t.Fatal("create-room's deadline does not include the pool's wait")
	}
}

func TestCreateRoomPoolMissRecordsCold(t *testing.T) {
	f, d := poolFixture(t, false)
	if _, err := f.svc.CreateRoom(context.Background(), student, catID); err != nil {
		t.Fatal(err)
	}
	s := f.session(t, sessionID)
	if s.AgentSource != agents.SourceCold || s.AgentTaskID != "task-"+sessionID {
		t.Fatalf("source %q task %q, want the cold launch", s.AgentSource, s.AgentTaskID)
	}
	if len(f.agents.launched) != 1 || d.deleted != 1 {
		t.Fatalf("cold launches %d, deletes %d, want one each", len(f.agents.launched), d.deleted)
	}
}

func TestCreateRoomWithoutPoolRecordsCold(t *testing.T) {
	f := newFixture(t)
	if _, err := f.svc.CreateRoom(context.Background(), student, catID); err != nil {
		t.Fatal(err)
	}
	if s := f.session(t, sessionID); s.AgentSource != agents.SourceCold {
		t.Fatalf("source %q, want cold", s.AgentSource)
	}
}
