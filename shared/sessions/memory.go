package sessions

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// MemoryStore is an in-process Store with the DynamoStore's semantics (conditional transitions, the
// active-session lock, event claims with a TTL). It serves unit tests and benchmarks.
type MemoryStore struct {
	mu       sync.Mutex
	sessions map[string]Session
	locks    map[string]memLock // by user id
	events   map[string]time.Time
	usage    map[string]Usage // by user id
	open     int64            // the open-session counter
	// sweepCursor is where the next sweep starts (see sweep.go).
	sweepCursor SweepCursor
	// Now is the store's clock for lock and claim expiry (time.Now when nil).
	Now func() time.Time
}

type memLock struct {
	sessionID string
	expires   time.Time
}

func NewMemoryStore() *MemoryStore {
	return &MemoryStore{sessions: map[string]Session{}, locks: map[string]memLock{}, events: map[string]time.Time{}, usage: map[string]Usage{}}
}

var _ Store = (*MemoryStore)(nil)

func (m *MemoryStore) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *MemoryStore) Create(_ context.Context, s Session, a Admission) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if l, ok := m.locks[s.UserID]; ok && !l.expires.Before(now) {
		if held, ok := m.sessions[l.sessionID]; !ok || held.Status.Open() {
			return Session{}, &ActiveSessionError{SessionID: l.sessionID}
		}
		// stale lock: its session ended but the release was lost
	}
	if _, exists := m.sessions[s.SessionID]; exists {
		return Session{}, fmt.Errorf("create session: %s already exists", s.SessionID)
	}
	s.MaxDurationSeconds = int64(a.MaxDuration / time.Second)
	usage := m.usage[s.UserID]
	if a.Limits.Student() {
		granted, err := a.Limits.Admit(usage, s.CreatedAt, a.MaxDuration)
		if err != nil {
			return Session{}, err
		}
		usage = usage.withSession(s, granted, s.CreatedAt)
		s.MaxDurationSeconds, s.CountedUsage = int64(granted/time.Second), true
	}
	if max := a.Limits.MaxOpenSessions; max > 0 {
		if m.open >= int64(max) {
			return Session{}, &CapacityError{Max: max, RetryAfter: CapacityRetryAfter}
		}
		m.open++
		s.CountedOpen = true
	}
	if s.CountedUsage {
		m.usage[s.UserID] = usage
	}
	m.sessions[s.SessionID] = s
	m.locks[s.UserID] = memLock{sessionID: s.SessionID, expires: now.Add(a.LockTTL)}
	return s, nil
}

// recordUsage writes a counted session's usage entry as the session now is (see usageRecord).
func (m *MemoryStore) recordUsage(s Session) {
	u, ok := m.usage[s.UserID]
	if _, counted := u.Sessions[s.SessionID]; !ok || !counted {
		return
	}
	next := Usage{Version: u.Version + 1, Sessions: maps.Clone(u.Sessions)}
	if e, keep := usageEntryOf(s); keep {
		next.Sessions[s.SessionID] = e
	} else {
		delete(next.Sessions, s.SessionID)
	}
	m.usage[s.UserID] = next
}

// StudentUsage: see DynamoStore.StudentUsage.
func (m *MemoryStore) StudentUsage(_ context.Context, userID string) (Usage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.usage[userID]
	return Usage{Version: u.Version, Sessions: maps.Clone(u.Sessions)}, nil
}

// OpenSessionCount: see DynamoStore.OpenSessionCount.
func (m *MemoryStore) OpenSessionCount(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.open, nil
}

func (m *MemoryStore) Get(_ context.Context, id string) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return Session{}, ErrNotFound
	}
	return s, nil
}

func (m *MemoryStore) ListByUser(_ context.Context, userID string, limit int32) ([]Session, error) {
	return m.list(func(s Session) bool { return s.UserID == userID }, func(a, b Session) int { return b.CreatedAt.Compare(a.CreatedAt) }, limit), nil
}

func (m *MemoryStore) ListOpen(ctx context.Context, createdBefore time.Time, limit int32) ([]Session, error) {
	list, _, err := m.ListOpenPage(ctx, createdBefore, SweepCursor{}, limit)
	return list, err
}

func (m *MemoryStore) list(keep func(Session) bool, order func(a, b Session) int, limit int32) []Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Session
	for _, s := range m.sessions {
		if keep(s) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, order)
	if limit > 0 && len(out) > int(limit) {
		out = out[:limit]
	}
	return out
}

// apply runs a conditional change on one session under the lock.
func (m *MemoryStore) apply(id string, change func(*Session) error) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return Session{}, ErrConflict // as a conditional update on a missing item
	}
	if err := change(&s); err != nil {
		return m.sessions[id], err
	}
	m.sessions[id] = s
	return s, nil
}

func (m *MemoryStore) MarkStarted(_ context.Context, id string, st Started) error {
	_, err := m.apply(id, func(s *Session) error {
		if !s.Status.Open() {
			return ErrConflict
		}
		s.StartedAt, s.AgentTaskID, s.AgentSource = st.At.UTC(), st.AgentTaskID, st.AgentSource
		if s.RoomSID == "" {
			s.RoomSID = st.RoomSID
		}
		return nil
	})
	return err
}

func (m *MemoryStore) RecordRoomSID(_ context.Context, id, roomSID string) error {
	_, err := m.apply(id, func(s *Session) error {
		if s.RoomSID != "" {
			return ErrConflict
		}
		s.RoomSID = roomSID
		return nil
	})
	return err
}

// RecordStudentJoin: see DynamoStore.RecordStudentJoin.
func (m *MemoryStore) RecordStudentJoin(_ context.Context, id string, at time.Time) error {
	_, err := m.apply(id, func(s *Session) error {
		if next, ok := planStudentJoin(*s, at.UTC()); ok {
			*s = next
			if s.Status.Terminal() && s.CountedUsage {
				m.recordUsage(*s)
			}
		}
		return nil
	})
	if err == ErrConflict {
		return ErrNotFound
	}
	return err
}

// RecordAgentJoin: see DynamoStore.RecordAgentJoin.
func (m *MemoryStore) RecordAgentJoin(_ context.Context, id string, at time.Time) error {
	_, err := m.apply(id, func(s *Session) error {
		if next, ok := planAgentJoin(*s, at.UTC()); ok {
			*s = next
		}
		return nil
	})
	if err == ErrConflict {
		return ErrNotFound
	}
	return err
}

func (m *MemoryStore) End(_ context.Context, id string, e Ending) (Session, error) {
	if !e.Status.Terminal() {
		return Session{}, fmt.Errorf("end: %q is not a terminal status", e.Status)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return Session{}, ErrNotFound
	}
	if !CanTransition(s.Status, e.Status) {
		return s, ErrConflict
	}
	next := ended(s, e)
	if s.CountedOpen && m.open > 0 {
		m.open--
	}
	if s.CountedUsage {
		m.recordUsage(next)
	}
	s = next
	m.sessions[id] = s
	if l, ok := m.locks[s.UserID]; ok && l.sessionID == id {
		delete(m.locks, s.UserID)
	}
	return s, nil
}

func (m *MemoryStore) ClaimEvent(_ context.Context, eventID string, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	// Like DynamoDB TTL, an expired claim may linger; unlike it, this one is forgotten on sight.
	if exp, ok := m.events[eventID]; ok && !exp.Before(now) {
		return ErrDuplicateEvent
	}
	m.events[eventID] = now.Add(ttl)
	return nil
}

func (m *MemoryStore) ReleaseEvent(_ context.Context, eventID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.events, eventID)
	return nil
}

// Put stores a session as is (test setup).
func (m *MemoryStore) Put(s Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions[s.SessionID] = s
}
