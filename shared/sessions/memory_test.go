package sessions

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

var t0 = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

func newSession(id, user string) Session {
	return Session{SessionID: id, UserID: user, RoomName: RoomName(id), Status: StatusStarting, CreatedAt: t0, Mode: ModeVideo}
}

func TestTransitionsAsData(t *testing.T) {
	all := []Status{StatusStarting, StatusActive, StatusEnded, StatusFailed}
	allowed := map[[2]Status]bool{
		{StatusStarting, StatusActive}: true, {StatusStarting, StatusEnded}: true, {StatusStarting, StatusFailed}: true,
		{StatusActive, StatusEnded}: true, {StatusActive, StatusFailed}: true,
	}
	for _, from := range all {
		for _, to := range all {
			if got := CanTransition(from, to); got != allowed[[2]Status{from, to}] {
				t.Errorf("%s → %s: %v", from, to, got)
			}
		}
	}
	for _, s := range all {
		if s.Terminal() == s.Open() {
			t.Errorf("%s is both or neither terminal and open", s)
		}
	}
}

func TestMemoryStoreLifecycle(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryStore()
	if _, err := m.Create(ctx, newSession("s1", "u1"), Admission{LockTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	var active *ActiveSessionError
	if _, err := m.Create(ctx, newSession("s2", "u1"), Admission{LockTTL: time.Hour}); !errors.As(err, &active) || active.SessionID != "s1" {
		t.Fatalf("second open session: %v", err)
	}
	if err := m.MarkStarted(ctx, "s1", Started{RoomSID: "RM_1", AgentTaskID: "task-1", AgentSource: "cold", At: t0.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := m.RecordRoomSID(ctx, "s1", "RM_2"); !errors.Is(err, ErrConflict) {
		t.Fatalf("room sid overwritten: %v", err)
	}
	if err := m.RecordStudentJoin(ctx, "s1", t0.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := m.RecordStudentJoin(ctx, "s1", t0.Add(20*time.Second)); err != nil {
		t.Fatal(err)
	}
	if s, _ := m.Get(ctx, "s1"); s.Status != StatusActive || !s.StudentJoinedAt.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("a later join replaced the first: %+v", s)
	}
	open, _ := m.ListOpen(ctx, t0.Add(time.Second), 10)
	if len(open) != 1 {
		t.Fatalf("open sessions: %v", open)
	}
	s, err := m.End(ctx, "s1", Ending{Status: StatusEnded, At: t0.Add(70 * time.Second), Reason: "room finished"})
	if err != nil || s.Status != StatusEnded || s.DurationSeconds != 60 {
		t.Fatalf("end: %+v %v", s, err)
	}
	if _, err := m.End(ctx, "s1", Ending{Status: StatusFailed, At: t0.Add(80 * time.Second), Reason: "x"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("terminal status changed: %v", err)
	}
	_ = m.RecordStudentJoin(ctx, "s1", t0.Add(80*time.Second))
	if s, _ := m.Get(ctx, "s1"); s.Status != StatusEnded {
		t.Fatalf("ended session reopened: %+v", s)
	}
	if open, _ := m.ListOpen(ctx, t0.Add(time.Hour), 10); len(open) != 0 {
		t.Fatalf("ended session still listed open")
	}
	// The lock is released: the student can start again.
	if _, err := m.Create(ctx, newSession("s3", "u1"), Admission{LockTTL: time.Hour}); err != nil {
		t.Fatalf("new session after end: %v", err)
	}
}

func TestRecordJoinsOrderIndependent(t *testing.T) {
	ctx := context.Background()
	joinA, joinB, end := t0.Add(10*time.Second), t0.Add(30*time.Second), t0.Add(100*time.Second)
	run := func(order []string) Session {
		m := NewMemoryStore()
		if _, err := m.Create(ctx, newSession("s", "u"), Admission{LockTTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
		for _, step := range order {
			var err error
			switch step {
			case "joinA":
				err = m.RecordStudentJoin(ctx, "s", joinA)
			case "joinB":
				err = m.RecordStudentJoin(ctx, "s", joinB)
			case "agent":
				err = m.RecordAgentJoin(ctx, "s", joinA)
			case "end":
				_, err = m.End(ctx, "s", Ending{Status: StatusEnded, At: end, Reason: "room finished"})
			}
			if err != nil && !errors.Is(err, ErrConflict) {
				t.Fatal(err)
			}
		}
		s, _ := m.Get(ctx, "s")
		return s
	}
	want := run([]string{"agent", "joinA", "joinB", "end"})
	if want.Status != StatusEnded || want.DurationSeconds != 90 || !want.StudentJoinedAt.Equal(joinA) || !want.AgentJoinedAt.Equal(joinA) {
		t.Fatalf("in order: %+v", want)
	}
	for _, order := range [][]string{
		{"end", "joinB", "joinA", "agent"}, {"joinB", "end", "agent", "joinA"}, {"joinB", "joinA", "end", "agent"},
	} {
		if got := run(order); got != want {
			t.Fatalf("order %v:\n%+v\nwant\n%+v", order, got, want)
		}
	}
	if err := NewMemoryStore().RecordStudentJoin(ctx, "missing", joinA); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing session: %v", err)
	}
}

func TestMemoryStoreEventClaims(t *testing.T) {
	ctx := context.Background()
	now := t0
	m := NewMemoryStore()
	m.Now = func() time.Time { return now }
	if err := m.ClaimEvent(ctx, "EV_1", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := m.ClaimEvent(ctx, "EV_1", time.Hour); !errors.Is(err, ErrDuplicateEvent) {
		t.Fatalf("second claim: %v", err)
	}
	if err := m.ReleaseEvent(ctx, "EV_1"); err != nil {
		t.Fatal(err)
	}
	if err := m.ClaimEvent(ctx, "EV_1", time.Hour); err != nil {
		t.Fatalf("claim after release: %v", err)
	}
	now = now.Add(2 * time.Hour)
	if err := m.ClaimEvent(ctx, "EV_1", time.Hour); err != nil {
		t.Fatalf("claim after expiry: %v", err)
	}
}

func TestStoredTimesSortAsStrings(t *testing.T) {
	a := time.Date(2026, 11, 26, 10, 0, 5, 100_000_000, time.UTC)
	b := a.Add(20 * time.Millisecond) // RFC3339Nano would give ".1Z" and ".12Z", which sort the wrong way
	ia, err := marshalSession(Session{SessionID: "a", CreatedAt: a})
	if err != nil {
		t.Fatal(err)
	}
	ib, _ := marshalSession(Session{SessionID: "b", CreatedAt: b})
	sa := ia["created_at"].(*types.AttributeValueMemberS).Value
	sb := ib["created_at"].(*types.AttributeValueMemberS).Value
	if !(sa < sb) {
		t.Fatalf("%q does not sort before %q", sa, sb)
	}
	var back Session
	if err := attributevalue.UnmarshalMap(ia, &back); err != nil || !back.CreatedAt.Equal(a) {
		t.Fatalf("round trip: %v %v", back.CreatedAt, err)
	}
	if _, ok := ia["started_at"]; ok {
		t.Fatal("zero times must be omitted")
	}
}

// TestMarkStartedAcceptsAnyOpenStatus: the student may join (active) before setup records its task;
// a closed session refuses it so the setup undoes itself.
func TestMarkStartedAcceptsAnyOpenStatus(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryStore()
	if _, err := m.Create(ctx, newSession("s1", "u1"), Admission{LockTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := m.RecordStudentJoin(ctx, "s1", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := m.MarkStarted(ctx, "s1", Started{RoomSID: "RM_1", AgentTaskID: "task-1", AgentSource: "cold", At: t0.Add(2 * time.Second)}); err != nil {
		t.Fatalf("MarkStarted on an active session: %v", err)
	}
	if s, _ := m.Get(ctx, "s1"); s.Status != StatusActive || s.AgentTaskID != "task-1" {
		t.Fatalf("after MarkStarted: %+v", s)
	}
	if _, err := m.End(ctx, "s1", Ending{Status: StatusEnded, At: t0.Add(time.Minute), Reason: "ended by student"}); err != nil {
		t.Fatal(err)
	}
	if err := m.MarkStarted(ctx, "s1", Started{RoomSID: "RM_1", AgentTaskID: "task-2", AgentSource: "cold", At: t0.Add(time.Minute)}); !errors.Is(err, ErrConflict) {
		t.Fatalf("MarkStarted on an ended session: %v, want ErrConflict", err)
	}
}

// TestAgentJoinRecordsTimeToAgent: the earliest agent join sets time_to_agent_ms (shown by GET
// session with agent_source); a later join changes neither, an earlier one corrects both.
func TestAgentJoinRecordsTimeToAgent(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryStore()
	if _, err := m.Create(ctx, newSession("s1", "u1"), Admission{LockTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := m.MarkStarted(ctx, "s1", Started{RoomSID: "RM_1", AgentTaskID: "pool:video-s1:AD_1", AgentSource: "pool", At: t0.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	created, _ := m.Get(ctx, "s1")
	for _, at := range []time.Duration{700 * time.Millisecond, 2 * time.Second, 300 * time.Millisecond} {
		if err := m.RecordAgentJoin(ctx, "s1", created.CreatedAt.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := m.Get(ctx, "s1")
	if s.TimeToAgentMS != 300 || s.AgentSource != "pool" {
		t.Fatalf("time to agent %d ms, source %q; want 300 and pool", s.TimeToAgentMS, s.AgentSource)
	}
	raw, _ := json.Marshal(s)
	if !strings.Contains(string(raw), `"agent_source":"pool"`) || !strings.Contains(string(raw), `"time_to_agent_ms":300`) {
		t.Fatalf("GET session JSON lacks the agent's source and time: %s", raw)
	}
}
