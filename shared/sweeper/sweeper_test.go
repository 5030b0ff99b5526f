package sweeper

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"counselvideo/shared/agents"
	"counselvideo/shared/rooms"
	"counselvideo/shared/sessions"
)

type fakeRooms struct {
	mu      sync.Mutex
	people  map[string][]rooms.Participant // room name → participants; absent = room gone
	deleted []string
	failFor string
}

func (f *fakeRooms) DeleteRoom(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.people, name)
	f.deleted = append(f.deleted, name)
	return nil
}

func (f *fakeRooms) Participants(_ context.Context, name string) ([]rooms.Participant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name == f.failFor {
		return nil, errors.New("livekit unavailable")
	}
	p, ok := f.people[name]
	if !ok {
		return nil, rooms.ErrRoomNotFound
	}
	return p, nil
}

type fakeLauncher struct {
	mu      sync.Mutex
	stopped map[string]string
}

func (f *fakeLauncher) Launch(context.Context, agents.Session) (string, error) { return "", nil }
func (f *fakeLauncher) Stop(_ context.Context, task, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped[task] = reason
	return nil
}

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func open(id string, age time.Duration, status sessions.Status) sessions.Session {
	s := sessions.Session{SessionID: id, UserID: "u-" + id, RoomName: sessions.RoomName(id), Status: status,
		CreatedAt: now.Add(-age), StartedAt: now.Add(-age), AgentTaskID: "task-" + id}
	if status == sessions.StatusActive {
		s.StudentJoinedAt = now.Add(-age + 30*time.Second)
	}
	return s
}

func TestSweeperClosesWhatIsOver(t *testing.T) {
	store := sessions.NewMemoryStore()
	student := rooms.Participant{Identity: "u"}
	agent := rooms.Participant{Identity: "agent-x", IsAgent: true}
	lk := &fakeRooms{people: map[string][]rooms.Participant{}}
	add := func(s sessions.Session, people ...rooms.Participant) {
		store.Put(s)
		if people != nil {
			lk.people[s.RoomName] = people
		}
	}
	// over the maximum duration, room still busy
	add(open("long", 61*time.Minute, sessions.StatusActive), student, agent)
	// room gone (room_finished dropped)
	add(open("gone", 10*time.Minute, sessions.StatusActive))
	// agent never joined and is not in the room
	add(open("noagent", 4*time.Minute, sessions.StatusStarting), student)
	// agent in the room although its participant_joined was lost: healthy
	add(open("agentin", 4*time.Minute, sessions.StatusActive), student, agent)
	// agent joined per the record: healthy
	withAgent := open("joined", 10*time.Minute, sessions.StatusActive)
	withAgent.AgentJoinedAt = withAgent.CreatedAt.Add(20 * time.Second)
	add(withAgent, student, agent)
	// young: not examined even though its room does not exist yet
	add(open("young", 20*time.Second, sessions.StatusStarting))
	// LiveKit error: retried next run
	add(open("lkerr", 10*time.Minute, sessions.StatusActive), student, agent)
	lk.failFor = sessions.RoomName("lkerr")

	launcher := &fakeLauncher{stopped: map[string]string{}}
	sw := &Sweeper{Sessions: store, Rooms: lk, Agents: launcher, Log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		MaxDuration: time.Hour, AgentJoinTimeout: 3 * time.Minute, Now: func() time.Time { return now }}
	rep, err := sw.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "lkerr") || rep.Errors != 1 {
		t.Fatalf("LiveKit error not reported: %v %+v", err, rep)
	}
	if rep.Examined != 6 || len(rep.Closed) != 3 {
		t.Fatalf("report %+v", rep)
	}
	want := map[string]struct {
		status sessions.Status
		reason string
	}{
		"long":    {sessions.StatusEnded, ReasonMaxDuration(time.Hour)},
		"gone":    {sessions.StatusEnded, ReasonRoomGone},
		"noagent": {sessions.StatusFailed, ReasonAgentTimeout(3 * time.Minute)},
		"agentin": {sessions.StatusActive, ""},
		"joined":  {sessions.StatusActive, ""},
		"young":   {sessions.StatusStarting, ""},
		"lkerr":   {sessions.StatusActive, ""},
	}
	for id, w := range want {
		s, _ := store.Get(context.Background(), id)
		if s.Status != w.status || s.EndReason != w.reason {
			t.Errorf("%s: %s %q, want %s %q", id, s.Status, s.EndReason, w.status, w.reason)
		}
		_, stopped := launcher.stopped["task-"+id]
		if stopped != w.status.Terminal() {
			t.Errorf("%s: task stopped=%v", id, stopped)
		}
		if w.status.Terminal() && !s.EndedAt.Equal(now) {
			t.Errorf("%s: ended_at %v", id, s.EndedAt)
		}
	}
	if s, _ := store.Get(context.Background(), "long"); s.DurationSeconds != int64((61*time.Minute-30*time.Second)/time.Second) {
		t.Errorf("duration %d", s.DurationSeconds)
	}
	if len(lk.deleted) != 3 {
		t.Errorf("deleted rooms %v", lk.deleted)
	}
	// A second run closes nothing new and stops nothing again.
	lk.failFor = ""
	rep, err = sw.Run(context.Background())
	if err != nil || len(rep.Closed) != 0 || len(launcher.stopped) != 3 {
		t.Fatalf("second run: %+v %v", rep, err)
	}
}
