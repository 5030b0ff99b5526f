package sessions

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

var day0 = time.Date(2030, 3, 4, 12, 0, 0, 0, time.UTC)

// usageOf builds a usage item from entries (their ids are their indexes).
func usageOf(entries ...UsageEntry) Usage {
	u := Usage{Version: 1, Sessions: map[string]UsageEntry{}}
	for i, e := range entries {
		u.Sessions[fmt.Sprint("s", i)] = e
	}
	return u
}

func endedAt(created time.Time, used time.Duration) UsageEntry {
	return UsageEntry{CreatedAt: created, ReservedSeconds: 3600, Ended: true, UsedSeconds: int64(used / time.Second)}
}

func openAt(created time.Time, reserved time.Duration) UsageEntry {
	return UsageEntry{CreatedAt: created, ReservedSeconds: int64(reserved / time.Second)}
}

func refusal(t *testing.T, err error) *StudentLimitError {
	t.Helper()
	var le *StudentLimitError
	if !errors.As(err, &le) {
		t.Fatalf("Admit = %v, want a *StudentLimitError", err)
	}
	return le
}

func TestAdmitDailySessionsRollingWindow(t *testing.T) {
	l := Limits{DailySessions: 3}
	now := day0
	u := usageOf(
		endedAt(now.Add(-30*time.Hour), time.Minute), // yesterday's: out of the window
		endedAt(now.Add(-20*time.Hour), time.Minute),
		endedAt(now.Add(-2*time.Hour), time.Minute),
	)
	if got, err := l.Admit(u, now, time.Hour); err != nil || got != time.Hour {
		t.Fatalf("two sessions in the window: Admit = %v, %v; want the full hour", got, err)
	}
	u.Sessions["s3"] = endedAt(now.Add(-time.Hour), time.Minute)
	le := refusal(t, second(l.Admit(u, now, time.Hour)))
	// The oldest counted session (20 h ago) leaves the window in 4 h; then 2 of 3 are counted.
	if le.Kind != LimitDailySessions || le.Limit != 3 || le.RetryAfter != 4*time.Hour {
		t.Fatalf("refusal %+v, want daily_sessions of 3, retry after 4h", le)
	}
	// Exactly at the window's edge a session no longer counts.
	if _, err := l.Admit(u, now.Add(4*time.Hour), time.Hour); err != nil {
		t.Fatalf("at the oldest one's 24 h: %v", err)
	}
	if _, err := l.Admit(u, now.Add(4*time.Hour-time.Nanosecond), time.Hour); err == nil {
		t.Fatal("a nanosecond before the oldest one leaves: admitted")
	}
}

func TestAdmitDailySessionsOverTheLimitWaitsForEnoughToLeave(t *testing.T) {
	// Lowered from 4 to 2 with 4 counted: three must leave, so the third oldest sets the wait.
	l := Limits{DailySessions: 2}
	now := day0
	u := usageOf(
		endedAt(now.Add(-23*time.Hour), 0),
		endedAt(now.Add(-22*time.Hour), 0),
		endedAt(now.Add(-21*time.Hour), 0),
		endedAt(now.Add(-1*time.Hour), 0),
	)
	if le := refusal(t, second(l.Admit(u, now, time.Hour))); le.RetryAfter != 3*time.Hour {
		t.Fatalf("retry after %s, want 3h (when the 21 h old one leaves)", le.RetryAfter)
	}
}

func TestAdmitDailyMinutesCutsTheSession(t *testing.T) {
	l := Limits{DailyMinutes: 60}
	now := day0
	u := usageOf(endedAt(now.Add(-3*time.Hour), 35*time.Minute), endedAt(now.Add(-time.Hour), 5*time.Minute+30*time.Second))
	got, err := l.Admit(u, now, time.Hour)
	if err != nil || got != 19*time.Minute+30*time.Second {
		t.Fatalf("Admit = %v, %v; want the 19m30s left", got, err)
	}
	// The configured maximum is shorter than what is left: it stays.
	if got, _ := l.Admit(u, now, 10*time.Minute); got != 10*time.Minute {
		t.Fatalf("Admit = %v, want the configured 10m", got)
	}
}

func TestAdmitDailyMinutesRefusesBelowAMinute(t *testing.T) {
	l := Limits{DailyMinutes: 60}
	now := day0
	u := usageOf(
		endedAt(now.Add(-10*time.Hour), 20*time.Minute),
		endedAt(now.Add(-5*time.Hour), 39*time.Minute+30*time.Second), // 30 s left: not a session
		endedAt(now.Add(-1*time.Hour), 0),
	)
	le := refusal(t, second(l.Admit(u, now, time.Hour)))
	// When the 10 h old one leaves (in 14 h), 20 min are free again.
	if le.Kind != LimitDailyMinutes || le.Limit != 60 || le.RetryAfter != 14*time.Hour {
		t.Fatalf("refusal %+v, want daily_minutes of 60, retry after 14h", le)
	}
	// Exactly a minute left is a (one-minute) session.
	u = usageOf(endedAt(now.Add(-time.Hour), 59*time.Minute))
	if got, err := l.Admit(u, now, time.Hour); err != nil || got != time.Minute {
		t.Fatalf("one minute left: %v, %v", got, err)
	}
}

func TestAdmitMinutesSkipsSessionsThatFreeTooLittle(t *testing.T) {
	// The oldest session used 10 s: its leaving frees too little, the next one (30 min) is the wait.
	l := Limits{DailyMinutes: 45}
	now := day0
	u := usageOf(endedAt(now.Add(-23*time.Hour), 10*time.Second), endedAt(now.Add(-20*time.Hour), 30*time.Minute),
		endedAt(now.Add(-time.Hour), 14*time.Minute+30*time.Second))
	if le := refusal(t, second(l.Admit(u, now, time.Hour))); le.RetryAfter != 4*time.Hour {
		t.Fatalf("retry after %s, want 4h", le.RetryAfter)
	}
}

func TestAdmitOpenSessionCountsItsReservation(t *testing.T) {
	// An open session may still run its whole reserved maximum: it counts that, not the time so far.
	l := Limits{DailyMinutes: 60}
	now := day0
	u := usageOf(openAt(now.Add(-2*time.Minute), 45*time.Minute))
	if got, err := l.Admit(u, now, time.Hour); err != nil || got != 15*time.Minute {
		t.Fatalf("Admit = %v, %v; want the 15 min the open session does not reserve", got, err)
	}
}

func TestAdmitBothLimitsTakesTheLaterWait(t *testing.T) {
	l := Limits{DailySessions: 2, DailyMinutes: 30}
	now := day0
	u := usageOf(endedAt(now.Add(-22*time.Hour), 5*time.Minute), endedAt(now.Add(-3*time.Hour), 25*time.Minute))
	// Sessions: free when the 22 h old one leaves (2 h); minutes: 0 left until then too, but after it
	// only 5 min are free: enough. Both say 2 h.
	if le := refusal(t, second(l.Admit(u, now, time.Hour))); le.RetryAfter != 2*time.Hour {
		t.Fatalf("retry after %s, want 2h", le.RetryAfter)
	}
	// Now the big one is the older: the session limit frees in 2 h, the minutes only in 21 h.
	u = usageOf(endedAt(now.Add(-22*time.Hour), 0), endedAt(now.Add(-3*time.Hour), 30*time.Minute))
	le := refusal(t, second(l.Admit(u, now, time.Hour)))
	if le.Kind != LimitDailyMinutes || le.RetryAfter != 21*time.Hour {
		t.Fatalf("refusal %+v, want daily_minutes after 21h", le)
	}
}

func TestAdmitUnlimitedAndRetryAfterRounding(t *testing.T) {
	if got, err := (Limits{}).Admit(usageOf(endedAt(day0, time.Hour)), day0, time.Hour); err != nil || got != time.Hour {
		t.Fatalf("no limits: %v, %v", got, err)
	}
	l := Limits{DailySessions: 1}
	u := usageOf(endedAt(day0.Add(-UsageWindow+1500*time.Millisecond), 0))
	if le := refusal(t, second(l.Admit(u, day0, time.Hour))); le.RetryAfter != 2*time.Second {
		t.Fatalf("retry after %s, want 1.5 s rounded up to 2s", le.RetryAfter)
	}
}

func TestWithSessionPrunesEndedEntriesOutsideTheWindow(t *testing.T) {
	now := day0
	old, stillOpen := endedAt(now.Add(-25*time.Hour), time.Minute), openAt(now.Add(-25*time.Hour), time.Hour)
	u := Usage{Version: 7, Sessions: map[string]UsageEntry{"old": old, "open": stillOpen, "recent": endedAt(now.Add(-time.Hour), time.Minute)}}
	next := u.withSession(Session{SessionID: "new", CreatedAt: now}, 20*time.Minute, now)
	if next.Version != 8 {
		t.Errorf("version %d, want 8", next.Version)
	}
	if _, ok := next.Sessions["old"]; ok {
		t.Error("an ended entry outside the window was kept")
	}
	if _, ok := next.Sessions["open"]; !ok {
		t.Error("an open entry was pruned: its End could not record its duration")
	}
	if e := next.Sessions["new"]; e.ReservedSeconds != 1200 || e.Ended || !e.CreatedAt.Equal(now) {
		t.Errorf("new entry %+v", e)
	}
	if len(u.Sessions) != 3 {
		t.Error("withSession changed the usage it was given")
	}
}

// TestMemoryStoreLimits: the memory store admits, cuts and releases like the DynamoDB store (the
// conformance test on DynamoDB Local runs the same script against both).
func TestMemoryStoreLimits(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryStore()
	m.Now = func() time.Time { return day0 }
	a := Admission{LockTTL: time.Hour, MaxDuration: time.Hour, Limits: Limits{DailySessions: 2, DailyMinutes: 30, MaxOpenSessions: 1}}
	mk := func(id, user string) Session {
		return Session{SessionID: id, UserID: user, Status: StatusStarting, CreatedAt: day0}
	}
	s1, err := m.Create(ctx, mk("s1", "u1"), a)
	if err != nil || s1.MaxDurationSeconds != 1800 || !s1.CountedOpen || !s1.CountedUsage {
		t.Fatalf("first session %+v, %v; want 30 min, counted", s1, err)
	}
	var capErr *CapacityError
	if _, err := m.Create(ctx, mk("s2", "u2"), a); !errors.As(err, &capErr) || capErr.RetryAfter != CapacityRetryAfter {
		t.Fatalf("second student while full: %v", err)
	}
	var active *ActiveSessionError
	if _, err := m.Create(ctx, mk("s1b", "u1"), a); !errors.As(err, &active) || active.SessionID != "s1" {
		t.Fatalf("the student's own open session while full: %v, want it resumed", err)
	}
	_ = m.RecordStudentJoin(ctx, "s1", day0)
	if _, err := m.End(ctx, "s1", Ending{Status: StatusEnded, At: day0.Add(10 * time.Minute), Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	if n, _ := m.OpenSessionCount(ctx); n != 0 {
		t.Fatalf("counter %d after the end", n)
	}
	u, _ := m.StudentUsage(ctx, "u1")
	if e := u.Sessions["s1"]; !e.Ended || e.UsedSeconds != 600 {
		t.Fatalf("usage entry %+v, want 600 s used", e)
	}
	// A late, earlier join corrects the duration, and the usage with it.
	_ = m.RecordStudentJoin(ctx, "s1", day0.Add(-time.Minute))
	if u, _ := m.StudentUsage(ctx, "u1"); u.Sessions["s1"].UsedSeconds != 660 {
		t.Fatalf("usage after a late join: %+v", u.Sessions["s1"])
	}
	s3, err := m.Create(ctx, mk("s3", "u1"), a)
	if err != nil || s3.MaxDurationSeconds != 19*60 {
		t.Fatalf("second session %+v, %v; want the 19 min left", s3, err)
	}
	// A failed session is given back: count and minutes.
	if _, err := m.End(ctx, "s3", Ending{Status: StatusFailed, At: day0, Reason: "setup failed"}); err != nil {
		t.Fatal(err)
	}
	if u, _ := m.StudentUsage(ctx, "u1"); len(u.Sessions) != 1 {
		t.Fatalf("usage after a failure: %+v", u.Sessions)
	}
	if _, err := m.Create(ctx, mk("s4", "u1"), a); err != nil {
		t.Fatalf("after the failure was given back: %v", err)
	}
	if _, err := m.End(ctx, "s4", Ending{Status: StatusEnded, At: day0, Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.End(ctx, "s4", Ending{Status: StatusEnded, At: day0, Reason: "again"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("second end: %v", err)
	}
	if n, _ := m.OpenSessionCount(ctx); n != 0 {
		t.Fatalf("counter %d after a repeated end, want 0", n)
	}
	if _, err := m.Create(ctx, mk("s5", "u1"), a); refusal(t, err).Kind != LimitDailySessions {
		t.Fatalf("third session of the day: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }
