package sweeper

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"counselvideo/shared/agents"
	"counselvideo/shared/rooms"
	"counselvideo/shared/sessions"
)

type fakeRooms struct {
	mu      sync.Mutex
	people  map[string][]rooms.Participant // room name → participants; absent = room gone
	deleted []string
	failFor string
}

func (f *fakeRooms) DeleteRoom(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.people, name)
	f.deleted = append(f.deleted, name)
	return nil
}

func (f *fakeRooms) Participants(_ context.Context, name string) ([]rooms.Participant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name == f.failFor {
		return nil, errors.New("livekit unavailable")
	}
	p, ok := f.people[name]
	if !ok {
		return nil, rooms.ErrRoomNotFound
	}
	return p, nil
}

type fakeLauncher struct {
	mu      sync.Mutex
	stopped map[string]string
}

func (f *fakeLauncher) Launch(context.Context, agents.Session) (string, error) { return "", nil }
func (f *fakeLauncher) Stop(_ context.Context, task, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped[task] = reason
	return nil
}

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func open(id string, age time.Duration, status sessions.Status) sessions.Session {
	s := sessions.Session{SessionID: id, UserID: "u-" + id, RoomName: sessions.RoomName(id), Status: status,
		CreatedAt: now.Add(-age), StartedAt: now.Add(-age), AgentTaskID: "task-" + id}
	if status == sessions.StatusActive {
		s.StudentJoinedAt = now.Add(-age + 30*time.Second)
	}
	return s
}

func TestSweeperClosesWhatIsOver(t *testing.T) {
	store := sessions.NewMemoryStore()
	student := rooms.Participant{Identity: "u"}
	agent := rooms.Participant{Identity: "agent-x", IsAgent: true}
	lk := &fakeRooms{people: map[string][]rooms.Participant{}}
	add := func(s sessions.Session, people ...rooms.Participant) {
		store.Put(s)
		if people != nil {
			lk.people[s.RoomName] = people
		}
	}
	// over the maximum duration (counted from the agent's join) and its goodbye, room still busy
	long := open("long", 61*time.Minute, sessions.StatusActive)
	long.AgentJoinedAt = long.CreatedAt.Add(20 * time.Second)
	add(long, student, agent)
	// room gone (room_finished dropped)
	add(open("gone", 10*time.Minute, sessions.StatusActive))
	// agent never joined and is not in the room
	add(open("noagent", 4*time.Minute, sessions.StatusStarting), student)
	// agent in the room although its participant_joined was lost: healthy
	add(open("agentin", 4*time.Minute, sessions.StatusActive), student, agent)
	// agent joined per the record: healthy
	withAgent := open("joined", 10*time.Minute, sessions.StatusActive)
	withAgent.AgentJoinedAt = withAgent.CreatedAt.Add(20 * time.Second)
	add(withAgent, student, agent)
	// young: not examined even though its room does not exist yet
	add(open("young", 20*time.Second, sessions.StatusStarting))
	// LiveKit error: retried next run
	add(open("lkerr", 10*time.Minute, sessions.StatusActive), student, agent)
	lk.failFor = sessions.RoomName("lkerr")

	launcher := &fakeLauncher{stopped: map[string]string{}}
	sw := &Sweeper{Sessions: store, Rooms: lk, Agents: launcher, Log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		MaxDuration: time.Hour, AgentJoinTimeout: 3 * time.Minute, Now: func() time.Time { return now }}
	rep, err := sw.Run(context.Background())
	// The LiveKit failure is reported, and does not fail the run.
	if err != nil || rep.Errors != 1 || len(rep.Failures) != 1 || rep.Failures[0].SessionID != "lkerr" || !strings.Contains(rep.Failures[0].Error, "livekit unavailable") {
		t.Fatalf("LiveKit error not reported: %v %+v", err, rep)
	}
	if rep.Examined != 6 || len(rep.Closed) != 3 || !rep.Complete || rep.Resumed {
		t.Fatalf("report %+v", rep)
	}
	// Closed in list order (oldest first), whatever order the workers finished in.
	if rep.Closed[0].SessionID != "long" || rep.Closed[1].SessionID != "gone" || rep.Closed[2].SessionID != "noagent" {
		t.Fatalf("closed order %+v", rep.Closed)
	}
	want := map[string]struct {
		status sessions.Status
		reason string
	}{
		"long":    {sessions.StatusEnded, ReasonMaxDuration(time.Hour)},
		"gone":    {sessions.StatusEnded, ReasonRoomGone},
		"noagent": {sessions.StatusFailed, ReasonAgentTimeout(3 * time.Minute)},
		"agentin": {sessions.StatusActive, ""},
		"joined":  {sessions.StatusActive, ""},
		"young":   {sessions.StatusStarting, ""},
		"lkerr":   {sessions.StatusActive, ""},
	}
	for id, w := range want {
		s, _ := store.Get(context.Background(), id)
		if s.Status != w.status || s.EndReason != w.reason {
			t.Errorf("%s: %s %q, want %s %q", id, s.Status, s.EndReason, w.status, w.reason)
		}
		_, stopped := launcher.stopped["task-"+id]
		if stopped != w.status.Terminal() {
			t.Errorf("%s: task stopped=%v", id, stopped)
		}
		if w.status.Terminal() && !s.EndedAt.Equal(now) {
			t.Errorf("%s: ended_at %v", id, s.EndedAt)
		}
	}
	if s, _ := store.Get(context.Background(), "long"); s.DurationSeconds != int64((61*time.Minute-30*time.Second)/time.Second) {
		t.Errorf("duration %d", s.DurationSeconds)
	}
	if len(lk.deleted) != 3 {
		t.Errorf("deleted rooms %v", lk.deleted)
	}
	// A second run closes nothing new and stops nothing again.
	lk.failFor = ""
	rep, err = sw.Run(context.Background())
	if err != nil || len(rep.Closed) != 0 || len(launcher.stopped) != 3 {
		t.Fatalf("second run: %+v %v", rep, err)
	}
}

// countingRooms answers that every room exists with its agent, and records each room checked.
type countingRooms struct {
	mu      sync.Mutex
	checked map[string]int
	order   []string
	// block, when set, runs inside each Participants call (concurrency and deadline tests).
	block func(ctx context.Context) error
}

func (c *countingRooms) DeleteRoom(context.Context, string) error { return nil }
func (c *countingRooms) Participants(ctx context.Context, name string) ([]rooms.Participant, error) {
	if c.block != nil {
		if err := c.block(ctx); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checked[name]++
	c.order = append(c.order, name)
	return []rooms.Participant{{Identity: "agent", IsAgent: true}}, nil
}

func (c *countingRooms) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checked, c.order = map[string]int{}, nil
}

func (c *countingRooms) snapshot() (map[string]int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.checked), slices.Clone(c.order)
}

// healthy stores n open sessions with their agent joined, created a second apart (every third
// shares its creation time with the one before: ties are ordered by session id).
func healthy(store *sessions.MemoryStore, n int) []sessions.Session {
	var list []sessions.Session
	for i := range n {
		s := open(fmt.Sprintf("s%04d", i), 50*time.Minute-time.Duration(i-i%3/2)*time.Second, sessions.StatusActive)
		s.AgentJoinedAt = s.CreatedAt.Add(10 * time.Second)
		store.Put(s)
		list = append(list, s)
	}
	slices.SortFunc(list, func(a, b sessions.Session) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.SessionID, b.SessionID))
	})
	return list
}

func quietSweeper(store *sessions.MemoryStore, lk Rooms) *Sweeper {
	return &Sweeper{Sessions: store, Rooms: lk, Agents: &fakeLauncher{stopped: map[string]string{}},
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), MaxDuration: time.Hour, AgentJoinTimeout: 3 * time.Minute,
		Now: func() time.Time { return now }}
}

// TestSweeperResumesWhereItStopped: runs that stop early (here: MaxPerRun) leave a cursor; each next
// run checks the next stretch of the list, oldest first, so every open session is checked, also
// sessions created meanwhile and past a cursor whose session ended; after the end of the list the
// next run starts from the oldest again.
func TestSweeperResumesWhereItStopped(t *testing.T) {
	store := sessions.NewMemoryStore()
	all := healthy(store, 95)
	lk := &countingRooms{checked: map[string]int{}}
	sw := quietSweeper(store, lk)
	sw.MaxPerRun, sw.PageSize, sw.Concurrency = 20, 7, 4

	var seen []string
	for run := 1; ; run++ {
		lk.reset()
		rep, err := sw.Run(context.Background())
		if err != nil || rep.Errors != 0 {
			t.Fatalf("run %d: %v %+v", run, err, rep)
		}
		checked, _ := lk.snapshot()
		// This run checked exactly the next stretch of the list, each session once.
		var stretch []string
		for _, s := range all[len(seen):min(len(seen)+20, len(all))] {
			stretch = append(stretch, s.RoomName)
		}
		if len(checked) != len(stretch) || rep.Examined != len(stretch) {
			t.Fatalf("run %d checked %d sessions (report %d), want %d", run, len(checked), rep.Examined, len(stretch))
		}
		for _, name := range stretch {
			if checked[name] != 1 {
				t.Fatalf("run %d: %s checked %d times; checked %v", run, name, checked[name], checked)
			}
		}
		seen = append(seen, stretch...)
		if rep.Resumed != (run > 1) {
			t.Fatalf("run %d: resumed %v", run, rep.Resumed)
		}
		if len(seen) == len(all) {
			if !rep.Complete || !rep.Cursor.IsZero() {
				t.Fatalf("last run: %+v", rep)
			}
			break
		}
		if rep.Complete || rep.Cursor != sessions.CursorAt(all[len(seen)-1]) {
			t.Fatalf("run %d: complete %v cursor %+v, want the last session checked %s", run, rep.Complete, rep.Cursor, all[len(seen)-1].SessionID)
		}
		if run == 2 {
			// The session at the cursor ends, and a new one (the newest) is created: the next runs
			// continue after the cursor and reach the new one.
			if _, err := store.End(context.Background(), all[len(seen)-1].SessionID, sessions.Ending{Status: sessions.StatusEnded, At: now, Reason: "test"}); err != nil {
				t.Fatal(err)
			}
			fresh := open("s-new", 2*time.Minute, sessions.StatusActive)
			fresh.AgentJoinedAt = fresh.CreatedAt
			store.Put(fresh)
			all = append(all, fresh)
		}
		if run > 10 {
			t.Fatal("the runs never reached the end of the list")
		}
	}
	// The next run starts from the oldest again.
	lk.reset()
	rep, _ := sw.Run(context.Background())
	if _, order := lk.snapshot(); rep.Resumed || len(order) == 0 || !slices.Contains(order, all[0].RoomName) {
		t.Fatalf("run after the end: %+v", rep)
	}
}

// TestSweeperPartialFailure: LiveKit failing for some sessions fails neither the run nor the others;
// every failure is counted, the first ones listed.
func TestSweeperPartialFailure(t *testing.T) {
	store := sessions.NewMemoryStore()
	lk := &fakeRooms{people: map[string][]rooms.Participant{}}
	failing := &failingRooms{fakeRooms: lk, fail: map[string]bool{}}
	for i := range 60 {
		s := open(fmt.Sprintf("p%02d", i), 10*time.Minute, sessions.StatusActive)
		store.Put(s)
		if i%2 == 0 {
			failing.fail[s.RoomName] = true // LiveKit errors for this one
		} // the others' rooms are gone: they are closed
	}
	sw := quietSweeper(store, failing)
	rep, err := sw.Run(context.Background())
	if err != nil {
		t.Fatalf("a partial failure failed the run: %v", err)
	}
	if rep.Examined != 60 || rep.Errors != 30 || len(rep.Failures) != maxFailuresReported || len(rep.Closed) != 30 || !rep.Complete {
		t.Fatalf("report: examined %d errors %d failures %d closed %d complete %v", rep.Examined, rep.Errors, len(rep.Failures), len(rep.Closed), rep.Complete)
	}
	for _, f := range rep.Failures {
		if !failing.fail[sessions.RoomName(f.SessionID)] || f.Error == "" {
			t.Fatalf("failure %+v", f)
		}
	}
	// Only a store that cannot list anything fails the run.
	broken := &brokenStore{MemoryStore: store}
	sw.Sessions = broken
	if rep, err := sw.Run(context.Background()); err == nil || rep.Errors == 0 {
		t.Fatalf("listing failure: %v %+v", err, rep)
	}
}

type failingRooms struct {
	*fakeRooms
	fail map[string]bool
}

func (f *failingRooms) Participants(ctx context.Context, name string) ([]rooms.Participant, error) {
	if f.fail[name] {
		return nil, errors.New("livekit: 503 service unavailable")
	}
	return f.fakeRooms.Participants(ctx, name)
}

type brokenStore struct{ *sessions.MemoryStore }

func (b *brokenStore) ListOpenPage(context.Context, time.Time, sessions.SweepCursor, int32) ([]sessions.Session, bool, error) {
	return nil, false, errors.New("dynamodb unavailable")
}

// TestSweeperConcurrency: checks run Concurrency at a time, never more.
func TestSweeperConcurrency(t *testing.T) {
	store := sessions.NewMemoryStore()
	healthy(store, 50)
	var mu sync.Mutex
	inFlight, peak, calls := 0, 0, 0
	full := make(chan struct{})
	lk := &countingRooms{checked: map[string]int{}, block: func(ctx context.Context) error {
		mu.Lock()
		inFlight++
		calls++
		peak = max(peak, inFlight)
		first := calls <= 5
		if inFlight == 5 && calls == 5 {
			close(full)
		}
		mu.Unlock()
		defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
		if first { // the first five wait until all five are in flight together
			select {
			case <-full:
			case <-time.After(20 * time.Second):
				return errors.New("the checks did not run five at a time")
			}
		}
		return nil
	}}
	sw := quietSweeper(store, lk)
	sw.Concurrency = 5
	rep, err := sw.Run(context.Background())
	if err != nil || rep.Errors != 0 || rep.Examined != 50 {
		t.Fatalf("%v %+v", err, rep)
	}
	if peak != 5 {
		t.Fatalf("peak concurrency %d, want 5", peak)
	}
}

// TestSweeperStopsBeforeDeadline: with LiveKit hanging, a run with a deadline (the Lambda's) starts
// no new check StopMargin before it, cuts the hung ones off before it, returns a report (not an
// error) before it, and leaves a cursor from which the next run goes on.
func TestSweeperStopsBeforeDeadline(t *testing.T) {
	store := sessions.NewMemoryStore()
	all := healthy(store, 30)
	hang := true
	lk := &countingRooms{checked: map[string]int{}, block: func(ctx context.Context) error {
		if hang {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}}
	sw := quietSweeper(store, lk)
	sw.Concurrency, sw.StopMargin = 2, 2*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	rep, err := sw.Run(ctx)
	if ctx.Err() != nil {
		t.Fatal("the run did not return before its deadline")
	}
	if err != nil || rep.Examined != 2 || rep.Errors != 2 || rep.Complete || rep.Cursor != sessions.CursorAt(all[1]) {
		t.Fatalf("cut-off run: %v %+v", err, rep)
	}
	for _, f := range rep.Failures {
		if !strings.Contains(f.Error, "deadline") {
			t.Fatalf("failure %+v", f)
		}
	}
	hang = false
	lk.reset()
	rep, err = sw.Run(context.Background())
	checked, _ := lk.snapshot()
	if err != nil || !rep.Resumed || !rep.Complete || rep.Examined != 28 || checked[all[1].RoomName] != 0 || checked[all[2].RoomName] != 1 {
		t.Fatalf("next run: %v %+v", err, rep)
	}
}

// laggingIndex lists sessions as the open_sessions index saw them before the agent recorded a
// safety flag: without the flag. Get reads the item itself (with it).
type laggingIndex struct{ *sessions.MemoryStore }

func (l laggingIndex) ListOpenPage(ctx context.Context, before time.Time, after sessions.SweepCursor, limit int32) ([]sessions.Session, bool, error) {
	page, more, err := l.MemoryStore.ListOpenPage(ctx, before, after, limit)
	for i := range page {
		page[i].SafetyFlag, page[i].SafetyFlagCount = nil, 0
	}
	return page, more, err
}

// failingGet cannot read single items.
type failingGet struct{ laggingIndex }

func (failingGet) Get(context.Context, string) (sessions.Session, error) {
	return sessions.Session{}, errors.New("dynamodb unavailable")
}

// TestSweeperMaxDurationHonoursTheSafetyFlag: a session flagged for a safety concern is not cut at the
// maximum duration but only after the safety grace, also when the index it is listed from has not seen
// the flag yet; unflagged sessions are cut at the maximum as before.
func TestSweeperMaxDurationHonoursTheSafetyFlag(t *testing.T) {
	flag := &sessions.SafetyFlag{ID: "f", Kind: "self_harm", Severity: "urgent", Source: "model", At: now.Add(-20 * time.Minute)}
	agent := rooms.Participant{Identity: "agent-x", IsAgent: true}
	setup := func() (*sessions.MemoryStore, *fakeRooms) {
		store := sessions.NewMemoryStore()
		lk := &fakeRooms{people: map[string][]rooms.Participant{}}
		for _, c := range []struct {
			id      string
			age     time.Duration
			flagged bool
		}{
			{"plain", 61 * time.Minute, false},       // over the maximum, not flagged: cut
			{"inGrace", 74 * time.Minute, true},      // flagged, within the 15-minute grace: kept
			{"pastGrace", 76 * time.Minute, true},    // flagged, past maximum + grace: cut
			{"youngFlagged", 30 * time.Minute, true}, // flagged, under the maximum: kept
		} {
			s := open(c.id, c.age, sessions.StatusActive)
			s.AgentJoinedAt = s.CreatedAt.Add(20 * time.Second)
			if c.flagged {
				s.SafetyFlag, s.SafetyFlagCount = flag, 2
			}
			store.Put(s)
			lk.people[s.RoomName] = []rooms.Participant{{Identity: "u"}, agent}
		}
		return store, lk
	}
	want := map[string]string{
		"plain":        ReasonMaxDuration(time.Hour),
		"inGrace":      "",
		"pastGrace":    ReasonMaxDurationFlagged(time.Hour, 15*time.Minute),
		"youngFlagged": "",
	}
	for name, wrap := range map[string]func(*sessions.MemoryStore) Store{
		"index up to date": func(m *sessions.MemoryStore) Store { return m },
		"index lags":       func(m *sessions.MemoryStore) Store { return laggingIndex{m} },
	} {
		t.Run(name, func(t *testing.T) {
			store, lk := setup()
			sw := quietSweeper(store, lk)
			sw.Sessions, sw.SafetyGrace = wrap(store), 15*time.Minute
			rep, err := sw.Run(context.Background())
			if err != nil || rep.Errors != 0 || len(rep.Closed) != 2 {
				t.Fatalf("run: %v %+v", err, rep)
			}
			for id, reason := range want {
				s, _ := store.Get(context.Background(), id)
				if s.EndReason != reason || s.Status.Terminal() != (reason != "") {
					t.Errorf("%s: %s %q, want %q", id, s.Status, s.EndReason, reason)
				}
				if s.SafetyFlag == nil != (id == "plain") {
					t.Errorf("%s: the flag changed: %+v", id, s.SafetyFlag)
				}
			}
		})
	}

	// Without a grace configured, flags change nothing.
	store, lk := setup()
	sw := quietSweeper(store, lk)
	if rep, err := sw.Run(context.Background()); err != nil || len(rep.Closed) != 3 {
		t.Fatalf("no grace: %v %+v", err, rep)
	}

	// An item that cannot be read is not cut on the index's word: reported, retried next run.
	store, lk = setup()
	sw = quietSweeper(store, lk)
	sw.Sessions, sw.SafetyGrace = failingGet{laggingIndex{store}}, 15*time.Minute
	rep, err := sw.Run(context.Background())
	if err != nil || len(rep.Closed) != 0 || rep.Errors != 3 {
		t.Fatalf("failing get: %v %+v", err, rep)
	}
	if s, _ := store.Get(context.Background(), "inGrace"); s.Status.Terminal() {
		t.Errorf("inGrace cut while its item could not be read")
	}
}
