package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/encoding/protojson"

	"counselvideo/shared/agents"
	"counselvideo/shared/rooms"
	"counselvideo/shared/sessions"
	"counselvideo/shared/webhook/webhooktest"
)

const (
	apiKey    = "devkey"
	apiSecret = "secret-secret-secret-secret-secret"
	sessionID = "3f2b8c1e-0000-4000-8000-000000000001"
	userID    = "sub-student-1"
	roomSID   = "RM_current"
	taskID    = "arn:aws:ecs:us-east-1:000000000000:task/c/1"
)

type fakeRooms struct {
	mu      sync.Mutex
	deleted []string
	fail    error
	// people is who Participants finds in a room; gone makes it ErrRoomNotFound, listErr an error.
	people  map[string][]rooms.Participant
	gone    bool
	listErr error
}

func (f *fakeRooms) Participants(_ context.Context, name string) ([]rooms.Participant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.listErr != nil:
		return nil, f.listErr
	case f.gone:
		return nil, rooms.ErrRoomNotFound
	}
	return f.people[name], nil
}

func (f *fakeRooms) setPeople(name string, people ...rooms.Participant) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.people == nil {
		f.people = map[string][]rooms.Participant{}
	}
	f.people[name] = people
}

func (f *fakeRooms) deletes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.deleted...)
}

func (f *fakeRooms) DeleteRoom(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.deleted = append(f.deleted, name)
	return nil
}

type fakeLauncher struct {
	mu       sync.Mutex
	stopped  []string // "task|reason"
	fail     error
	launched []agents.Session
	// launchErr fails Launch; onLaunch runs inside it (a test's concurrent change).
	launchErr error
	onLaunch  func(ctx context.Context) error
}

func (f *fakeLauncher) Launch(ctx context.Context, s agents.Session) (string, error) {
	if f.onLaunch != nil {
		if err := f.onLaunch(ctx); err != nil {
			return "", err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.launched = append(f.launched, s)
	if f.launchErr != nil {
		return "", f.launchErr
	}
	return fmt.Sprintf("task-replacement-%d", len(f.launched)), nil
}

func (f *fakeLauncher) launches() []agents.Session {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]agents.Session(nil), f.launched...)
}

func (f *fakeLauncher) Stop(_ context.Context, task, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.stopped = append(f.stopped, task+"|"+reason)
	return nil
}
func (f *fakeLauncher) stops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.stopped...)
}

type fixture struct {
	store *sessions.MemoryStore
	rooms *fakeRooms
	agent *fakeLauncher
	h     *Handler
	logs  *bytes.Buffer
}

var created = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func newFixture(t testing.TB) *fixture {
	f := &fixture{store: sessions.NewMemoryStore(), rooms: &fakeRooms{}, agent: &fakeLauncher{}, logs: &bytes.Buffer{}}
	f.store.Put(startingSession())
	f.h = New(apiKey, apiSecret, f.store, f.rooms, f.agent, slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	return f
}

func startingSession() sessions.Session {
	return sessions.Session{
		SessionID: sessionID, UserID: userID, CategoryID: "cat", CategoryName: "Stress", Mode: "video",
		RoomName: sessions.RoomName(sessionID), RoomSID: roomSID, Status: sessions.StatusStarting,
		CreatedAt: created, StartedAt: created.Add(time.Second), AgentTaskID: taskID,
	}
}

func (f *fixture) session(t testing.TB) sessions.Session {
	t.Helper()
	s, err := f.store.Get(context.Background(), sessionID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// event builders, shaped as livekit-server sends them.
func room(sid string) *livekit.Room {
	return &livekit.Room{Sid: sid, Name: sessions.RoomName(sessionID)}
}

func ev(id, kind string, at time.Time, p *livekit.ParticipantInfo) *livekit.WebhookEvent {
	return &livekit.WebhookEvent{Id: id, Event: kind, Room: room(roomSID), Participant: p, CreatedAt: at.Unix()}
}

func studentP(joined time.Time) *livekit.ParticipantInfo {
	return &livekit.ParticipantInfo{Sid: "PA_s", Identity: userID, Kind: livekit.ParticipantInfo_STANDARD, JoinedAt: joined.Unix(), JoinedAtMs: joined.UnixMilli()}
}

func agentP(identity string, joined time.Time) *livekit.ParticipantInfo {
	return &livekit.ParticipantInfo{Sid: "PA_" + identity, Identity: identity, Kind: livekit.ParticipantInfo_AGENT, JoinedAt: joined.Unix(), JoinedAtMs: joined.UnixMilli()}
}

// recorded is a session's event sequence as livekit-server produces it.
func recorded() []*livekit.WebhookEvent {
	t0 := created
	return []*livekit.WebhookEvent{
		ev("EV_started", EventRoomStarted, t0.Add(1*time.Second), nil),
		ev("EV_agent", EventParticipantJoined, t0.Add(20*time.Second), agentP("agent-"+sessionID, t0.Add(20500*time.Millisecond))),
		ev("EV_avatar", EventParticipantJoined, t0.Add(24*time.Second), agentP("bey-avatar-agent", t0.Add(24250*time.Millisecond))),
		ev("EV_student", EventParticipantJoined, t0.Add(30*time.Second), studentP(t0.Add(30100*time.Millisecond))),
		ev("EV_student_left", EventParticipantLeft, t0.Add(630*time.Second), studentP(t0.Add(30100*time.Millisecond))),
		ev("EV_agent_left", EventParticipantLeft, t0.Add(631*time.Second), agentP("agent-"+sessionID, t0.Add(20500*time.Millisecond))),
		ev("EV_finished", EventRoomFinished, t0.Add(632*time.Second), nil),
	}
}

func body(t testing.TB, e *livekit.WebhookEvent) []byte {
	b, err := protojson.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sign(t testing.TB, key, secret string, b []byte) string {
	t.Helper()
	tok, err := webhooktest.Sign(key, secret, b)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

var post = webhooktest.Post

func (f *fixture) send(t testing.TB, e *livekit.WebhookEvent) *httptest.ResponseRecorder {
	t.Helper()
	b := body(t, e)
	return post(f.h, b, sign(t, apiKey, apiSecret, b))
}

func TestSignatureChecks(t *testing.T) {
	joined := ev("EV_sig", EventParticipantJoined, created.Add(30*time.Second), studentP(created.Add(30*time.Second)))
	good := body(t, joined)
	sum := sha256.Sum256(good)
	hash := base64.StdEncoding.EncodeToString(sum[:])
	expired, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": apiKey, "sha256": hash, "nbf": time.Now().Add(-time.Hour).Unix(), "exp": time.Now().Add(-10 * time.Minute).Unix(),
	}).SignedString([]byte(apiSecret))
	if err != nil {
		t.Fatal(err)
	}
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": apiKey, "sha256": hash}).SignedString([]byte(apiSecret))
	tampered := bytes.Replace(good, []byte(userID), []byte("sub-intruder"), 1)
	if bytes.Equal(tampered, good) {
		t.Fatal("tampering did not change the body")
	}

	cases := []struct {
		name  string
		body  []byte
		authz string
	}{
		{"missing header", good, ""},
		{"malformed token", good, "not-a-jwt"},
		{"wrong secret", good, sign(t, apiKey, "another-secret-another-secret-xx", good)},
		{"unknown key", good, sign(t, "otherkey", apiSecret, good)},
		{"tampered body", tampered, sign(t, apiKey, apiSecret, good)},
		{"expired", good, expired},
		{"no expiry", good, noExp},
		{"base64 body without decoding", []byte(base64.StdEncoding.EncodeToString(good)), sign(t, apiKey, apiSecret, good)},
	}
	f := newFixture(t)
	before := f.session(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := post(f.h, c.body, c.authz)
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", w.Code)
			}
			// The API's one error shape, with the request id of the header.
			var body struct {
				Error struct {
					Code      string `json:"code"`
					RequestID string `json:"request_id"`
				}
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code != "unauthorized" || body.Error.RequestID != w.Header().Get("X-Request-Id") {
				t.Fatalf("error body %s (%v)", w.Body, err)
			}
			if got := f.session(t); !reflect.DeepEqual(got, before) {
				t.Fatalf("a rejected request changed the session: %+v", got)
			}
		})
	}
	// Nothing was claimed by the rejected requests: the genuine event still applies.
	if w := post(f.h, good, sign(t, apiKey, apiSecret, good)); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"applied"`) {
		t.Fatalf("valid request: %d %s", w.Code, w.Body)
	}
	if s := f.session(t); s.Status != sessions.StatusActive {
		t.Fatalf("status %s after a valid join", s.Status)
	}
	if w := post(f.h, nil, ""); w.Code != http.StatusUnauthorized {
		t.Fatalf("empty request: %d", w.Code)
	}
	r := httptest.NewRequest(http.MethodGet, "/livekit/webhook", nil)
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", w.Code)
	}
}

func TestLifecycleInOrder(t *testing.T) {
	f := newFixture(t)
	evs := recorded()
	steps := []func(s sessions.Session){
		func(s sessions.Session) {
			if s.Status != sessions.StatusStarting || s.RoomSID != roomSID {
				t.Fatalf("after room_started: %+v", s)
			}
		},
		func(s sessions.Session) {
			if !s.AgentJoinedAt.Equal(created.Add(20500*time.Millisecond)) || s.Status != sessions.StatusStarting {
				t.Fatalf("after agent joined: %+v", s)
			}
		},
		func(s sessions.Session) {
			if !s.AgentJoinedAt.Equal(created.Add(20500 * time.Millisecond)) {
				t.Fatalf("the avatar's later join replaced agent_joined_at: %v", s.AgentJoinedAt)
			}
		},
		func(s sessions.Session) {
			if s.Status != sessions.StatusActive || !s.StudentJoinedAt.Equal(created.Add(30100*time.Millisecond)) {
				t.Fatalf("after student joined: %+v", s)
			}
		},
		func(s sessions.Session) {
			// LiveKit closes the room after its departure timeout unless the student returns.
			if s.Status != sessions.StatusActive || len(f.rooms.deleted) != 0 {
				t.Fatalf("after student left: %+v, deleted %v", s, f.rooms.deleted)
			}
		},
		func(s sessions.Session) {
			if len(f.rooms.deleted) != 0 {
				t.Fatalf("the agent leaving deleted the room: %v", f.rooms.deleted)
			}
		},
		func(s sessions.Session) {
			if s.Status != sessions.StatusEnded || !s.EndedAt.Equal(created.Add(632*time.Second)) || s.DurationSeconds != 602 || s.EndReason == "" {
				t.Fatalf("after room finished: %+v", s)
			}
			if st := f.agent.stops(); len(st) != 1 || !strings.HasPrefix(st[0], taskID+"|") {
				t.Fatalf("stops %v", st)
			}
		},
	}
	for i, e := range evs {
		if w := f.send(t, e); w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", e.Event, w.Code, w.Body)
		}
		steps[i](f.session(t))
	}
	// Logs are JSON with the session and user ids.
	if !strings.Contains(f.logs.String(), `"session_id":"`+sessionID+`"`) || !strings.Contains(f.logs.String(), `"user_id":"`+userID+`"`) ||
		!strings.Contains(f.logs.String(), `"request_id":"`) {
		t.Fatalf("logs lack ids: %s", f.logs)
	}
}

// TestReplayConverges replays the recorded sequence with every event three times in shuffled orders:
// the final record is always the in-order one, and the task is stopped by the one room_finished.
func TestReplayConverges(t *testing.T) {
	ref := newFixture(t)
	for _, e := range recorded() {
		ref.send(t, e)
	}
	want := ref.session(t)
	for seed := uint64(0); seed < 200; seed++ {
		f := newFixture(t)
		var all []*livekit.WebhookEvent
		for _, e := range recorded() {
			all = append(all, e, e, e)
		}
		rng := rand.New(rand.NewPCG(seed, 42))
		rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		for _, e := range all {
			if w := f.send(t, e); w.Code != http.StatusOK {
				t.Fatalf("seed %d %s: %d", seed, e.Event, w.Code)
			}
		}
		if got := f.session(t); !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: final state\n%+v\nwant\n%+v", seed, got, want)
		}
		if st := f.agent.stops(); len(st) != 1 {
			t.Fatalf("seed %d: %d stops", seed, len(st))
		}
	}
}

func TestLateEventsNeverReopen(t *testing.T) {
	f := newFixture(t)
	fin := ev("EV_fin", EventRoomFinished, created.Add(100*time.Second), nil)
	f.send(t, fin)
	f.send(t, ev("EV_rs", EventRoomStarted, created.Add(time.Second), nil))
	f.send(t, ev("EV_join", EventParticipantJoined, created.Add(40*time.Second), studentP(created.Add(40*time.Second))))
	f.send(t, ev("EV_left", EventParticipantLeft, created.Add(90*time.Second), studentP(created.Add(40*time.Second))))
	s := f.session(t)
	if s.Status != sessions.StatusEnded || s.DurationSeconds != 60 || !s.StudentJoinedAt.Equal(created.Add(40*time.Second)) {
		t.Fatalf("late events: %+v", s)
	}
	// The late join is also a student in the room of a closed session: whatever room has that name now
	// is deleted (usually a no-op: it is gone). The late participant_left deletes nothing.
	if len(f.rooms.deleted) != 1 {
		t.Fatalf("deleted %v, want the one delete of the late join", f.rooms.deleted)
	}
}

func TestIgnoredEvents(t *testing.T) {
	f := newFixture(t)
	before := f.session(t)
	other := &livekit.WebhookEvent{Id: "EV_other", Event: EventRoomFinished, Room: &livekit.Room{Sid: "RM_x", Name: "someone-elses-room"}, CreatedAt: created.Unix()}
	older := ev("EV_older", EventRoomFinished, created, nil)
	older.Room.Sid = "RM_older"
	unknown := &livekit.WebhookEvent{Id: "EV_nosess", Event: EventRoomFinished, Room: &livekit.Room{Sid: "RM_y", Name: sessions.RoomName("no-such-session")}, CreatedAt: created.Unix()}
	track := ev("EV_track", "track_published", created, studentP(created))
	for _, e := range []*livekit.WebhookEvent{other, older, unknown, track} {
		if w := f.send(t, e); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"ignored"`) {
			t.Fatalf("%s: %d %s", e.Id, w.Code, w.Body)
		}
	}
	if got := f.session(t); !reflect.DeepEqual(got, before) || len(f.agent.stops()) != 0 {
		t.Fatalf("ignored events changed things: %+v", got)
	}
	if !strings.Contains(f.logs.String(), `"level":"DEBUG","msg":"webhook for a room that is not ours"`) {
		t.Fatalf("foreign room not logged at debug: %s", f.logs)
	}
	// Duplicates answer 2xx and do nothing.
	fin := ev("EV_fin", EventRoomFinished, created.Add(time.Minute), nil)
	f.send(t, fin)
	if w := f.send(t, fin); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"duplicate"`) {
		t.Fatalf("duplicate: %d %s", w.Code, w.Body)
	}
	if n := len(f.agent.stops()); n != 1 {
		t.Fatalf("%d stops for one event sent twice", n)
	}
}

// TestFailureReleasesClaim: an internal failure answers 5xx and forgets the claim so LiveKit's retry applies.
func TestFailureReleasesClaim(t *testing.T) {
	f := newFixture(t)
	f.agent.fail = errors.New("ecs unavailable")
	fin := ev("EV_fin", EventRoomFinished, created.Add(time.Minute), nil)
	if w := f.send(t, fin); w.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", w.Code)
	}
	f.agent.fail = nil
	if w := f.send(t, fin); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"applied"`) {
		t.Fatalf("retry: %d %s", w.Code, w.Body)
	}
	if s := f.session(t); s.Status != sessions.StatusEnded || len(f.agent.stops()) != 1 {
		t.Fatalf("after retry: %+v stops %v", s, f.agent.stops())
	}
	// Same for the delete of a ghost room.
	g := newFixture(t)
	g.rooms.fail = errors.New("livekit down")
	ghost := ev("EV_ghost", EventParticipantJoined, created.Add(time.Minute), studentP(created.Add(time.Minute)))
	ghost.Room.Sid = "RM_ghost"
	if w := g.send(t, ghost); w.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", w.Code)
	}
	g.rooms.fail = nil
	if w := g.send(t, ghost); w.Code != http.StatusOK || len(g.rooms.deleted) != 1 {
		t.Fatalf("retry: %d deleted %v", w.Code, g.rooms.deleted)
	}
}

func departed(p *livekit.ParticipantInfo, reason livekit.DisconnectReason) *livekit.ParticipantInfo {
	p.DisconnectReason = reason
	return p
}

// TestStudentDepartureKeepsRoom: whatever the reason, a student leaving does not delete the room. A
// replaced connection (reload, second tab, network switch: DUPLICATE_IDENTITY) means the student is
// already back; any other departure gets LiveKit's departure timeout to come back.
func TestStudentDepartureKeepsRoom(t *testing.T) {
	reasons := []livekit.DisconnectReason{
		livekit.DisconnectReason_DUPLICATE_IDENTITY, livekit.DisconnectReason_CLIENT_INITIATED,
		livekit.DisconnectReason_CONNECTION_TIMEOUT, livekit.DisconnectReason_SIGNAL_CLOSE, livekit.DisconnectReason_UNKNOWN_REASON,
	}
	for _, kind := range []string{EventParticipantLeft, EventParticipantAbort} {
		for _, reason := range reasons {
			t.Run(kind+"/"+reason.String(), func(t *testing.T) {
				f := newFixture(t)
				f.send(t, ev("EV_j", EventParticipantJoined, created.Add(time.Second), studentP(created.Add(time.Second))))
				w := f.send(t, ev("EV_l", kind, created.Add(time.Minute), departed(studentP(created.Add(time.Second)), reason)))
				if w.Code != http.StatusOK || len(f.rooms.deleted) != 0 {
					t.Fatalf("%d %s, deleted %v", w.Code, w.Body, f.rooms.deleted)
				}
				if s := f.session(t); s.Status != sessions.StatusActive || !s.EndedAt.IsZero() || len(f.agent.stops()) != 0 {
					t.Fatalf("session after the departure: %+v stops %v", s, f.agent.stops())
				}
				if !strings.Contains(f.logs.String(), `"disconnect_reason":"`+reason.String()+`"`) {
					t.Fatalf("departure not logged with its reason: %s", f.logs)
				}
			})
		}
	}
}

// TestRejoinWithinGrace: the student leaves and joins again (a new participant sid) before LiveKit's
// departure timeout; the session stays active with its first join time, and ends only when the room
// finishes.
func TestRejoinWithinGrace(t *testing.T) {
	f := newFixture(t)
	first := studentP(created.Add(10 * time.Second))
	again := studentP(created.Add(75 * time.Second))
	again.Sid = "PA_s2"
	for _, e := range []*livekit.WebhookEvent{
		ev("EV_j1", EventParticipantJoined, created.Add(10*time.Second), first),
		ev("EV_l1", EventParticipantLeft, created.Add(70*time.Second), departed(first, livekit.DisconnectReason_CLIENT_INITIATED)),
		ev("EV_j2", EventParticipantJoined, created.Add(75*time.Second), again),
	} {
		if w := f.send(t, e); w.Code != http.StatusOK {
			t.Fatalf("%s: %d", e.Id, w.Code)
		}
	}
	s := f.session(t)
	if s.Status != sessions.StatusActive || !s.StudentJoinedAt.Equal(created.Add(10*time.Second)) || len(f.rooms.deleted) != 0 {
		t.Fatalf("after rejoin: %+v deleted %v", s, f.rooms.deleted)
	}
	f.send(t, ev("EV_fin", EventRoomFinished, created.Add(130*time.Second), nil))
	if s := f.session(t); s.Status != sessions.StatusEnded || s.DurationSeconds != 120 || len(f.agent.stops()) != 1 {
		t.Fatalf("after room finished: %+v stops %v", s, f.agent.stops())
	}
}

// TestGhostRoomDeleted: a student joining a room with the session's name that is not the session's
// room (LiveKit auto-created it on a join with a token from before the end) gets it deleted, in either
// order of that join and the old room's room_finished; the ghost's events never touch the record.
func TestGhostRoomDeleted(t *testing.T) {
	ghostJoin := func(id string) *livekit.WebhookEvent {
		e := ev(id, EventParticipantJoined, created.Add(5*time.Minute), studentP(created.Add(5*time.Minute)))
		e.Room.Sid = "RM_ghost"
		e.Participant.Sid = "PA_ghost"
		return e
	}
	ghostFinished := ev("EV_ghost_fin", EventRoomFinished, created.Add(6*time.Minute), nil)
	ghostFinished.Room.Sid = "RM_ghost"
	ghostAgent := ev("EV_ghost_agent", EventParticipantJoined, created.Add(5*time.Minute), agentP("agent-"+sessionID, created.Add(5*time.Minute)))
	ghostAgent.Room.Sid = "RM_ghost"

	t.Run("session already closed", func(t *testing.T) {
		f := newFixture(t)
		f.send(t, ev("EV_j", EventParticipantJoined, created.Add(30*time.Second), studentP(created.Add(30*time.Second))))
		f.send(t, ev("EV_fin", EventRoomFinished, created.Add(4*time.Minute), nil))
		closed := f.session(t)
		if w := f.send(t, ghostJoin("EV_ghost")); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"applied"`) {
			t.Fatalf("ghost join: %d %s", w.Code, w.Body)
		}
		if len(f.rooms.deleted) != 1 || f.rooms.deleted[0] != closed.RoomName {
			t.Fatalf("deleted %v", f.rooms.deleted)
		}
		for _, e := range []*livekit.WebhookEvent{ghostAgent, ghostFinished} {
			if w := f.send(t, e); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"ignored"`) {
				t.Fatalf("%s: %d %s", e.Id, w.Code, w.Body)
			}
		}
		if got := f.session(t); !reflect.DeepEqual(got, closed) || len(f.agent.stops()) != 1 {
			t.Fatalf("ghost events changed the record:\n%+v\nwas\n%+v", got, closed)
		}
	})
	t.Run("old room's room_finished not yet handled", func(t *testing.T) {
		f := newFixture(t)
		f.send(t, ev("EV_j", EventParticipantJoined, created.Add(30*time.Second), studentP(created.Add(30*time.Second))))
		if w := f.send(t, ghostJoin("EV_ghost")); w.Code != http.StatusOK || len(f.rooms.deleted) != 1 {
			t.Fatalf("ghost join on an open session: %d deleted %v", w.Code, f.rooms.deleted)
		}
		if s := f.session(t); s.Status != sessions.StatusActive || !s.StudentJoinedAt.Equal(created.Add(30*time.Second)) {
			t.Fatalf("ghost join changed the record: %+v", s)
		}
		f.send(t, ev("EV_fin", EventRoomFinished, created.Add(4*time.Minute), nil))
		if s := f.session(t); s.Status != sessions.StatusEnded || s.DurationSeconds != 210 {
			t.Fatalf("the old room's room_finished: %+v", s)
		}
	})
	t.Run("closed before the student ever joined", func(t *testing.T) {
		f := newFixture(t)
		f.send(t, ev("EV_fin", EventRoomFinished, created.Add(4*time.Minute), nil))
		f.send(t, ghostJoin("EV_ghost"))
		if s := f.session(t); len(f.rooms.deleted) != 1 || !s.StudentJoinedAt.IsZero() || s.DurationSeconds != 0 {
			t.Fatalf("deleted %v, session %+v", f.rooms.deleted, s)
		}
	})
}

func BenchmarkWebhook(b *testing.B) {
	f := newFixture(b)
	f.h.Log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	joined := studentP(created.Add(time.Second))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		e := ev(fmt.Sprintf("EV_%d", i), EventParticipantJoined, created.Add(time.Second), joined)
		raw := body(b, e)
		authz := sign(b, apiKey, apiSecret, raw)
		b.StartTimer()
		if w := post(f.h, raw, authz); w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

type blockingLauncher struct{ fakeLauncher }

func (b *blockingLauncher) Stop(ctx context.Context, task, reason string) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestDeadlineLeavesTimeToReleaseClaim: a step that hangs is cut off before the request's (the
// Lambda's) deadline, so the claim is released and LiveKit's retry applies the event.
func TestDeadlineLeavesTimeToReleaseClaim(t *testing.T) {
	f := newFixture(t)
	f.h.Agents = &blockingLauncher{}
	fin := ev("EV_fin", EventRoomFinished, created.Add(time.Minute), nil)
	raw := body(t, fin)
	ctx, cancel := context.WithTimeout(context.Background(), releaseReserve+300*time.Millisecond)
	defer cancel()
	r := httptest.NewRequest(http.MethodPost, "/livekit/webhook", bytes.NewReader(raw)).WithContext(ctx)
	r.Header.Set("Authorization", sign(t, apiKey, apiSecret, raw))
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	if w.Code != http.StatusInternalServerError || ctx.Err() != nil {
		t.Fatalf("status %d (request context: %v), want 500 before the deadline", w.Code, ctx.Err())
	}
	f.h.Agents = f.agent
	if w := f.send(t, fin); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"applied"`) || len(f.agent.stops()) != 1 {
		t.Fatalf("retry: %d %s stops %v", w.Code, w.Body, f.agent.stops())
	}
}
