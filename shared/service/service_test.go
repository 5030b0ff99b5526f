package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"counselvideo/shared/agents"
	"counselvideo/shared/auth"
	"counselvideo/shared/categories"
	"counselvideo/shared/rooms"
	"counselvideo/shared/sessions"
)

const (
	catID     = "0b6a7c1e-3f4d-4a5b-9c8d-7e6f5a4b3c2d"
	sessionID = "11111111-2222-4333-8444-555555555555"
)

var (
	t0      = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	student = auth.Student{ID: "sub-1", Name: "student1"}
	errBoom = errors.New("boom")
)

// fakeCategories is a categories.Store over a slice.
type fakeCategories struct {
	list []categories.Category
	err  error
}

func (f *fakeCategories) GetEnabled(_ context.Context, id string) (categories.Category, error) {
	if f.err != nil {
		return categories.Category{}, f.err
	}
	for _, c := range f.list {
		if c.ID == id && c.Enabled {
			return c, nil
		}
	}
	return categories.Category{}, categories.ErrNotFound
}

func (f *fakeCategories) ListEnabled(context.Context) ([]categories.Category, error) {
	if f.err != nil {
		return nil, f.err
	}
	var out []categories.Category
	for _, c := range f.list {
		if c.Enabled {
			out = append(out, c)
		}
	}
	return out, nil
}

// fakeRooms records calls and the context state they saw. A room exists from its creation to its
// deletion. Hooks run before the fake takes its lock, so they may call the service.
type fakeRooms struct {
	mu         sync.Mutex
	created    []string
	deleted    []string
	live       map[string]bool
	deleteCtx  []error // ctx.Err() seen by each DeleteRoom
	noDeadline []string
	createErr  error
	deleteErr  error
	onCreate   func()
	// createStarted is closed when the first CreateRoom starts (to observe overlap).
	createStarted chan struct{}
	startOnce     sync.Once
}

func (f *fakeRooms) CreateRoom(ctx context.Context, name string, md rooms.Metadata) (string, error) {
	if f.createStarted != nil {
		f.startOnce.Do(func() { close(f.createStarted) })
	}
	if f.onCreate != nil {
		f.onCreate()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checkDeadline(ctx, "CreateRoom")
	if f.createErr != nil {
		return "", f.createErr
	}
	if md.SessionID == "" || name != sessions.RoomName(md.SessionID) {
		return "", errors.New("room metadata does not match the room name")
	}
	f.created = append(f.created, name)
	if f.live == nil {
		f.live = map[string]bool{}
	}
	f.live[name] = true
	return "RM_" + md.SessionID, nil
}

func (f *fakeRooms) DeleteRoom(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checkDeadline(ctx, "DeleteRoom")
	f.deleteCtx = append(f.deleteCtx, ctx.Err())
	if f.deleteErr != nil {
		return f.deleteErr
	}
	f.deleted = append(f.deleted, name)
	delete(f.live, name)
	return nil
}

func (f *fakeRooms) RoomExists(ctx context.Context, name string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checkDeadline(ctx, "RoomExists")
	return f.live[name], nil
}

func (f *fakeRooms) Participants(context.Context, string) ([]rooms.Participant, error) {
	return nil, nil
}

// checkDeadline notes calls made without a deadline; the caller holds f.mu.
func (f *fakeRooms) checkDeadline(ctx context.Context, op string) {
	if _, ok := ctx.Deadline(); !ok {
		f.noDeadline = append(f.noDeadline, op)
	}
}

// fakeLauncher records launches and stops. onLaunch runs before the fake takes its lock.
type fakeLauncher struct {
	mu         sync.Mutex
	launched   []agents.Session
	stopped    []string
	stopCtx    []error
	launchErr  error
	onLaunch   func()
	noDeadline []string
}

func (f *fakeLauncher) Launch(ctx context.Context, s agents.Session) (string, error) {
	if f.onLaunch != nil {
		f.onLaunch()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		f.noDeadline = append(f.noDeadline, "Launch")
	}
	if f.launchErr != nil {
		return "", f.launchErr
	}
	f.launched = append(f.launched, s)
	return "task-" + s.SessionID, nil
}

func (f *fakeLauncher) Stop(ctx context.Context, taskID, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		f.noDeadline = append(f.noDeadline, "Stop")
	}
	f.stopCtx = append(f.stopCtx, ctx.Err())
	f.stopped = append(f.stopped, taskID)
	return nil
}

// ctxStore behaves like a remote store: it refuses work on a done context and notes calls without a
// deadline. failStarted makes MarkStarted fail; onCreate runs after a Create.
type ctxStore struct {
	*sessions.MemoryStore
	failStarted error
	onCreate    func()
	mu          sync.Mutex
	endCtx      []error
	noDeadline  []string
}

func (s *ctxStore) check(ctx context.Context, op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		s.noDeadline = append(s.noDeadline, op)
	}
	return ctx.Err()
}

func (s *ctxStore) Create(ctx context.Context, sess sessions.Session, a sessions.Admission) (sessions.Session, error) {
	if err := s.check(ctx, "Create"); err != nil {
		return sessions.Session{}, err
	}
	created, err := s.MemoryStore.Create(ctx, sess, a)
	if s.onCreate != nil {
		s.onCreate()
	}
	return created, err
}

func (s *ctxStore) Get(ctx context.Context, id string) (sessions.Session, error) {
	if err := s.check(ctx, "Get"); err != nil {
		return sessions.Session{}, err
	}
	return s.MemoryStore.Get(ctx, id)
}

func (s *ctxStore) MarkStarted(ctx context.Context, id string, st sessions.Started) error {
	if err := s.check(ctx, "MarkStarted"); err != nil {
		return err
	}
	if s.failStarted != nil {
		return s.failStarted
	}
	return s.MemoryStore.MarkStarted(ctx, id, st)
}

func (s *ctxStore) End(ctx context.Context, id string, e sessions.Ending) (sessions.Session, error) {
	err := s.check(ctx, "End")
	s.mu.Lock()
	s.endCtx = append(s.endCtx, ctx.Err())
	s.mu.Unlock()
	if err != nil {
		return sessions.Session{}, err
	}
	return s.MemoryStore.End(ctx, id, e)
}

type fixture struct {
	svc    *Service
	store  *ctxStore
	rooms  *fakeRooms
	agents *fakeLauncher
	cats   *fakeCategories
	minted []string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		store:  &ctxStore{MemoryStore: sessions.NewMemoryStore()},
		rooms:  &fakeRooms{},
		agents: &fakeLauncher{},
		cats: &fakeCategories{list: []categories.Category{
			{ID: catID, Name: "Academic", Enabled: true, SortOrder: 10},
		}},
	}
	n := 0 // ids 11111111-…, 22222222-…, …: the first is sessionID
	f.svc = &Service{
		Categories: f.cats, Sessions: f.store, Rooms: f.rooms, Agents: f.agents,
		MintToken: func(room, identity, name string, ttl time.Duration) (string, error) {
			f.minted = append(f.minted, room+"|"+identity+"|"+name+"|"+ttl.String())
			return "token-" + room, nil
		},
		PublicURL: "wss://lk.example.com", TokenTTL: 15 * time.Minute, LockTTL: time.Hour, MaxDuration: time.Hour,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { return t0 },
		NewID: func() string {
			n++
			return fmt.Sprintf("%08x-2222-4333-8444-555555555555", 0x11111111*n)
		},
	}
	return f
}

func (f *fixture) session(t *testing.T, id string) sessions.Session {
	t.Helper()
	s, err := f.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCreateRoomStartsSession(t *testing.T) {
	f := newFixture(t)
	c, err := f.svc.CreateRoom(context.Background(), student, catID)
	if err != nil {
		t.Fatal(err)
	}
	want := Created{RoomURL: "wss://lk.example.com", AccessToken: "token-video-" + sessionID, RoomName: "video-" + sessionID,
		SessionID: sessionID, Status: "starting", ExpiresAt: t0.Add(15 * time.Minute), MaxDurationSeconds: 3600}
	if c != want {
		t.Errorf("created\n%+v\nwant\n%+v", c, want)
	}
	if !slices.Equal(f.minted, []string{"video-" + sessionID + "|sub-1|student1|15m0s"}) {
		t.Errorf("minted %v", f.minted)
	}
	if !slices.Equal(f.rooms.created, []string{"video-" + sessionID}) {
		t.Errorf("rooms %v", f.rooms.created)
	}
	if len(f.agents.launched) != 1 || f.agents.launched[0] != (agents.Session{SessionID: sessionID, RoomName: "video-" + sessionID, CategoryID: catID, MaxDuration: time.Hour}) {
		t.Errorf("launched %+v", f.agents.launched)
	}
	s := f.session(t, sessionID)
	if s.Status != sessions.StatusStarting || s.UserID != "sub-1" || s.CategoryName != "Academic" || s.Mode != sessions.ModeVideo ||
		s.RoomSID != "RM_"+sessionID || s.AgentTaskID != "task-"+sessionID || !s.StartedAt.Equal(t0) || !s.CreatedAt.Equal(t0) {
		t.Errorf("stored session %+v", s)
	}
	if len(f.rooms.deleted) != 0 || len(f.agents.stopped) != 0 {
		t.Errorf("cleanup ran on success: deleted %v stopped %v", f.rooms.deleted, f.agents.stopped)
	}
}

func TestCreateRoomUnknownCategory(t *testing.T) {
	f := newFixture(t)
	f.cats.list = append(f.cats.list, categories.Category{ID: "9d3e2f1a-0000-4000-8000-000000000000", Name: "Off", Enabled: false})
	for _, id := range []string{"9d3e2f1a-0000-4000-8000-000000000000", "00000000-0000-4000-8000-000000000000"} {
		if _, err := f.svc.CreateRoom(context.Background(), student, id); !errors.Is(err, categories.ErrNotFound) {
			t.Errorf("category %s: %v", id, err)
		}
	}
	if len(f.rooms.created)+len(f.agents.launched) != 0 {
		t.Error("side effects for an unknown category")
	}
	if _, err := f.store.Get(context.Background(), sessionID); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("session written for an unknown category: %v", err)
	}
}

// assertFailed checks the session ended as failed, its lock is released and the error wraps the cause.
func assertFailed(t *testing.T, f *fixture, err, cause error, reason string) {
	t.Helper()
	if !errors.Is(err, cause) {
		t.Errorf("error %v does not wrap the cause %v", err, cause)
	}
	s := f.session(t, sessionID)
	if s.Status != sessions.StatusFailed || s.EndReason != reason {
		t.Errorf("session status %q reason %q, want failed %q", s.Status, s.EndReason, reason)
	}
	// The student can start again: the lock went with the failure.
	c, err := f.svc.CreateRoom(context.Background(), student, catID)
	if err != nil || c.Resumed || c.SessionID == sessionID {
		t.Errorf("next attempt after a failure: %+v %v", c, err)
	}
}

func TestCreateRoomRoomFails(t *testing.T) {
	f := newFixture(t)
	f.rooms.createErr = errBoom
	_, err := f.svc.CreateRoom(context.Background(), student, catID)
	if len(f.agents.launched) != 0 {
		t.Errorf("agent launched without a room: %+v", f.agents.launched)
	}
	if len(f.agents.stopped) != 0 {
		t.Errorf("stop called with no task: %v", f.agents.stopped)
	}
	f.rooms.createErr = nil
	assertFailed(t, f, err, errBoom, "room creation failed")
}

func TestCreateRoomLaunchFails(t *testing.T) {
	f := newFixture(t)
	f.agents.launchErr = errBoom
	_, err := f.svc.CreateRoom(context.Background(), student, catID)
	if !slices.Equal(f.rooms.deleted, []string{"video-" + sessionID}) {
		t.Errorf("deleted rooms %v, want the session's room", f.rooms.deleted)
	}
	if len(f.agents.stopped) != 0 {
		t.Errorf("stop called with no task: %v", f.agents.stopped)
	}
	f.agents.launchErr = nil
	assertFailed(t, f, err, errBoom, "agent launch failed")
}

func TestCreateRoomMarkStartedFails(t *testing.T) {
	f := newFixture(t)
	f.store.failStarted = errBoom
	c, err := f.svc.CreateRoom(context.Background(), student, catID)
	if err == nil {
		t.Fatalf("no error; created %+v", c)
	}
	if c != (Created{}) {
		t.Errorf("a token was returned with the error: %+v", c)
	}
	if !slices.Equal(f.agents.stopped, []string{"task-" + sessionID}) {
		t.Errorf("stopped %v, want the launched task", f.agents.stopped)
	}
	if !slices.Equal(f.rooms.deleted, []string{"video-" + sessionID}) {
		t.Errorf("deleted rooms %v", f.rooms.deleted)
	}
	f.store.failStarted = nil
	assertFailed(t, f, err, errBoom, "session update failed")
}

// TestCreateRoomTokenFails: signing comes first, so its failure leaves nothing behind.
func TestCreateRoomTokenFails(t *testing.T) {
	f := newFixture(t)
	f.svc.MintToken = func(string, string, string, time.Duration) (string, error) { return "", errBoom }
	_, err := f.svc.CreateRoom(context.Background(), student, catID)
	if !errors.Is(err, errBoom) {
		t.Fatalf("error %v does not wrap the cause", err)
	}
	if len(f.rooms.created)+len(f.agents.launched) != 0 {
		t.Errorf("room or agent started without a token: %v %v", f.rooms.created, f.agents.launched)
	}
	if _, err := f.store.Get(context.Background(), sessionID); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("a session was written: %v", err)
	}
}

// TestCleanupSurvivesCanceledRequest: the client hangs up while the agent launches; the cleanup still
// runs with a live context.
func TestCleanupSurvivesCanceledRequest(t *testing.T) {
	for name, setup := range map[string]func(f *fixture, cancel context.CancelFunc){
		"launch fails": func(f *fixture, cancel context.CancelFunc) {
			f.agents.launchErr = context.Canceled
			f.agents.onLaunch = cancel
		},
		"MarkStarted fails": func(f *fixture, cancel context.CancelFunc) {
			f.agents.onLaunch = cancel // MarkStarted then fails on the canceled context
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			setup(f, cancel)
			if _, err := f.svc.CreateRoom(ctx, student, catID); err == nil {
				t.Fatal("no error")
			}
			if ctx.Err() == nil {
				t.Fatal("the request context was not canceled by the fake")
			}
			if len(f.rooms.deleted) != 1 || f.rooms.deleteCtx[0] != nil {
				t.Errorf("room cleanup: deleted %v, ctx errors %v", f.rooms.deleted, f.rooms.deleteCtx)
			}
			for _, e := range f.agents.stopCtx {
				if e != nil {
					t.Errorf("stop ran on a done context: %v", e)
				}
			}
			if len(f.store.endCtx) != 1 || f.store.endCtx[0] != nil {
				t.Errorf("End ctx errors %v", f.store.endCtx)
			}
			if s := f.session(t, sessionID); s.Status != sessions.StatusFailed {
				t.Errorf("session %q, want failed", s.Status)
			}
		})
	}
}

func TestCreateRoomResumesOpenSession(t *testing.T) {
	f := newFixture(t)
	first, err := f.svc.CreateRoom(context.Background(), student, catID)
	if err != nil {
		t.Fatal(err)
	}
	f.svc.Now = func() time.Time { return t0.Add(time.Minute) }
	second, err := f.svc.CreateRoom(context.Background(), student, catID)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Resumed || first.Resumed {
		t.Errorf("resumed flags: first %v second %v", first.Resumed, second.Resumed)
	}
	if second.SessionID != first.SessionID || second.RoomName != first.RoomName || second.RoomURL != first.RoomURL ||
		second.Status != "starting" || second.AccessToken == "" {
		t.Errorf("resumed %+v, first %+v", second, first)
	}
	if !second.ExpiresAt.Equal(t0.Add(time.Minute + 15*time.Minute)) {
		t.Errorf("resumed token expires %v", second.ExpiresAt)
	}
	if len(f.agents.launched) != 1 || second.AccessToken != "token-"+first.RoomName {
		t.Errorf("launches %d, resumed token %q", len(f.agents.launched), second.AccessToken)
	}
	// The room made alongside the record that could not be written is deleted again.
	unused := "video-22222222-2222-4333-8444-555555555555"
	if !slices.Equal(f.rooms.created, []string{first.RoomName, unused}) || !slices.Equal(f.rooms.deleted, []string{unused}) {
		t.Errorf("rooms created %v deleted %v", f.rooms.created, f.rooms.deleted)
	}
	// The ID the resume consumed was never written.
	if _, err := f.store.Get(context.Background(), "22222222-2222-4333-8444-555555555555"); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("second session written: %v", err)
	}
	// An active session resumes with its status.
	active := f.session(t, sessionID)
	active.Status = sessions.StatusActive
	f.store.Put(active)
	third, err := f.svc.CreateRoom(context.Background(), student, catID)
	if err != nil || !third.Resumed || third.Status != "active" {
		t.Errorf("resume active: %+v %v", third, err)
	}
	// Another student gets a session of their own.
	other, err := f.svc.CreateRoom(context.Background(), auth.Student{ID: "sub-2"}, catID)
	if err != nil || other.Resumed || other.SessionID == sessionID {
		t.Errorf("other student: %+v %v", other, err)
	}
}

func TestSessionAndEndSessionOwnership(t *testing.T) {
	f := newFixture(t)
	if _, err := f.svc.CreateRoom(context.Background(), student, catID); err != nil {
		t.Fatal(err)
	}
	intruder := auth.Student{ID: "sub-intruder"}
	if _, err := f.svc.Session(context.Background(), intruder, sessionID); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("Session by non-owner: %v", err)
	}
	if s, err := f.svc.EndSession(context.Background(), intruder, sessionID); !errors.Is(err, ErrSessionNotFound) || s.SessionID != "" {
		t.Errorf("EndSession by non-owner: %+v %v", s, err)
	}
	if len(f.rooms.deleted) != 0 {
		t.Fatalf("non-owner deleted %v", f.rooms.deleted)
	}
	for _, id := range []string{"not-a-uuid", "99999999-2222-4333-8444-555555555555", ""} {
		if _, err := f.svc.EndSession(context.Background(), student, id); !errors.Is(err, ErrSessionNotFound) {
			t.Errorf("EndSession(%q): %v", id, err)
		}
	}
	s, err := f.svc.Session(context.Background(), student, sessionID)
	if err != nil || s.SessionID != sessionID {
		t.Fatalf("Session by owner: %+v %v", s, err)
	}
	s, err = f.svc.EndSession(context.Background(), student, sessionID)
	if err != nil || s.SessionID != sessionID {
		t.Fatalf("EndSession by owner: %+v %v", s, err)
	}
	// The end is recorded first (releasing the lock), then the room and the agent go.
	if s.Status != sessions.StatusEnded || s.EndReason != ReasonEndedByStudent || f.session(t, sessionID).Status != sessions.StatusEnded {
		t.Errorf("ended session %+v", s)
	}
	if !slices.Equal(f.rooms.deleted, []string{"video-" + sessionID}) || !slices.Equal(f.agents.stopped, []string{"task-" + sessionID}) {
		t.Errorf("deleted %v stopped %v", f.rooms.deleted, f.agents.stopped)
	}
	// Ending a closed session deletes its room again (idempotent) and changes nothing else.
	if s, err := f.svc.EndSession(context.Background(), student, sessionID); err != nil || s.EndReason != ReasonEndedByStudent {
		t.Fatalf("second end: %+v %v", s, err)
	}
	if len(f.rooms.deleted) != 2 || len(f.agents.stopped) != 1 {
		t.Errorf("second end: deleted %v stopped %v", f.rooms.deleted, f.agents.stopped)
	}
	// A LiveKit failure is reported; the end stays recorded, and ending again retries the delete.
	f.rooms.deleteErr = errBoom
	id4 := "44444444-2222-4333-8444-555555555555"
	f.store.Put(sessions.Session{SessionID: id4, UserID: student.ID, Status: sessions.StatusActive, RoomName: "video-4"})
	if _, err := f.svc.EndSession(context.Background(), student, id4); !errors.Is(err, errBoom) {
		t.Errorf("delete failure: %v", err)
	}
	if got := f.session(t, id4); got.Status != sessions.StatusEnded {
		t.Errorf("after a failed delete the session is %s", got.Status)
	}
	f.rooms.deleteErr = nil
	if _, err := f.svc.EndSession(context.Background(), student, id4); err != nil || f.rooms.deleted[len(f.rooms.deleted)-1] != "video-4" {
		t.Errorf("retried end: %v, deleted %v", err, f.rooms.deleted)
	}
}

func TestListCategoriesPassesOrderThrough(t *testing.T) {
	f := newFixture(t)
	f.cats.list = []categories.Category{
		{ID: "c", Name: "Zeta", Enabled: true, SortOrder: 30},
		{ID: "a", Name: "Alpha", Enabled: true, SortOrder: 10},
		{ID: "x", Name: "Hidden", Enabled: false},
		{ID: "b", Name: "Beta", Enabled: true, SortOrder: 20},
	}
	list, err := f.svc.ListCategories(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	if !slices.Equal(ids, []string{"c", "a", "b"}) {
		t.Errorf("order %v, want the store's order [c a b]", ids)
	}
	f.cats.err = errBoom
	if _, err := f.svc.ListCategories(context.Background()); !errors.Is(err, errBoom) {
		t.Errorf("store error: %v", err)
	}
}
