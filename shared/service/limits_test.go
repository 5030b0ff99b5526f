package service

import (
	"context"
	"errors"
	"testing"
	"time"

	"counselvideo/shared/sessions"
)

// TestCreateRoomCutsTheAgentsMaximum: the session's own maximum (the minutes the student has left
// today) is what the agent gets, what the record keeps (for the sweeper) and what the answer says.
func TestCreateRoomCutsTheAgentsMaximum(t *testing.T) {
	f := newFixture(t)
	f.svc.Limits = sessions.Limits{DailyMinutes: 30}
	ctx := context.Background()
	first, err := f.svc.CreateRoom(ctx, student, catID)
	if err != nil || first.MaxDurationSeconds != 1800 {
		t.Fatalf("first session %+v, %v; want the 30 minutes of the day", first, err)
	}
	// The student talked 20 minutes.
	if err := f.store.RecordStudentJoin(ctx, first.SessionID, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.End(ctx, first.SessionID, sessions.Ending{Status: sessions.StatusEnded, At: t0.Add(20 * time.Minute), Reason: "room finished"}); err != nil {
		t.Fatal(err)
	}
	second, err := f.svc.CreateRoom(ctx, student, catID)
	if err != nil {
		t.Fatal(err)
	}
	if second.MaxDurationSeconds != 600 || f.session(t, second.SessionID).MaxDurationSeconds != 600 {
		t.Errorf("answer %d s, record %d s; want the 10 minutes left", second.MaxDurationSeconds, f.session(t, second.SessionID).MaxDurationSeconds)
	}
	if got := f.agents.launched[len(f.agents.launched)-1]; got.SessionID != second.SessionID || got.MaxDuration != 10*time.Minute {
		t.Errorf("agent launched with %+v, want a 10 minute maximum", got)
	}
	// The resumed session says the same.
	again, err := f.svc.CreateRoom(ctx, student, catID)
	if err != nil || !again.Resumed || again.MaxDurationSeconds != 600 {
		t.Errorf("resumed %+v, %v", again, err)
	}
}

// TestCreateRoomFailedSetupGivesBackTheLimits: a setup that fails (the agent does not launch) gives
// back the slot and the student's session of the day: the student can start again at once.
func TestCreateRoomFailedSetupGivesBackTheLimits(t *testing.T) {
	f := newFixture(t)
	f.svc.Limits = sessions.Limits{DailySessions: 1, MaxOpenSessions: 1}
	ctx := context.Background()
	f.agents.launchErr = errBoom
	if _, err := f.svc.CreateRoom(ctx, student, catID); !errors.Is(err, errBoom) {
		t.Fatalf("CreateRoom = %v, want the launch failure", err)
	}
	if n, _ := f.store.OpenSessionCount(ctx); n != 0 {
		t.Errorf("open-session counter %d after a failed setup, want 0", n)
	}
	if u, _ := f.store.StudentUsage(ctx, student.ID); len(u.Sessions) != 0 {
		t.Errorf("usage after a failed setup %+v, want none counted", u.Sessions)
	}
	f.agents.launchErr = nil
	if _, err := f.svc.CreateRoom(ctx, student, catID); err != nil {
		t.Fatalf("after the failure: %v", err)
	}
}

// TestCreateRoomRefusalsPassThrough: the store's refusals reach the HTTP layer as they are, with
// nothing set up (no room left behind, no agent).
func TestCreateRoomRefusalsPassThrough(t *testing.T) {
	f := newFixture(t)
	f.svc.Limits = sessions.Limits{MaxOpenSessions: 1}
	ctx := context.Background()
	if _, err := f.svc.CreateRoom(ctx, student, catID); err != nil {
		t.Fatal(err)
	}
	other := student
	other.ID = "sub-2"
	_, err := f.svc.CreateRoom(ctx, other, catID)
	var capErr *sessions.CapacityError
	if !errors.As(err, &capErr) {
		t.Fatalf("CreateRoom = %v, want a *sessions.CapacityError", err)
	}
	if len(f.agents.launched) != 1 || len(f.rooms.live) != 1 {
		t.Errorf("launched %d agents, %d rooms live; want only the first session's", len(f.agents.launched), len(f.rooms.live))
	}
}
