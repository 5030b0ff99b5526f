package sessions

import (
	"fmt"
	"slices"
	"time"
)

// Cost guards. They belong to a session's birth: Create checks them in the same conditional
// transaction that writes the session and the student's lock, and End releases them in the same
// write that makes the session terminal, so no path in between can leak or double-count them.

// Limits are the cost guards Create enforces. Zero means unlimited.
type Limits struct {
	// DailySessions is how many sessions a student may start in a rolling day (UsageWindow).
	DailySessions int
	// DailyMinutes is how many session minutes a student may use in a rolling day.
	DailyMinutes int
	// MaxOpenSessions caps the open sessions of all students together (a counter item, not a scan).
	// With 0 nothing is counted: sessions created meanwhile never hold a slot.
	MaxOpenSessions int
}

// Student reports whether a per-student limit is set (then Create keeps the student's usage item).
func (l Limits) Student() bool { return l.DailySessions > 0 || l.DailyMinutes > 0 }

const (
	// UsageWindow is the rolling day of the per-student limits.
	UsageWindow = 24 * time.Hour
	// MinSessionDuration: a student with fewer minutes left in the window is refused, not given a
	// session too short to talk in.
	MinSessionDuration = time.Minute
	// CapacityRetryAfter is the wait suggested when every slot is taken: a slot frees when any session
	// ends, which nothing predicts; a student retrying this often does not strain the API.
	CapacityRetryAfter = 30 * time.Second
)

// Admission is what Create needs besides the session: the lock's lifetime, the session's maximum
// duration before the student's daily minutes cut it, and the limits.
type Admission struct {
	LockTTL     time.Duration
	MaxDuration time.Duration
	Limits      Limits
}

// LimitKind names the per-student limit a refusal is about.
type LimitKind string

const (
	LimitDailySessions LimitKind = "daily_sessions"
	LimitDailyMinutes  LimitKind = "daily_minutes"
)

// StudentLimitError is Create's refusal of a student who used their day: RetryAfter is when the
// oldest counted sessions have left the window enough for a new one.
type StudentLimitError struct {
	Kind       LimitKind
	Limit      int
	RetryAfter time.Duration
}

func (e *StudentLimitError) Error() string {
	return fmt.Sprintf("student limit reached: %d %s per %s; retry after %s", e.Limit, e.Kind, UsageWindow, e.RetryAfter)
}

// CapacityError is Create's refusal when MaxOpenSessions sessions are open.
type CapacityError struct {
	Max        int
	RetryAfter time.Duration
}

func (e *CapacityError) Error() string {
	return fmt.Sprintf("capacity reached: %d open sessions", e.Max)
}

// Usage is a student's sessions of the rolling day, as the usage item holds them (by session id).
// Version changes with every write, so a create that decided on an older read loses its condition.
type Usage struct {
	Version  int64
	Sessions map[string]UsageEntry
}

// UsageEntry is one counted session. An open session counts its whole reserved maximum (it may run
// that long); once it ended, its duration (the session's duration_seconds) replaces the reservation.
type UsageEntry struct {
	CreatedAt       time.Time `dynamodbav:"created_at"`
	ReservedSeconds int64     `dynamodbav:"reserved_seconds"`
	Ended           bool      `dynamodbav:"ended,omitempty"`
	UsedSeconds     int64     `dynamodbav:"used_seconds,omitempty"`
}

// Seconds is what the entry counts against the daily minutes.
func (e UsageEntry) Seconds() int64 {
	if e.Ended {
		return e.UsedSeconds
	}
	return e.ReservedSeconds
}

// inWindow reports whether an entry created at created still counts at now.
func inWindow(created, now time.Time) bool { return now.Sub(created) < UsageWindow }

// Admit decides whether a student with usage u may start a session at now, and returns the session's
// maximum duration: maxDuration, cut to the minutes the student has left. A refusal is a
// *StudentLimitError whose RetryAfter is the later of the waits of the limits that refuse.
func (l Limits) Admit(u Usage, now time.Time, maxDuration time.Duration) (time.Duration, error) {
	var counted []UsageEntry
	for _, e := range u.Sessions {
		if inWindow(e.CreatedAt, now) {
			counted = append(counted, e)
		}
	}
	slices.SortFunc(counted, func(a, b UsageEntry) int { return a.CreatedAt.Compare(b.CreatedAt) })
	// leaves is how long until counted[i] no longer counts.
	leaves := func(i int) time.Duration { return counted[i].CreatedAt.Add(UsageWindow).Sub(now) }

	var refusal *StudentLimitError
	refuse := func(kind LimitKind, limit int, wait time.Duration) {
		if refusal == nil || wait > refusal.RetryAfter {
			refusal = &StudentLimitError{Kind: kind, Limit: limit, RetryAfter: wait}
		}
	}
	if l.DailySessions > 0 && len(counted) >= l.DailySessions {
		// A new session fits once all but DailySessions-1 of them have left.
		refuse(LimitDailySessions, l.DailySessions, leaves(len(counted)-l.DailySessions))
	}
	granted := maxDuration
	if l.DailyMinutes > 0 {
		budget := int64(l.DailyMinutes) * 60
		var used int64
		for _, e := range counted {
			used += e.Seconds()
		}
		minimum := int64(MinSessionDuration / time.Second)
		if left := budget - used; left >= minimum {
			granted = min(granted, time.Duration(left)*time.Second)
		} else {
			// The oldest sessions leave first; the one whose departure frees a minimum session sets the wait.
			for i, e := range counted {
				if used -= e.Seconds(); budget-used >= minimum {
					refuse(LimitDailyMinutes, l.DailyMinutes, leaves(i))
					break
				}
			}
		}
	}
	if refusal != nil {
		refusal.RetryAfter = roundUpToSecond(refusal.RetryAfter)
		return 0, refusal
	}
	return granted, nil
}

// roundUpToSecond makes a wait a whole number of seconds, at least one (Retry-After's unit).
func roundUpToSecond(d time.Duration) time.Duration {
	return max(time.Second, (d+time.Second-1)/time.Second*time.Second)
}

// withSession returns u with a new open entry for s, reserved for granted, and without the entries
// that no longer count and have ended (an open one stays until its End records the duration).
func (u Usage) withSession(s Session, granted time.Duration, now time.Time) Usage {
	next := Usage{Version: u.Version + 1, Sessions: map[string]UsageEntry{}}
	for id, e := range u.Sessions {
		if e.Ended && !inWindow(e.CreatedAt, now) {
			continue
		}
		next.Sessions[id] = e
	}
	s.MaxDurationSeconds = int64(granted / time.Second)
	next.Sessions[s.SessionID], _ = usageEntryOf(s)
	return next
}

// usageEntryOf is a counted session's usage entry as the session now is: its reserved maximum while
// open, its duration once ended; ok is false for a failed session (the setup failed, the agent never
// came), which is given back to the student.
func usageEntryOf(s Session) (e UsageEntry, ok bool) {
	if s.Status == StatusFailed {
		return UsageEntry{}, false
	}
	e = UsageEntry{CreatedAt: s.CreatedAt.UTC(), ReservedSeconds: s.MaxDurationSeconds}
	if s.Status.Terminal() {
		e.Ended, e.UsedSeconds = true, s.DurationSeconds
	}
	return e, true
}
