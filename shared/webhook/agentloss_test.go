package webhook

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"counselvideo/shared/metrics"
	"counselvideo/shared/rooms"
	"counselvideo/shared/sessions"
)

var (
	agentJoined = created.Add(20 * time.Second)
	lostAt      = created.Add(10 * time.Minute)
	agentID     = rooms.AgentIdentity(sessionID)
)

// activeSession: the student and the agent are in; the session's own maximum is 25 minutes.
func activeSession() sessions.Session {
	s := startingSession()
	s.Status, s.StudentJoinedAt, s.AgentJoinedAt, s.MaxDurationSeconds = sessions.StatusActive, created.Add(30*time.Second), agentJoined, 25*60
	return s
}

// lostAgent is the agent's participant_left after its process died (LiveKit noticed the closed signal
// connection); sid tells one agent connection from another.
func lostAgent(id, sid string, reason livekit.DisconnectReason) *livekit.WebhookEvent {
	p := agentP(agentID, agentJoined)
	p.Sid, p.DisconnectReason = sid, reason
	return ev(id, EventParticipantLeft, lostAt, p)
}

func studentIn() rooms.Participant { return rooms.Participant{Identity: userID} }
func avatarIn() rooms.Participant {
	return rooms.Participant{Identity: "bey-avatar-agent", IsAgent: true}
}

func lossFixture(t *testing.T) *fixture {
	f := newFixture(t)
	f.store.Put(activeSession())
	f.rooms.setPeople(sessions.RoomName(sessionID), studentIn(), avatarIn())
	return f
}

func (f *fixture) mustSend(t *testing.T, e *livekit.WebhookEvent, want int) {
	t.Helper()
	if w := f.send(t, e); w.Code != want {
		t.Fatalf("%s %s: status %d, want %d: %s", e.Event, e.Id, w.Code, want, w.Body)
	}
}

// TestAgentLostStartsOneReplacement: the agent dies while the student stays: one replacement is
// launched (Replacement, what is left of the maximum), recorded with its task, the lost task stopped;
// a retry, a second event of the same loss and concurrent webhooks start no other.
func TestAgentLostStartsOneReplacement(t *testing.T) {
	f := lossFixture(t)
	read := f.recordMetrics(t)
	f.mustSend(t, lostAgent("EV_lost", "PA_first", livekit.DisconnectReason_SIGNAL_CLOSE), http.StatusOK)

	got := f.agent.launches()
	if len(got) != 1 {
		t.Fatalf("%d launches, want 1", len(got))
	}
	want := 25*time.Minute - lostAt.Sub(agentJoined)
	if l := got[0]; !l.Replacement || l.SessionID != sessionID || l.RoomName != sessions.RoomName(sessionID) || l.CategoryID != "cat" || l.MaxDuration != want {
		t.Errorf("launch %+v, want a replacement with %s left", l, want)
	}
	s := f.session(t)
	if s.Status != sessions.StatusActive || !s.AgentReplacedAt.Equal(lostAt) || s.AgentLostSID != "PA_first" || s.AgentTaskID != "task-replacement-1" {
		t.Errorf("session after the replacement: %+v", s)
	}
	if stops := f.agent.stops(); len(stops) != 1 || !strings.HasPrefix(stops[0], taskID+"|") {
		t.Errorf("stops %v, want the lost agent's task", stops)
	}
	if d := f.rooms.deletes(); len(d) != 0 {
		t.Errorf("room deleted: %v", d)
	}

	// LiveKit's retry (same id), the connection_aborted of the same participant (another id), and
	// concurrent deliveries of more such events: nothing more.
	f.mustSend(t, lostAgent("EV_lost", "PA_first", livekit.DisconnectReason_SIGNAL_CLOSE), http.StatusOK)
	aborted := lostAgent("EV_lost_aborted", "PA_first", livekit.DisconnectReason_CONNECTION_TIMEOUT)
	aborted.Event = EventParticipantAbort
	f.mustSend(t, aborted, http.StatusOK)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			f.send(t, lostAgent("EV_lost_"+string(rune('a'+i)), "PA_first", livekit.DisconnectReason_SIGNAL_CLOSE))
		})
	}
	wg.Wait()
	if n := len(f.agent.launches()); n != 1 {
		t.Fatalf("%d launches after duplicates, want 1", n)
	}
	if s := f.session(t); s.Status != sessions.StatusActive {
		t.Fatalf("a duplicate changed the session: %+v", s)
	}
	ms := read()
	if m := find(ms, "AgentsReplaced"); len(m) != 1 || m[0].Doc["session_id"] != sessionID {
		t.Errorf("AgentsReplaced %+v, want once", m)
	}
}

// TestAgentLostConcurrentWebhooks: two webhooks of one loss (different event ids) handled at the same
// time, both past the checks before either writes: one replacement.
func TestAgentLostConcurrentWebhooks(t *testing.T) {
	f := lossFixture(t)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, id := range []string{"EV_left", "EV_aborted"} {
		wg.Go(func() {
			<-start
			f.send(t, lostAgent(id, "PA_first", livekit.DisconnectReason_SIGNAL_CLOSE))
		})
	}
	close(start)
	wg.Wait()
	if n := len(f.agent.launches()); n != 1 {
		t.Fatalf("%d launches, want 1", n)
	}
}

// TestAgentDepartureThatIsNoLoss: nothing is started when the room is being deleted or closed, the
// agent left by itself or was removed, the student is gone, the room is gone, the session is closed,
// another connection of the agent is in, or it is the avatar that left.
func TestAgentDepartureThatIsNoLoss(t *testing.T) {
	cases := []struct {
		name  string
		setup func(f *fixture)
		event *livekit.WebhookEvent
	}{
		{"room deleted", nil, lostAgent("EV_x", "PA_first", livekit.DisconnectReason_ROOM_DELETED)},
		{"room closed", nil, lostAgent("EV_x", "PA_first", livekit.DisconnectReason_ROOM_CLOSED)},
		{"left by itself", nil, lostAgent("EV_x", "PA_first", livekit.DisconnectReason_CLIENT_INITIATED)},
		{"removed", nil, lostAgent("EV_x", "PA_first", livekit.DisconnectReason_PARTICIPANT_REMOVED)},
		{"replaced by its own new connection", nil, lostAgent("EV_x", "PA_first", livekit.DisconnectReason_DUPLICATE_IDENTITY)},
		{"student gone", func(f *fixture) { f.rooms.setPeople(sessions.RoomName(sessionID), avatarIn()) },
			lostAgent("EV_x", "PA_first", livekit.DisconnectReason_SIGNAL_CLOSE)},
		{"room gone", func(f *fixture) { f.rooms.gone = true }, lostAgent("EV_x", "PA_first", livekit.DisconnectReason_SIGNAL_CLOSE)},
		{"agent back in", func(f *fixture) {
			f.rooms.setPeople(sessions.RoomName(sessionID), studentIn(), rooms.Participant{Identity: agentID, IsAgent: true})
		}, lostAgent("EV_x", "PA_first", livekit.DisconnectReason_SIGNAL_CLOSE)},
		{"session ended", func(f *fixture) {
			s := activeSession()
			s.Status, s.EndedAt, s.EndReason = sessions.StatusEnded, lostAt.Add(-time.Second), "ended by student"
			f.store.Put(s)
		}, lostAgent("EV_x", "PA_first", livekit.DisconnectReason_SIGNAL_CLOSE)},
		{"avatar left", nil, func() *livekit.WebhookEvent {
			p := agentP("bey-avatar-agent", agentJoined)
			p.DisconnectReason = livekit.DisconnectReason_SIGNAL_CLOSE
			return ev("EV_x", EventParticipantLeft, lostAt, p)
		}()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := lossFixture(t)
			if c.setup != nil {
				c.setup(f)
			}
			before := f.session(t)
			f.mustSend(t, c.event, http.StatusOK)
			if n := len(f.agent.launches()); n != 0 {
				t.Errorf("%d launches", n)
			}
			if after := f.session(t); after.Status != before.Status || after.Replaced() || after.AgentTaskID != before.AgentTaskID {
				t.Errorf("session changed: %+v", after)
			}
			if d, s := f.rooms.deletes(), f.agent.stops(); len(d) != 0 || len(s) != 0 {
				t.Errorf("cleanup on no loss: deleted %v stopped %v", d, s)
			}
		})
	}
}

// TestReplacementLostFailsTheSession: the replacement dies too: failed "agent lost", room deleted,
// the replacement's task stopped, no third agent.
func TestReplacementLostFailsTheSession(t *testing.T) {
	f := lossFixture(t)
	read := f.recordMetrics(t)
	f.mustSend(t, lostAgent("EV_lost", "PA_first", livekit.DisconnectReason_SIGNAL_CLOSE), http.StatusOK)
	f.mustSend(t, lostAgent("EV_lost_again", "PA_second", livekit.DisconnectReason_CONNECTION_TIMEOUT), http.StatusOK)

	if n := len(f.agent.launches()); n != 1 {
		t.Fatalf("%d launches, want 1", n)
	}
	s := f.session(t)
	if s.Status != sessions.StatusFailed || s.EndReason != EndReasonAgentLost || !s.EndedAt.Equal(lostAt) {
		t.Fatalf("after the second loss: %+v", s)
	}
	if d := f.rooms.deletes(); len(d) != 1 || d[0] != sessions.RoomName(sessionID) {
		t.Errorf("deleted %v", d)
	}
	stops := f.agent.stops()
	if len(stops) != 2 || !strings.HasPrefix(stops[1], "task-replacement-1|") || !strings.Contains(stops[1], EndReasonAgentLost) {
		t.Errorf("stops %v, want the lost one's and then the replacement's", stops)
	}
	if m := find(read(), "SessionsFailed", metrics.DimReason, string(metrics.ReasonAgentLost)); len(m) != 1 {
		t.Errorf("SessionsFailed agent_lost: %+v", m)
	}
}

// TestReplacementLaunchFailure: the launch fails: failed with the reason, room deleted, the lost
// agent's task stopped; nothing recorded as the session's task.
func TestReplacementLaunchFailure(t *testing.T) {
	f := lossFixture(t)
	read := f.recordMetrics(t)
	f.agent.launchErr = errors.New("RunTask: capacity")
	f.mustSend(t, lostAgent("EV_lost", "PA_first", livekit.DisconnectReason_SIGNAL_CLOSE), http.StatusOK)

	s := f.session(t)
	if s.Status != sessions.StatusFailed || s.EndReason != EndReasonReplacementFailed || s.AgentTaskID != taskID {
		t.Fatalf("after a failed launch: %+v", s)
	}
	if d := f.rooms.deletes(); len(d) != 1 {
		t.Errorf("deleted %v", d)
	}
	for _, st := range f.agent.stops() {
		if !strings.HasPrefix(st, taskID+"|") {
			t.Errorf("stopped %q", st)
		}
	}
	if len(f.agent.stops()) == 0 {
		t.Error("the lost agent's task was not stopped")
	}
	if m := find(read(), "SessionsFailed", metrics.DimReason, string(metrics.ReasonAgentReplacementFailed)); len(m) != 1 {
		t.Errorf("SessionsFailed agent_replacement_failed: %+v", m)
	}
}

// TestSessionClosedWhileReplacing: the student ends the session while the replacement starts: the
// replacement is stopped (the closer knew only the lost task) and the record keeps the closer's end.
func TestSessionClosedWhileReplacing(t *testing.T) {
	f := lossFixture(t)
	f.agent.onLaunch = func(context.Context) error {
		if _, err := f.store.End(t.Context(), sessionID, sessions.Ending{Status: sessions.StatusEnded, At: lostAt, Reason: "ended by student"}); err != nil {
			t.Error(err)
		}
		return nil
	}
	f.mustSend(t, lostAgent("EV_lost", "PA_first", livekit.DisconnectReason_SIGNAL_CLOSE), http.StatusOK)
	if s := f.session(t); s.Status != sessions.StatusEnded || s.EndReason != "ended by student" {
		t.Fatalf("session %+v", s)
	}
	stops := f.agent.stops()
	if len(stops) != 2 || !strings.HasPrefix(stops[1], "task-replacement-1|") {
		t.Errorf("stops %v, want the replacement stopped", stops)
	}
}

// TestAgentLossCheckFailureIsRetried: LiveKit's room API failing is a 5xx with the claim released, so
// LiveKit's retry starts the replacement.
func TestAgentLossCheckFailureIsRetried(t *testing.T) {
	f := lossFixture(t)
	f.rooms.listErr = errors.New("livekit unavailable")
	f.mustSend(t, lostAgent("EV_lost", "PA_first", livekit.DisconnectReason_SIGNAL_CLOSE), http.StatusInternalServerError)
	f.rooms.mu.Lock()
	f.rooms.listErr = nil
	f.rooms.mu.Unlock()
	f.mustSend(t, lostAgent("EV_lost", "PA_first", livekit.DisconnectReason_SIGNAL_CLOSE), http.StatusOK)
	if n := len(f.agent.launches()); n != 1 {
		t.Fatalf("%d launches after the retry, want 1", n)
	}
}

// TestReplacementLaunchUsesUpItsDeadline: a launch that hangs until the replacement's deadline still
// leaves the session failed and cleaned up (the cleanup has its own deadline), within the budget.
func TestReplacementLaunchUsesUpItsDeadline(t *testing.T) {
	if TimeBudget() != 24*time.Second {
		t.Fatalf("TimeBudget %s: the webhook Lambda's timeout must hold it (README)", TimeBudget())
	}
	f := lossFixture(t)
	f.agent.onLaunch = func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("launch without a deadline")
		}
		<-ctx.Done()
		return ctx.Err()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond+releaseReserve)
	defer cancel()
	if _, err := f.h.Handle(ctx, lostAgent("EV_lost", "PA_first", livekit.DisconnectReason_SIGNAL_CLOSE)); err != nil {
		t.Fatal(err)
	}
	if s := f.session(t); s.Status != sessions.StatusFailed || s.EndReason != EndReasonReplacementFailed {
		t.Fatalf("session %+v", s)
	}
	if d := f.rooms.deletes(); len(d) != 1 {
		t.Errorf("deleted %v", d)
	}
}

// TestStudentReturnsToARoomWithoutItsAgent: the agent died while the student was away (that loss
// started nothing: nobody was waiting); when the student comes back and no agent is in the room, the
// return starts the one replacement. A return to a room with its agent, a first join, a session that
// already had its replacement, and a duplicate of the return start nothing.
func TestStudentReturnsToARoomWithoutItsAgent(t *testing.T) {
	back := lostAt.Add(15 * time.Second)
	returned := func(id string) *livekit.WebhookEvent { return ev(id, EventParticipantJoined, back, studentP(back)) }

	f := lossFixture(t)
	f.rooms.setPeople(sessions.RoomName(sessionID), avatarIn()) // the student is away
	f.mustSend(t, lostAgent("EV_lost", "PA_first", livekit.DisconnectReason_SIGNAL_CLOSE), http.StatusOK)
	if n := len(f.agent.launches()); n != 0 {
		t.Fatalf("%d launches before anyone waits, want 0", n)
	}
	f.rooms.setPeople(sessions.RoomName(sessionID), studentIn(), avatarIn()) // back; still no agent
	f.mustSend(t, returned("EV_back"), http.StatusOK)
	got := f.agent.launches()
	if len(got) != 1 || !got[0].Replacement {
		t.Fatalf("launches %+v, want one replacement", got)
	}
	if s := f.session(t); !s.Replaced() || s.AgentTaskID != "task-replacement-1" || s.Status != sessions.StatusActive {
		t.Fatalf("session %+v", s)
	}
	f.mustSend(t, returned("EV_back_again"), http.StatusOK)
	if n := len(f.agent.launches()); n != 1 {
		t.Fatalf("%d launches after a second return, want 1", n)
	}

	for name, setup := range map[string]func(f *fixture){
		"agent in the room": func(f *fixture) {
			f.rooms.setPeople(sessions.RoomName(sessionID), studentIn(), rooms.Participant{Identity: agentID, IsAgent: true})
		},
		"first join": func(f *fixture) {
			s := activeSession()
			s.StudentJoinedAt = time.Time{}
			f.store.Put(s)
		},
		"no agent yet (cold start)": func(f *fixture) {
			s := activeSession()
			s.AgentJoinedAt = time.Time{}
			f.store.Put(s)
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := lossFixture(t)
			setup(f)
			f.mustSend(t, returned("EV_back"), http.StatusOK)
			if n := len(f.agent.launches()); n != 0 {
				t.Errorf("%d launches", n)
			}
		})
	}
}
