package integration

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"counselvideo/shared/sessions"
)

// TestStoreConformance runs one script against the DynamoDB store (on DynamoDB Local) and the memory
// store the unit tests use, so the fake cannot drift from the real thing.
func TestStoreConformance(t *testing.T) {
	stores := map[string]sessions.Store{"dynamodb": sessionStore(), "memory": sessions.NewMemoryStore()}
	for name, st := range stores {
		t.Run(name, func(t *testing.T) { storeScript(t, st) })
	}
}

func storeScript(t *testing.T, st sessions.Store) {
	ctx := context.Background()
	user := fmt.Sprintf("conf-user-%d", time.Now().UnixNano())
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	mk := func(id string, created time.Time) sessions.Session {
		return sessions.Session{SessionID: id, UserID: user, CategoryID: "c", CategoryName: "C", Mode: "video",
			RoomName: sessions.RoomName(id), Status: sessions.StatusStarting, CreatedAt: created}
	}
	id1 := fmt.Sprintf("%s-1", user)
	if _, err := st.Create(ctx, mk(id1, t0), sessions.Admission{LockTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	var active *sessions.ActiveSessionError
	if _, err := st.Create(ctx, mk(user+"-x", t0), sessions.Admission{LockTTL: time.Hour}); !errors.As(err, &active) || active.SessionID != id1 {
		t.Fatalf("second open session: %v", err)
	}
	if err := st.RecordRoomSID(ctx, id1, "RM_a"); err != nil {
		t.Fatalf("first room sid: %v", err)
	}
	if err := st.RecordRoomSID(ctx, id1, "RM_b"); !errors.Is(err, sessions.ErrConflict) {
		t.Fatalf("room sid overwritten: %v", err)
	}
	if err := st.MarkStarted(ctx, id1, sessions.Started{RoomSID: "RM_other", AgentTaskID: "task-1", AgentSource: "pool", At: t0.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	s, _ := st.Get(ctx, id1)
	if s.RoomSID != "RM_a" || s.AgentTaskID != "task-1" || s.AgentSource != "pool" || !s.StartedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("after MarkStarted: %+v", s)
	}
	if err := st.RecordAgentJoin(ctx, id1, t0.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordStudentJoin(ctx, id1, t0.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordStudentJoin(ctx, id1, t0.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	s, _ = st.Get(ctx, id1)
	if s.Status != sessions.StatusActive || !s.StudentJoinedAt.Equal(t0.Add(10*time.Second)) || !s.AgentJoinedAt.Equal(t0.Add(3*time.Second)) ||
		s.TimeToAgentMS != 3000 {
		t.Fatalf("after joins: %+v", s)
	}
	open, err := st.ListOpen(ctx, t0.Add(time.Millisecond), 1000)
	if err != nil || !containsSession(open, id1) {
		t.Fatalf("open list lacks the session: %v", err)
	}
	ended, err := st.End(ctx, id1, sessions.Ending{Status: sessions.StatusEnded, At: t0.Add(70 * time.Second), Reason: "room finished"})
	if err != nil || ended.Status != sessions.StatusEnded || ended.DurationSeconds != 60 || ended.EndReason != "room finished" || !ended.EndedAt.Equal(t0.Add(70*time.Second)) {
		t.Fatalf("end: %+v %v", ended, err)
	}
	if _, err := st.End(ctx, id1, sessions.Ending{Status: sessions.StatusFailed, At: t0.Add(80 * time.Second), Reason: "x"}); !errors.Is(err, sessions.ErrConflict) {
		t.Fatalf("terminal status changed: %v", err)
	}
	// A late, earlier join corrects the facts but never reopens.
	_ = st.RecordStudentJoin(ctx, id1, t0.Add(5*time.Second))
	s, _ = st.Get(ctx, id1)
	if s.Status != sessions.StatusEnded || s.DurationSeconds != 65 {
		t.Fatalf("late join: %+v", s)
	}
	open, _ = st.ListOpen(ctx, t0.Add(time.Hour), 1000)
	if containsSession(open, id1) {
		t.Fatal("ended session still listed open")
	}
	// The lock was released: a new session starts, and the list is newest first.
	id2 := fmt.Sprintf("%s-2", user)
	if _, err := st.Create(ctx, mk(id2, t0.Add(100*time.Millisecond+20*time.Microsecond)), sessions.Admission{LockTTL: time.Hour}); err != nil {
		t.Fatalf("new session after end: %v", err)
	}
	list, err := st.ListByUser(ctx, user, 10)
	if err != nil || len(list) != 2 || list[0].SessionID != id2 || list[1].SessionID != id1 {
		t.Fatalf("ListByUser: %+v %v", list, err)
	}
	// Event claims are once-only until released.
	ev := user + "-ev"
	if err := st.ClaimEvent(ctx, ev, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := st.ClaimEvent(ctx, ev, time.Hour); !errors.Is(err, sessions.ErrDuplicateEvent) {
		t.Fatalf("duplicate claim: %v", err)
	}
	if err := st.ReleaseEvent(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if err := st.ClaimEvent(ctx, ev, time.Hour); err != nil {
		t.Fatalf("claim after release: %v", err)
	}
	if _, err := st.Get(ctx, "missing-"+user); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("missing session: %v", err)
	}
	// Setup finishes whatever the webhook did meanwhile: MarkStarted on an active session records the
	// task; on a closed one it is a conflict (the caller then undoes its setup).
	if _, err := st.End(ctx, id2, sessions.Ending{Status: sessions.StatusEnded, At: t0.Add(time.Minute), Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	id3 := fmt.Sprintf("%s-3", user)
	if _, err := st.Create(ctx, mk(id3, t0.Add(time.Second)), sessions.Admission{LockTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordStudentJoin(ctx, id3, t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkStarted(ctx, id3, sessions.Started{RoomSID: "RM_3", AgentTaskID: "task-3", AgentSource: "cold", At: t0.Add(3 * time.Second)}); err != nil {
		t.Fatalf("MarkStarted on an active session: %v", err)
	}
	if s, _ := st.Get(ctx, id3); s.Status != sessions.StatusActive || s.AgentTaskID != "task-3" || s.RoomSID != "RM_3" {
		t.Fatalf("after MarkStarted on an active session: %+v", s)
	}
	if _, err := st.End(ctx, id3, sessions.Ending{Status: sessions.StatusEnded, At: t0.Add(time.Minute), Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkStarted(ctx, id3, sessions.Started{RoomSID: "RM_3", AgentTaskID: "task-3b", AgentSource: "cold", At: t0.Add(time.Minute)}); !errors.Is(err, sessions.ErrConflict) {
		t.Fatalf("MarkStarted on an ended session: %v, want ErrConflict", err)
	}
}

func containsSession(list []sessions.Session, id string) bool {
	for _, s := range list {
		if s.SessionID == id {
			return true
		}
	}
	return false
}
