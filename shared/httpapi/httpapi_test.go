package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"counselvideo/shared/agents"
	"counselvideo/shared/auth"
	"counselvideo/shared/categories"
	"counselvideo/shared/rooms"
	"counselvideo/shared/service"
	"counselvideo/shared/sessions"
)

const (
	catID    = "0b6a7c1e-3f4d-4a5b-9c8d-7e6f5a4b3c2d"
	origin   = "https://app.example.com"
	lkKey    = "devkey"
	lkSecret = "secret-secret-secret-secret-secret"
)

// fakeAuth accepts "Bearer <student id>"; "Bearer panic" panics; "Bearer nokeys" finds the keys
// unavailable.
type fakeAuth struct{}

func (fakeAuth) Authenticate(_ context.Context, header string) (auth.Student, error) {
	id, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || id == "" {
		return auth.Student{}, auth.ErrUnauthenticated
	}
	if id == "panic" {
		panic("authenticator exploded")
	}
	if id == "nokeys" {
		return auth.Student{}, fmt.Errorf("%w: the JWKS at https://cognito.internal/x did not load", auth.ErrKeysUnavailable)
	}
	return auth.Student{ID: id, Name: "name-" + id}, nil
}

type fakeCategories struct {
	list  []categories.Category
	err   error
	asked []string
	mu    sync.Mutex
}

func (f *fakeCategories) GetEnabled(_ context.Context, id string) (categories.Category, error) {
	f.mu.Lock()
	f.asked = append(f.asked, id)
	f.mu.Unlock()
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
	return f.list, f.err
}

type fakeRooms struct {
	mu      sync.Mutex
	deleted []string
}

func (f *fakeRooms) CreateRoom(_ context.Context, name string, md rooms.Metadata) (string, error) {
	return "RM_" + md.SessionID, nil
}

func (f *fakeRooms) DeleteRoom(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, name)
	return nil
}

func (f *fakeRooms) RoomExists(context.Context, string) (bool, error) { return true, nil }

func (f *fakeRooms) Participants(context.Context, string) ([]rooms.Participant, error) {
	return nil, nil
}

// fakeLauncher starts nothing; onLaunch, when set, runs during the launch.
type fakeLauncher struct{ onLaunch func(agents.Session) }

func (f *fakeLauncher) Launch(_ context.Context, s agents.Session) (string, error) {
	if f.onLaunch != nil {
		f.onLaunch(s)
	}
	return "task-" + s.SessionID, nil
}
func (*fakeLauncher) Stop(context.Context, string, string) error { return nil }

type fixture struct {
	agents *fakeLauncher
	api    *API
	h      http.Handler
	store  *sessions.MemoryStore
	cats   *fakeCategories
	rooms  *fakeRooms
	logs   *bytes.Buffer
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	f := &fixture{
		store: sessions.NewMemoryStore(),
		cats: &fakeCategories{list: []categories.Category{
			{ID: catID, Name: "Academic", Description: "Courses", SystemPrompt: "secret prompt", Enabled: true, SortOrder: 10},
		}},
		rooms:  &fakeRooms{},
		agents: &fakeLauncher{},
		logs:   &bytes.Buffer{},
	}
	svc := &service.Service{
		Categories: f.cats, Sessions: f.store, Rooms: f.rooms, Agents: f.agents,
		MintToken: func(room, identity, name string, ttl time.Duration) (string, error) {
			return rooms.StudentToken(lkKey, lkSecret, room, identity, name, ttl)
		},
		PublicURL: "wss://lk.example.com", TokenTTL: 15 * time.Minute, LockTTL: time.Hour,
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}
	f.api = &API{Service: svc, Auth: fakeAuth{}, Log: slog.New(slog.NewJSONHandler(f.logs, nil)), AllowedOrigins: []string{origin}}
	f.h = f.api.Handler()
	return f
}

type req struct {
	method, path, body string
	headers            map[string]string
}

func (f *fixture) do(r req) *httptest.ResponseRecorder {
	hr := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
	for k, v := range r.headers {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, hr)
	return w
}

// createReq is an authenticated create-room request for student.
func createReq(student, body string) req {
	return req{http.MethodPost, "/api/v1/video/create-room", body,
		map[string]string{"Authorization": "Bearer " + student, "Content-Type": "application/json"}}
}

var generatedID = regexp.MustCompile(`^[0-9a-f]{24}$`)

// errorOf checks the one error shape and returns its detail.
func errorOf(t *testing.T, w *httptest.ResponseRecorder, status int, code string) ErrorDetail {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %s", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var raw map[string]map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil || len(raw) != 1 || raw["error"] == nil {
		t.Fatalf("not the error shape: %s (%v)", w.Body, err)
	}
	var body ErrorBody
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	d := body.Error
	if d.Code != code {
		t.Errorf("code %q, want %q (%s)", d.Code, code, w.Body)
	}
	if d.Message == "" {
		t.Error("empty message")
	}
	if d.RequestID == "" || d.RequestID != w.Header().Get("X-Request-Id") {
		t.Errorf("request_id %q, X-Request-Id %q", d.RequestID, w.Header().Get("X-Request-Id"))
	}
	return d
}

func TestErrorStatuses(t *testing.T) {
	f := newFixture(t)
	big := `{"counselor_category":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	for _, tc := range []struct {
		name   string
		r      req
		status int
		code   string
		field  string
	}{
		{"malformed JSON", createReq("s1", `{"counselor_category":`), 400, CodeBadRequest, ""},
		{"JSON array", createReq("s1", `[]`), 400, CodeBadRequest, ""},
		{"empty body", createReq("s1", ``), 400, CodeBadRequest, ""},
		{"no token", req{"POST", "/api/v1/video/create-room", `{}`, map[string]string{"Content-Type": "application/json"}}, 401, CodeUnauthorized, ""},
		{"no token on list", req{"GET", "/api/v1/counselor-categories", "", nil}, 401, CodeUnauthorized, ""},
		{"unknown route", req{"GET", "/api/v1/nothing", "", nil}, 404, CodeNotFound, ""},
		{"unknown category", createReq("s1", `{"counselor_category":"00000000-0000-4000-8000-000000000000"}`), 404, CodeCategoryNotFound, "counselor_category"},
		{"unknown session", req{"GET", "/api/v1/video/sessions/00000000-0000-4000-8000-000000000000", "", map[string]string{"Authorization": "Bearer s1"}}, 404, CodeSessionNotFound, ""},
		{"non-uuid session", req{"POST", "/api/v1/video/sessions/abc/end", "", map[string]string{"Authorization": "Bearer s1"}}, 404, CodeSessionNotFound, ""},
		{"GET create-room", req{"GET", "/api/v1/video/create-room", "", map[string]string{"Authorization": "Bearer s1"}}, 405, CodeMethodNotAllowed, ""},
		{"DELETE categories", req{"DELETE", "/api/v1/counselor-categories", "", nil}, 405, CodeMethodNotAllowed, ""},
		{"too large", createReq("s1", big), 413, CodePayloadTooLarge, ""},
		{"text/plain", req{"POST", "/api/v1/video/create-room", `{}`, map[string]string{"Authorization": "Bearer s1", "Content-Type": "text/plain"}}, 415, CodeUnsupportedMedia, ""},
		{"no content type", req{"POST", "/api/v1/video/create-room", `{}`, map[string]string{"Authorization": "Bearer s1"}}, 415, CodeUnsupportedMedia, ""},
		{"missing category", createReq("s1", `{}`), 422, CodeValidation, "counselor_category"},
		{"null category", createReq("s1", `{"counselor_category":null}`), 422, CodeValidation, "counselor_category"},
		{"blank category", createReq("s1", `{"counselor_category":"  "}`), 422, CodeValidation, "counselor_category"},
		{"non-uuid category", createReq("s1", `{"counselor_category":"academic"}`), 422, CodeValidation, "counselor_category"},
		{"braced uuid", createReq("s1", `{"counselor_category":"{`+catID+`}"}`), 422, CodeValidation, "counselor_category"},
		{"urn uuid", createReq("s1", `{"counselor_category":"urn:uuid:`+catID+`"}`), 422, CodeValidation, "counselor_category"},
		{"wrong type", createReq("s1", `{"counselor_category":42}`), 422, CodeValidation, "counselor_category"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := f.do(tc.r)
			d := errorOf(t, w, tc.status, tc.code)
			if d.Field != tc.field {
				t.Errorf("field %q, want %q", d.Field, tc.field)
			}
			if tc.status == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tc.status == 405 && w.Header().Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	if open, _ := f.store.ListOpen(context.Background(), time.Now().Add(time.Hour), 0); len(open) != 0 {
		t.Errorf("failed requests created sessions: %+v", open)
	}
	if w := f.do(req{"GET", "/api/v1/video/create-room", "", nil}); w.Header().Get("Allow") != "POST" {
		t.Errorf("Allow %q", w.Header().Get("Allow"))
	}
}

// TestAuthUnavailableIs503: when the keys cannot be loaded every student route answers 503 with
// Retry-After (a 401 would sign the student out), without internal detail.
func TestAuthUnavailableIs503(t *testing.T) {
	f := newFixture(t)
	for _, r := range []req{
		createReq("nokeys", `{"counselor_category":"`+catID+`"}`),
		{"GET", "/api/v1/counselor-categories", "", map[string]string{"Authorization": "Bearer nokeys"}},
		{"GET", "/api/v1/video/sessions/00000000-0000-4000-8000-000000000000", "", map[string]string{"Authorization": "Bearer nokeys"}},
		{"POST", "/api/v1/video/sessions/00000000-0000-4000-8000-000000000000/end", "", map[string]string{"Authorization": "Bearer nokeys"}},
	} {
		w := f.do(r)
		errorOf(t, w, http.StatusServiceUnavailable, CodeAuthUnavailable)
		if w.Header().Get("Retry-After") != "5" || w.Header().Get("WWW-Authenticate") != "" {
			t.Errorf("%s %s: Retry-After %q WWW-Authenticate %q", r.method, r.path, w.Header().Get("Retry-After"), w.Header().Get("WWW-Authenticate"))
		}
		if strings.Contains(w.Body.String(), "cognito.internal") {
			t.Errorf("detail leaked: %s", w.Body)
		}
	}
}

// TestSessionClosedDuringSetupIs409: the student ended the session while this request set it up.
func TestSessionClosedDuringSetupIs409(t *testing.T) {
	f := newFixture(t)
	f.agents.onLaunch = func(s agents.Session) {
		if _, err := f.store.End(context.Background(), s.SessionID, sessions.Ending{Status: sessions.StatusEnded, At: time.Now(), Reason: service.ReasonEndedByStudent}); err != nil {
			t.Error(err)
		}
	}
	errorOf(t, f.do(createReq("s1", `{"counselor_category":"`+catID+`"}`)), http.StatusConflict, CodeSessionClosed)
}

func TestInternalErrorHidesCause(t *testing.T) {
	f := newFixture(t)
	f.cats.err = errors.New("dynamodb: AccessDeniedException arn:aws:iam::123:role/x")
	for _, r := range []req{
		createReq("s1", `{"counselor_category":"`+catID+`"}`),
		{"GET", "/api/v1/counselor-categories", "", map[string]string{"Authorization": "Bearer s1"}},
	} {
		w := f.do(r)
		d := errorOf(t, w, 500, CodeInternal)
		if strings.Contains(w.Body.String(), "AccessDenied") {
			t.Errorf("cause leaked: %s", w.Body)
		}
		if !strings.Contains(f.logs.String(), "AccessDenied") || !strings.Contains(f.logs.String(), d.RequestID) {
			t.Errorf("cause or request id not logged: %s", f.logs)
		}
	}
}

func TestPanicGives500JSON(t *testing.T) {
	f := newFixture(t)
	w := f.do(createReq("panic", `{"counselor_category":"`+catID+`"}`))
	d := errorOf(t, w, 500, CodeInternal)
	if !strings.Contains(f.logs.String(), "authenticator exploded") || !strings.Contains(f.logs.String(), d.RequestID) {
		t.Errorf("panic not logged with the request id: %s", f.logs)
	}
	// The server keeps serving.
	if w := f.do(createReq("s1", `{"counselor_category":"`+catID+`"}`)); w.Code != 200 {
		t.Errorf("after a panic: %d %s", w.Code, w.Body)
	}
}

func TestRequestID(t *testing.T) {
	f := newFixture(t)
	var platform string
	f.api.RequestIDFrom = func(*http.Request) string { return platform }
	f.h = f.api.Handler()
	for _, tc := range []struct {
		from string
		kept bool
	}{
		{"c0ffee-1234.abc_DEF=", true},
		{"Root=1-abc", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"", false},
		{"has space", false},
		{"new\nline", false},
		{`"><script>`, false},
		{"ünïcode", false},
	} {
		platform = tc.from
		w := f.do(req{"GET", "/api/v1/nothing", "", nil})
		d := errorOf(t, w, 404, CodeNotFound)
		got := w.Header().Get("X-Request-Id")
		if tc.kept && got != tc.from {
			t.Errorf("safe id %q replaced by %q", tc.from, got)
		}
		if !tc.kept && (got == tc.from || !generatedID.MatchString(got)) {
			t.Errorf("unsafe id %q gave %q", tc.from, got)
		}
		if d.RequestID != got {
			t.Errorf("body %q header %q", d.RequestID, got)
		}
	}
	// Without RequestIDFrom every request gets its own id, also on success.
	f.api.RequestIDFrom = nil
	f.h = f.api.Handler()
	a := f.do(req{"GET", "/api/v1/counselor-categories", "", map[string]string{"Authorization": "Bearer s1"}})
	b := f.do(req{"GET", "/api/v1/counselor-categories", "", map[string]string{"Authorization": "Bearer s1"}})
	ida, idb := a.Header().Get("X-Request-Id"), b.Header().Get("X-Request-Id")
	if !generatedID.MatchString(ida) || !generatedID.MatchString(idb) || ida == idb {
		t.Errorf("generated ids %q %q", ida, idb)
	}
}

func TestCORS(t *testing.T) {
	f := newFixture(t)
	list := func(o string) req {
		return req{"GET", "/api/v1/counselor-categories", "", map[string]string{"Authorization": "Bearer s1", "Origin": o}}
	}
	w := f.do(list(origin))
	if w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != origin ||
		!slices.Contains(w.Header().Values("Vary"), "Origin") || w.Header().Get("Access-Control-Expose-Headers") != "X-Request-Id, Retry-After" {
		t.Errorf("allowed origin: %d %v", w.Code, w.Header())
	}
	for _, o := range []string{"https://evil.example.com", "https://app.example.com.evil.com", "null", ""} {
		w := f.do(list(o))
		for k := range w.Header() {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("origin %q got %s", o, k)
			}
		}
	}
	// Errors carry CORS headers too, so the browser can read them.
	if w := f.do(req{"POST", "/api/v1/video/create-room", "{}", map[string]string{"Origin": origin}}); w.Code != 401 || w.Header().Get("Access-Control-Allow-Origin") != origin {
		t.Errorf("401 for allowed origin: %d %v", w.Code, w.Header())
	}

	preflight := func(o string) *httptest.ResponseRecorder {
		return f.do(req{"OPTIONS", "/api/v1/video/create-room", "", map[string]string{
			"Origin": o, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"}})
	}
	w = preflight(origin)
	if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
		t.Errorf("preflight: %d %q", w.Code, w.Body)
	}
	h := w.Header()
	if h.Get("Access-Control-Allow-Origin") != origin || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Content-Type") ||
		h.Get("Access-Control-Max-Age") == "" {
		t.Errorf("preflight headers: %v", h)
	}
	if w := preflight("https://evil.example.com"); w.Code == http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from a foreign origin: %d %v", w.Code, w.Header())
	}
	// No allowed origins: nothing cross-origin.
	f.api.AllowedOrigins = nil
	f.h = f.api.Handler()
	if w := preflight(origin); w.Code == http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight with no allowed origins: %d %v", w.Code, w.Header())
	}
}

func TestCreateRoomAndSessionRoutes(t *testing.T) {
	f := newFixture(t)
	// Either route; an upper-case UUID and a charset parameter are accepted.
	r := createReq("s1", `{"counselor_category":"`+strings.ToUpper(catID)+`","extra":1}`)
	r.headers["Content-Type"] = "application/json; charset=utf-8"
	r.path = "/api/video/create-room"
	w := f.do(r)
	if w.Code != 200 {
		t.Fatalf("create-room: %d %s", w.Code, w.Body)
	}
	if f.cats.asked[len(f.cats.asked)-1] != catID {
		t.Errorf("category looked up as %q", f.cats.asked[len(f.cats.asked)-1])
	}
	var created service.Created
	if err := json.Unmarshal(w.Body.Bytes(), &created); err != nil {
		t.Fatal(err)
	}
	if created.RoomURL != "wss://lk.example.com" || created.RoomName != "video-"+created.SessionID || created.Status != "starting" ||
		created.AccessToken == "" || created.Resumed || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("created %+v headers %v", created, w.Header())
	}
	again := f.do(createReq("s1", `{"counselor_category":"`+catID+`"}`))
	var resumed service.Created
	_ = json.Unmarshal(again.Body.Bytes(), &resumed)
	if again.Code != 200 || !resumed.Resumed || resumed.SessionID != created.SessionID {
		t.Errorf("second create-room: %d %+v", again.Code, resumed)
	}

	path := "/api/v1/video/sessions/" + created.SessionID
	if w := f.do(req{"GET", path, "", map[string]string{"Authorization": "Bearer s2"}}); w.Code != 404 {
		t.Errorf("someone else's session: %d", w.Code)
	}
	if w := f.do(req{"POST", path + "/end", "", map[string]string{"Authorization": "Bearer s2"}}); w.Code != 404 || slices.Contains(f.rooms.deleted, "video-"+created.SessionID) {
		t.Errorf("someone else ends: %d deleted %v", w.Code, f.rooms.deleted)
	}
	w = f.do(req{"GET", path, "", map[string]string{"Authorization": "Bearer s1"}})
	var got map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &got)
	if w.Code != 200 || got["session_id"] != created.SessionID || got["status"] != "starting" || got["category_name"] != "Academic" {
		t.Errorf("get session: %d %s", w.Code, w.Body)
	}
	for _, hidden := range []string{"user_id", "UserID", "room_sid", "agent_task_id"} {
		if _, ok := got[hidden]; ok {
			t.Errorf("session JSON exposes %s: %s", hidden, w.Body)
		}
	}
	if w := f.do(req{"POST", path + "/end", "", map[string]string{"Authorization": "Bearer s1"}}); w.Code != http.StatusAccepted ||
		!slices.Contains(f.rooms.deleted, "video-"+created.SessionID) || !strings.Contains(w.Body.String(), `"status":"ended"`) {
		t.Errorf("end: %d deleted %v", w.Code, f.rooms.deleted)
	}
}

func TestListCategoriesView(t *testing.T) {
	f := newFixture(t)
	f.cats.list = []categories.Category{
		{ID: "c", Name: "Zeta", Description: "z", SystemPrompt: "PROMPT-Z", Enabled: true, SortOrder: 30},
		{ID: "a", Name: "Alpha", Description: "a", SystemPrompt: "PROMPT-A", Enabled: true, SortOrder: 10},
	}
	w := f.do(req{"GET", "/api/v1/counselor-categories", "", map[string]string{"Authorization": "Bearer s1"}})
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), "PROMPT") || strings.Contains(w.Body.String(), "sort_order") {
		t.Errorf("internal fields exposed: %s", w.Body)
	}
	var body struct {
		Categories []map[string]string `json:"categories"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	want := []map[string]string{{"id": "c", "name": "Zeta", "description": "z"}, {"id": "a", "name": "Alpha", "description": "a"}}
	if fmt.Sprint(body.Categories) != fmt.Sprint(want) {
		t.Errorf("categories %v, want %v", body.Categories, want)
	}
	f.cats.list = nil
	w = f.do(req{"GET", "/api/v1/counselor-categories", "", map[string]string{"Authorization": "Bearer s1"}})
	if strings.TrimSpace(w.Body.String()) != `{"categories":[]}` {
		t.Errorf("empty list: %s", w.Body)
	}
}

// BenchmarkCreateRoom runs the whole create-room request path: routing, JSON decode, authentication
// (fake), the service with fakes for LiveKit and ECS and the in-memory session store, a real LiveKit
// token signature, and the JSON response. Every iteration is a new student, so a new session.
func BenchmarkCreateRoom(b *testing.B) {
	f := newFixture(b)
	f.api.Log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	f.h = f.api.Handler()
	body := []byte(`{"counselor_category":"` + catID + `"}`)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/video/create-room", bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer student-"+fmt.Sprint(i))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// TestSafetyFlagIsNotShownToTheStudent: a session the agent flagged for a safety concern reads and
// ends the same for its student; the flag is for the counseling staff only (docs/architecture.md).
func TestSafetyFlagIsNotShownToTheStudent(t *testing.T) {
	f := newFixture(t)
	w := f.do(createReq("s1", `{"counselor_category":"`+catID+`"}`))
	var created service.Created
	if err := json.Unmarshal(w.Body.Bytes(), &created); err != nil || w.Code != 200 {
		t.Fatalf("create-room: %d %s", w.Code, w.Body)
	}
	s, err := f.store.Get(context.Background(), created.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	s.SafetyFlag = &sessions.SafetyFlag{ID: "f1", Kind: "self_harm", Severity: "imminent", Source: "model", At: time.Now().UTC()}
	s.SafetyFlagCount = 3
	f.store.Put(s)
	path := "/api/v1/video/sessions/" + created.SessionID
	for _, r := range []req{
		{"GET", path, "", map[string]string{"Authorization": "Bearer s1"}},
		{"POST", path + "/end", "", map[string]string{"Authorization": "Bearer s1"}},
	} {
		w := f.do(r)
		if w.Code/100 != 2 {
			t.Fatalf("%s %s: %d %s", r.method, r.path, w.Code, w.Body)
		}
		for _, hidden := range []string{"safety", "self_harm", "imminent"} {
			if strings.Contains(w.Body.String(), hidden) {
				t.Errorf("%s %s shows the student %q: %s", r.method, r.path, hidden, w.Body)
			}
		}
	}
	if s, _ := f.store.Get(context.Background(), created.SessionID); s.SafetyFlag == nil || s.SafetyFlagCount != 3 {
		t.Errorf("ending the session lost the flag: %+v", s)
	}
}
