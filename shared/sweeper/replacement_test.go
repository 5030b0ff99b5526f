package sweeper

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"counselvideo/shared/rooms"
	"counselvideo/shared/sessions"
)

// TestSweeperReplacementJoinTimeout: a session whose lost agent was replaced is failed when the
// replacement is not in the room AgentJoinTimeout after the loss (the lost agent's avatar does not
// count); one whose replacement is in, or is still within the timeout, is left alone.
func TestSweeperReplacementJoinTimeout(t *testing.T) {
	store := sessions.NewMemoryStore()
	lk := &fakeRooms{people: map[string][]rooms.Participant{}}
	replaced := func(id string, ago time.Duration, people ...rooms.Participant) {
		s := open(id, 20*time.Minute, sessions.StatusActive)
		s.AgentJoinedAt = s.CreatedAt.Add(20 * time.Second)
		s.AgentReplacedAt, s.AgentLostSID, s.AgentTaskID = now.Add(-ago), "PA_lost", "task-"+id
		store.Put(s)
		lk.people[s.RoomName] = people
	}
	student := func(id string) rooms.Participant { return rooms.Participant{Identity: "u-" + id} }
	avatar := rooms.Participant{Identity: "bey-avatar-agent", IsAgent: true}
	replaced("never", 4*time.Minute, student("never"), avatar)
	replaced("joined", 4*time.Minute, student("joined"), rooms.Participant{Identity: rooms.AgentIdentity("joined"), IsAgent: true})
	replaced("starting", time.Minute, student("starting"))

	launcher := &fakeLauncher{stopped: map[string]string{}}
	sw := &Sweeper{Sessions: store, Rooms: lk, Agents: launcher, Log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		MaxDuration: time.Hour, AgentJoinTimeout: 3 * time.Minute, Now: func() time.Time { return now }}
	rep, err := sw.Run(context.Background())
	if err != nil || len(rep.Closed) != 1 || rep.Closed[0].SessionID != "never" {
		t.Fatalf("report %+v %v", rep, err)
	}
	s, _ := store.Get(context.Background(), "never")
	if s.Status != sessions.StatusFailed || s.EndReason != ReasonReplacementTimeout(3*time.Minute) {
		t.Errorf("never: %s %q", s.Status, s.EndReason)
	}
	if _, ok := launcher.stopped["task-never"]; !ok || len(lk.deleted) != 1 || lk.deleted[0] != sessions.RoomName("never") {
		t.Errorf("cleanup: stopped %v deleted %v", launcher.stopped, lk.deleted)
	}
	for _, id := range []string{"joined", "starting"} {
		if s, _ := store.Get(context.Background(), id); s.Status != sessions.StatusActive {
			t.Errorf("%s: %s %q", id, s.Status, s.EndReason)
		}
	}
}
