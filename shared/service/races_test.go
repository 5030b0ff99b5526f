package service

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"counselvideo/shared/sessions"
)

// Event orders around one session: a second create-room (double click, client retry), the student
// joining through its answer, the student ending it, the room disappearing before a resume.

// TestSetupFinishesWhatTheWebhookDid: while the first create-room launches the agent, a second one
// resumes the session, the student joins with its token and the webhook marks the session active.
// The first request then finishes its setup instead of tearing the live session down.
func TestSetupFinishesWhatTheWebhookDid(t *testing.T) {
	f := newFixture(t)
	var resumed Created
	f.agents.onLaunch = func() {
		var err error
		if resumed, err = f.svc.CreateRoom(context.Background(), student, catID); err != nil || !resumed.Resumed {
			t.Errorf("second create-room: %+v %v", resumed, err)
		}
		if err := f.store.RecordStudentJoin(context.Background(), resumed.SessionID, t0.Add(time.Second)); err != nil {
			t.Error(err)
		}
	}
	first, err := f.svc.CreateRoom(context.Background(), student, catID)
	if err != nil || first.SessionID != sessionID || resumed.SessionID != sessionID {
		t.Fatalf("first create-room: %+v %v (resumed %+v)", first, err, resumed)
	}
	s := f.session(t, sessionID)
	if s.Status != sessions.StatusActive || s.AgentTaskID != "task-"+sessionID || s.StartedAt.IsZero() {
		t.Fatalf("session %+v, want active with its task recorded", s)
	}
	if slices.Contains(f.rooms.deleted, s.RoomName) || len(f.agents.stopped) != 0 {
		t.Fatalf("live session torn down: deleted %v stopped %v", f.rooms.deleted, f.agents.stopped)
	}
}

// TestEndDuringSetupUndoesRoomAndAgent: the student ends the session (with the id a second
// create-room returned) while the first request is still setting it up, at each step of the setup.
// The setup must not leave a room or an agent behind, and the session stays ended, not failed.
func TestEndDuringSetupUndoesRoomAndAgent(t *testing.T) {
	for _, step := range []string{"before the room exists", "before the agent launches"} {
		t.Run(step, func(t *testing.T) {
			f := newFixture(t)
			endIt := func() {
				waitFor(t, func() bool { _, err := f.store.Get(context.Background(), sessionID); return err == nil })
				second, err := f.svc.CreateRoom(context.Background(), student, catID)
				if err != nil || !second.Resumed || second.SessionID != sessionID {
					t.Errorf("second create-room: %+v %v", second, err)
				}
				if _, err := f.svc.EndSession(context.Background(), student, second.SessionID); err != nil {
					t.Errorf("end: %v", err)
				}
			}
			if step == "before the room exists" {
				f.rooms.onCreate = once(endIt)
			} else {
				f.agents.onLaunch = once(endIt)
			}
			_, err := f.svc.CreateRoom(context.Background(), student, catID)
			if !errors.Is(err, ErrSessionClosed) {
				t.Fatalf("first create-room: %v, want ErrSessionClosed", err)
			}
			s := f.session(t, sessionID)
			if s.Status != sessions.StatusEnded || s.EndReason != ReasonEndedByStudent {
				t.Fatalf("session %s %q, want ended by the student", s.Status, s.EndReason)
			}
			if f.rooms.live[s.RoomName] {
				t.Fatal("the ended session's room is still there")
			}
			if !slices.Equal(f.agents.stopped, []string{"task-" + sessionID}) {
				t.Fatalf("stopped %v, want the task the setup launched", f.agents.stopped)
			}
			// The student is free to start again.
			if c, err := f.svc.CreateRoom(context.Background(), student, catID); err != nil || c.Resumed {
				t.Fatalf("next create-room: %+v %v", c, err)
			}
		})
	}
}

// TestEndedSessionIsNeverResumed: right after the end (before any webhook), create-room starts a new
// session instead of handing out a token for the deleted room.
func TestEndedSessionIsNeverResumed(t *testing.T) {
	f := newFixture(t)
	first, err := f.svc.CreateRoom(context.Background(), student, catID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.EndSession(context.Background(), student, first.SessionID); err != nil {
		t.Fatal(err)
	}
	next, err := f.svc.CreateRoom(context.Background(), student, catID)
	if err != nil || next.Resumed || next.SessionID == first.SessionID {
		t.Fatalf("create-room after end: %+v %v", next, err)
	}
}

// TestResumeClosesSessionWhoseRoomIsGone: the student left, the webhook deleted the room, and its
// room_finished has not arrived (or was lost): the session is still open. Create-room closes it,
// stops its agent and starts a new session.
func TestResumeClosesSessionWhoseRoomIsGone(t *testing.T) {
	f := newFixture(t)
	first, err := f.svc.CreateRoom(context.Background(), student, catID)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.RecordStudentJoin(context.Background(), first.SessionID, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := f.rooms.DeleteRoom(context.Background(), first.RoomName); err != nil { // the webhook's delete
		t.Fatal(err)
	}
	next, err := f.svc.CreateRoom(context.Background(), student, catID)
	if err != nil || next.Resumed || next.SessionID == first.SessionID || !f.rooms.live[next.RoomName] {
		t.Fatalf("create-room after the room went: %+v %v", next, err)
	}
	old := f.session(t, first.SessionID)
	if old.Status != sessions.StatusEnded || old.EndReason != ReasonRoomGone {
		t.Fatalf("old session %s %q", old.Status, old.EndReason)
	}
	if !slices.Contains(f.agents.stopped, "task-"+first.SessionID) {
		t.Fatalf("old agent not stopped: %v", f.agents.stopped)
	}
	// A live room is resumed as before.
	again, err := f.svc.CreateRoom(context.Background(), student, catID)
	if err != nil || !again.Resumed || again.SessionID != next.SessionID {
		t.Fatalf("resume of the live session: %+v %v", again, err)
	}
}

// TestRecordAndRoomOverlap: the session record and the room are created at the same time (one round
// trip on the warm path, not two): Create waits for CreateRoom to have started.
func TestRecordAndRoomOverlap(t *testing.T) {
	f := newFixture(t)
	f.rooms.createStarted = make(chan struct{})
	f.store.onCreate = func() {
		select {
		case <-f.rooms.createStarted:
		case <-time.After(30 * time.Second): // hang guard: sequential calls never get here in time
			t.Error("CreateRoom did not start while the record was being written")
		}
	}
	if _, err := f.svc.CreateRoom(context.Background(), student, catID); err != nil {
		t.Fatal(err)
	}
}

// TestEveryCallHasADeadline: each outbound call of create-room, resume, end, failure cleanup runs
// under a deadline.
func TestEveryCallHasADeadline(t *testing.T) {
	f := newFixture(t)
	first, err := f.svc.CreateRoom(context.Background(), student, catID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateRoom(context.Background(), student, catID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Session(context.Background(), student, first.SessionID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.EndSession(context.Background(), student, first.SessionID); err != nil {
		t.Fatal(err)
	}
	f.store.failStarted = errBoom
	if _, err := f.svc.CreateRoom(context.Background(), student, catID); err == nil {
		t.Fatal("no error")
	}
	if len(f.rooms.noDeadline)+len(f.agents.noDeadline)+len(f.store.noDeadline) != 0 {
		t.Fatalf("calls without a deadline: rooms %v agents %v store %v", f.rooms.noDeadline, f.agents.noDeadline, f.store.noDeadline)
	}
}

// waitFor polls cond; the deadline only guards against a hang.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
	}
}

// once wraps f so that only its first call runs it.
func once(f func()) func() {
	done := false
	return func() {
		if !done {
			done = true
			f()
		}
	}
}
