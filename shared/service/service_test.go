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

// fakeRooms records calls and the context state they saw.
type fakeRooms struct {
	mu        sync.Mutex
	created   []string
	deleted   []string
	deleteCtx []error // ctx.Err() seen by each DeleteRoom
	createErr error
	deleteErr error
	onCreate  func()
}

func (f *fakeRooms) CreateRoom(_ context.Context, name string, md rooms.Metadata) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.onCreate != nil {
		f.onCreate()
	}
	if f.createErr != nil {
		return "", f.createErr
	}
	if md.SessionID == "" || name != sessions.RoomName(md.SessionID) {
		return "", errors.New("room metadata does not match the room name")
	}
	f.created = append(f.created, name)
	return "RM_" + md.SessionID, nil
}

func (f *fakeRooms) DeleteRoom(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleteCtx = append(f.deleteCtx, ctx.Err())
	if f.deleteErr != nil {
		return f.deleteErr
	}
	f.deleted = append(f.deleted, name)
	return nil
}

func (f *fakeRooms) Participants(context.Context, string) ([]rooms.Participant, error) {
	return nil, nil
}

// fakeLauncher records launches and stops.
type fakeLauncher struct {
	mu        sync.Mutex
	launched  []agents.Session
	stopped   []string
	stopCtx   []error
	launchErr error
	onLaunch  func()
}

func (f *fakeLauncher) Launch(_ context.Context, s agents.Session) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.onLaunch != nil {
		f.onLaunch()
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
	f.stopCtx = append(f.stopCtx, ctx.Err())
	f.stopped = append(f.stopped, taskID)
	return nil
}

// ctxStore behaves like a remote store: it refuses work on a done context. failStarted makes
// MarkStarted fail.
type ctxStore struct {
	*sessions.MemoryStore
	failStarted error
	endCtx      []error
}

func (s *ctxStore) MarkStarted(ctx context.Context, id, roomSID, taskID string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.failStarted != nil {
		return s.failStarted
	}
	return s.MemoryStore.MarkStarted(ctx, id, roomSID, taskID, at)
}

func (s *ctxStore) End(ctx context.Context, id string, e sessions.Ending) (sessions.Session, error) {
	s.endCtx = append(s.endCtx, ctx.Err())
	if err := ctx.Err(); err != nil {
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
		PublicURL: "wss://lk.example.com", TokenTTL: 15 * time.Minute, LockTTL: time.Hour,
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
		SessionID: sessionID, Status: "starting", ExpiresAt: t0.Add(15 * time.Minute)}
	if c != want {
		t.Errorf("created\n%+v\nwant\n%+v", c, want)
	}
	if !slices.Equal(f.minted, []string{"video-" + sessionID + "|sub-1|student1|15m0s"}) {
		t.Errorf("minted %v", f.minted)
	}
	if !slices.Equal(f.rooms.created, []string{"video-" + sessionID}) {
		t.Errorf("rooms %v", f.rooms.created)
	}
	if len(f.agents.launched) != 1 || f.agents.launched[0] != (agents.Session{SessionID: sessionID, RoomName: "video-" + sessionID, CategoryID: catID}) {
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

func TestCreateRoomTokenFails(t *testing.T) {
	f := newFixture(t)
	f.svc.MintToken = func(string, string, string, time.Duration) (string, error) { return "", errBoom }
	_, err := f.svc.CreateRoom(context.Background(), student, catID)
	if len(f.rooms.created)+len(f.agents.launched) != 0 {
		t.Errorf("room or agent started without a token: %v %v", f.rooms.created, f.agents.launched)
	}
	f.svc.MintToken = func(room, _, _ string, _ time.Duration) (string, error) { return "t-" + room, nil }
	assertFailed(t, f, err, errBoom, "token signing failed")
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
	if len(f.agents.launched) != 1 || len(f.rooms.created) != 1 || len(f.minted) != 2 {
		t.Errorf("launches %d rooms %d tokens %d, want 1 1 2", len(f.agents.launched), len(f.rooms.created), len(f.minted))
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
	if !slices.Equal(f.rooms.deleted, []string{"video-" + sessionID}) {
		t.Errorf("deleted %v", f.rooms.deleted)
	}
	// Ending a closed session deletes nothing.
	if _, err := f.store.End(context.Background(), sessionID, sessions.Ending{Status: sessions.StatusEnded, At: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.EndSession(context.Background(), student, sessionID); err != nil {
		t.Fatal(err)
	}
	if len(f.rooms.deleted) != 1 {
		t.Errorf("closed session's room deleted again: %v", f.rooms.deleted)
	}
	// A LiveKit failure is reported.
	f.rooms.deleteErr = errBoom
	f.store.Put(sessions.Session{SessionID: "44444444-2222-4333-8444-555555555555", UserID: student.ID, Status: sessions.StatusActive, RoomName: "video-4"})
	if _, err := f.svc.EndSession(context.Background(), student, "44444444-2222-4333-8444-555555555555"); !errors.Is(err, errBoom) {
		t.Errorf("delete failure: %v", err)
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
