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

// agentGoodbyeWorstCase is how long after its maximum the agent may still be closing the session:
// the goodbye's wait (agentimage GOODBYE_MAX_WAIT_MS, 10 s) and closing the conversation (10 s).
const agentGoodbyeWorstCase = 20 * time.Second

// TestSweeperLetsTheAgentSayGoodbye: the agent counts the maximum from its own join, which comes
// after the session's creation (Fargate starts take 20-90 s). Counting from creation, the sweeper
// ended a session whose agent joined late while the agent was still saying its goodbye.
func TestSweeperLetsTheAgentSayGoodbye(t *testing.T) {
	const max = time.Hour
	const joinTimeout = 3 * time.Minute
	agent := rooms.Participant{Identity: "agent-x", IsAgent: true}
	for _, tc := range []struct {
		name        string
		agentJoinAt time.Duration // after creation; < 0: not recorded (webhook lost)
		sessionMax  time.Duration // the session's own maximum; 0: recorded before it existed
		closedAt    time.Duration // the sweeper may end it from this age on, and not before
		limit       time.Duration // the maximum named in the reason
	}{
		{"agent joined 90 s after creation", 90 * time.Second, 0, 90*time.Second + max + GoodbyeGrace, max},
		{"agent joined at once", time.Second, 0, time.Second + max + GoodbyeGrace, max},
		{"agent's join not recorded", -1, 0, joinTimeout + max + GoodbyeGrace, max},
		{"own maximum cut by the daily minutes", 40 * time.Second, 12 * time.Minute, 40*time.Second + 12*time.Minute + GoodbyeGrace, 12 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The agent's goodbye is over by its join + maximum + the worst case; the sweeper waits longer.
			if tc.agentJoinAt >= 0 && tc.closedAt < tc.agentJoinAt+tc.limit+agentGoodbyeWorstCase {
				t.Fatalf("case ends the session at %s, before the agent's goodbye is over", tc.closedAt)
			}
			for _, at := range []struct {
				age    time.Duration
				closed bool
			}{{tc.closedAt - time.Second, false}, {tc.closedAt, true}} {
				store := sessions.NewMemoryStore()
				s := open("s", at.age, sessions.StatusActive)
				if tc.agentJoinAt >= 0 {
					s.AgentJoinedAt = s.CreatedAt.Add(tc.agentJoinAt)
				}
				s.MaxDurationSeconds = int64(tc.sessionMax / time.Second)
				store.Put(s)
				lk := &fakeRooms{people: map[string][]rooms.Participant{s.RoomName: {{Identity: "u"}, agent}}}
				sw := &Sweeper{Sessions: store, Rooms: lk, Agents: &fakeLauncher{stopped: map[string]string{}},
					Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), MaxDuration: max, AgentJoinTimeout: joinTimeout,
					Now: func() time.Time { return now }}
				if _, err := sw.Run(context.Background()); err != nil {
					t.Fatal(err)
				}
				got, _ := store.Get(context.Background(), "s")
				if closed := got.Status.Terminal(); closed != at.closed {
					t.Fatalf("at age %s: closed=%v, want %v (%s)", at.age, closed, at.closed, got.EndReason)
				}
				if at.closed && got.EndReason != ReasonMaxDuration(tc.limit) {
					t.Fatalf("reason %q, want %q", got.EndReason, ReasonMaxDuration(tc.limit))
				}
			}
		})
	}
}
