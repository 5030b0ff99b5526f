package integration

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"counselvideo/shared/sessions"
	"counselvideo/shared/sweeper"
	"counselvideo/shared/webhook"
)

func closedIn(rep sweeper.Report, id string) (sweeper.Closed, bool) {
	for _, c := range rep.Closed {
		if c.SessionID == id {
			return c, true
		}
	}
	return sweeper.Closed{}, false
}

// TestSweeperClosesSessionWhoseRoomFinishedWasDropped: the student leaves and does not return,
// livekit-server closes the room after its departure timeout, and the room_finished webhook is lost;
// the sweeper finds the room gone and closes the session.
func TestSweeperClosesSessionWhoseRoomFinishedWasDropped(t *testing.T) {
	api := startAPI(t, nil)
	h, _ := newWebhookHandler(t)
	var roomName string
	installWebhooks(t, &recorder{next: h, drop: func(e *livekit.WebhookEvent) bool {
		return e.Event == webhook.EventRoomFinished && e.GetRoom().GetName() == roomName
	}})
	st := newStudent(t)
	r, room := createRoom(t, api, st.tokens.ID, enabledCategory(t).ID)
	if r.status != 200 {
		t.Fatalf("create-room: %d %s", r.status, r.body)
	}
	roomName = room.RoomName
	studentRoom := joinRoom(t, room.AccessToken)
	waitStatus(t, room.SessionID, sessions.StatusActive)
	time.Sleep(1500 * time.Millisecond) // a duration of at least one second (not a timing assertion)
	studentRoom.Disconnect()
	eventually(t, "room closed after the student left", func() bool { return listRoom(t, room.RoomName) == nil })
	s := getSession(t, room.SessionID)
	if s.Status != sessions.StatusActive {
		t.Fatalf("room_finished was dropped, yet the session is %s", s.Status)
	}

	sw := newSweeper(t)
	sw.MinAge = -1 // examine even this young session
	rep, err := sw.Run(context.Background())
	sweepOK(t, err, rep, room.SessionID)
	c, ok := closedIn(rep, room.SessionID)
	if !ok || c.Status != sessions.StatusEnded || c.Reason != sweeper.ReasonRoomGone {
		t.Fatalf("report %+v", rep)
	}
	got := getSession(t, room.SessionID)
	if got.Status != sessions.StatusEnded || got.EndReason != sweeper.ReasonRoomGone || got.DurationSeconds < 1 || got.EndedAt.IsZero() {
		t.Fatalf("swept session: %+v", got)
	}
	if reasons := stopsFor(s.AgentTaskID); len(reasons) != 1 || !strings.Contains(reasons[0], "room closed") {
		t.Fatalf("StopTask requests %v", reasons)
	}
	// Swept once: a second run leaves it alone.
	rep, _ = sw.Run(context.Background())
	if _, again := closedIn(rep, room.SessionID); again || len(stopsFor(s.AgentTaskID)) != 1 {
		t.Fatalf("second sweep touched the session again: %+v", rep)
	}
}

// TestSweeperEndsOverlongSession: a session past the maximum duration is ended, its room deleted
// (which disconnects the student) and its task stopped.
func TestSweeperEndsOverlongSession(t *testing.T) {
	api := startAPI(t, nil)
	h, _ := newWebhookHandler(t)
	installWebhooks(t, h)
	_, room, _ := startLiveSession(t, api)
	joinRoom(t, agentToken(t, room.SessionID))
	waitStatus(t, room.SessionID, sessions.StatusActive)
	eventually(t, "agent joined", func() bool { return !getSession(t, room.SessionID).AgentJoinedAt.IsZero() })
	task := getSession(t, room.SessionID).AgentTaskID

	sw := newSweeper(t)
	// The sweeper's clock is 61 minutes ahead instead of waiting an hour.
	sw.Now = func() time.Time { return time.Now().Add(61 * time.Minute) }
	rep, err := sw.Run(context.Background())
	sweepOK(t, err, rep, room.SessionID)
	want := sweeper.ReasonMaxDuration(time.Hour)
	if c, ok := closedIn(rep, room.SessionID); !ok || c.Status != sessions.StatusEnded || c.Reason != want {
		t.Fatalf("report lacks the session: %+v", c)
	}
	got := getSession(t, room.SessionID)
	if got.Status != sessions.StatusEnded || got.EndReason != want || got.DurationSeconds < 3600 {
		t.Fatalf("overlong session: %+v", got)
	}
	if listRoom(t, room.RoomName) != nil {
		t.Fatal("the room of an ended session still exists")
	}
	if reasons := stopsFor(task); len(reasons) == 0 || !strings.Contains(reasons[0], "maximum session duration") {
		t.Fatalf("StopTask requests %v", reasons)
	}
	// The room_finished our delete caused arrives later and does not change the sweeper's record.
	eventually(t, "room_finished handled", func() bool { return len(stopsFor(task)) == 2 })
	if again := getSession(t, room.SessionID); again.EndReason != want || !again.EndedAt.Equal(got.EndedAt) {
		t.Fatalf("room_finished after the sweep rewrote the session: %+v", again)
	}
}

// TestSweeperFailsSessionWhoseAgentNeverJoined: no agent within the limit → failed, task stopped; a
// session whose agent is in the room (its participant_joined webhook lost) is left alone.
func TestSweeperFailsSessionWhoseAgentNeverJoined(t *testing.T) {
	api := startAPI(t, nil)
	h, _ := newWebhookHandler(t)
	installWebhooks(t, &recorder{next: h, drop: func(e *livekit.WebhookEvent) bool {
		return e.Event == webhook.EventParticipantJoined && e.GetParticipant().GetKind() == livekit.ParticipantInfo_AGENT
	}})
	_, lonely, _ := startLiveSession(t, api)
	_, served, _ := startLiveSession(t, api)
	joinRoom(t, agentToken(t, served.SessionID))
	waitStatus(t, lonely.SessionID, sessions.StatusActive)
	waitStatus(t, served.SessionID, sessions.StatusActive)
	eventually(t, "agent in the room", func() bool {
		p, err := roomClient().ListParticipants(context.Background(), &livekit.ListParticipantsRequest{Room: served.RoomName})
		return err == nil && len(p.Participants) == 2
	})
	task := getSession(t, lonely.SessionID).AgentTaskID

	sw := newSweeper(t)
	sw.Now = func() time.Time { return time.Now().Add(4 * time.Minute) }
	rep, err := sw.Run(context.Background())
	sweepOK(t, err, rep, lonely.SessionID, served.SessionID)
	want := sweeper.ReasonAgentTimeout(3 * time.Minute)
	got := getSession(t, lonely.SessionID)
	if got.Status != sessions.StatusFailed || got.EndReason != want {
		t.Fatalf("session without agent: %+v", got)
	}
	if reasons := stopsFor(task); len(reasons) == 0 || !strings.Contains(reasons[0], "agent did not join") {
		t.Fatalf("StopTask requests %v", reasons)
	}
	if listRoom(t, lonely.RoomName) != nil {
		t.Fatal("room of the failed session still exists")
	}
	if s := getSession(t, served.SessionID); s.Status != sessions.StatusActive || len(stopsFor(s.AgentTaskID)) != 0 {
		t.Fatalf("session with its agent in the room was closed: %+v", s)
	}
}

// sweepOK fails on a failed run or a reported failure about this test's sessions; the shared table
// also holds other tests' sessions, whose failures are only logged.
func sweepOK(t *testing.T, err error, rep sweeper.Report, ids ...string) {
	t.Helper()
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	for _, f := range rep.Failures {
		if slices.Contains(ids, f.SessionID) {
			t.Fatalf("sweep failed for %s: %s", f.SessionID, f.Error)
		}
	}
	if rep.Errors > 0 {
		t.Logf("sweep errors on other sessions: %+v", rep.Failures)
	}
}
