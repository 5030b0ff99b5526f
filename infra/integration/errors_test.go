package integration

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"counselvideo/infra/localstack"
	"counselvideo/shared/sessions"
)

// TestCreateRoomBadRequests: each malformed request gets its status and the one error shape.
func TestCreateRoomBadRequests(t *testing.T) {
	api := startAPI(t, nil)
	st := newStudent(t)
	url := api.URL + "/api/v1/video/create-room"
	cases := []struct {
		name, method, path, contentType, body string
		status                                int
		code, field                           string
	}{
		{"malformed json", "POST", "/api/v1/video/create-room", "application/json", `{"counselor_category":`, 400, "bad_request", ""},
		{"missing category", "POST", "/api/v1/video/create-room", "application/json", `{}`, 422, "validation_failed", "counselor_category"},
		{"category wrong type", "POST", "/api/v1/video/create-room", "application/json", `{"counselor_category": 7}`, 422, "validation_failed", "counselor_category"},
		{"category not a uuid", "POST", "/api/v1/video/create-room", "application/json", `{"counselor_category":"academic"}`, 422, "validation_failed", "counselor_category"},
		{"unknown category", "POST", "/api/v1/video/create-room", "application/json", `{"counselor_category":"00000000-0000-4000-8000-000000000000"}`, 404, "category_not_found", "counselor_category"},
		{"disabled category", "POST", "/api/v1/video/create-room", "application/json", `{"counselor_category":"` + disabledCategory(t).ID + `"}`, 404, "category_not_found", "counselor_category"},
		{"body too large", "POST", "/api/v1/video/create-room", "application/json", `{"counselor_category":"` + strings.Repeat("a", 17<<10) + `"}`, 413, "payload_too_large", ""},
		{"not json", "POST", "/api/v1/video/create-room", "text/plain", `counselor_category=x`, 415, "unsupported_media_type", ""},
		{"no content type", "POST", "/api/v1/video/create-room", "", `{}`, 415, "unsupported_media_type", ""},
		{"unknown route", "GET", "/api/v1/nothing-here", "", ``, 404, "not_found", ""},
		{"wrong method", "GET", "/api/v1/video/create-room", "", ``, 405, "method_not_allowed", ""},
		{"session not found", "GET", "/api/v1/video/sessions/00000000-0000-4000-8000-000000000000", "", ``, 404, "session_not_found", ""},
		{"session id not a uuid", "GET", "/api/v1/video/sessions/nope", "", ``, 404, "session_not_found", ""},
	}
	_ = url
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, c.method, api.URL+c.path, st.tokens.ID, c.contentType, strings.NewReader(c.body))
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			e := r.errorBody(t)
			if e.Code != c.code || e.Field != c.field || e.RequestID != r.header.Get("X-Request-Id") {
				t.Fatalf("error %+v (X-Request-Id %q)", e, r.header.Get("X-Request-Id"))
			}
			if c.status == 405 && r.header.Get("Allow") != "POST" {
				t.Fatalf("Allow %q", r.header.Get("Allow"))
			}
		})
	}
	// The spec's original path serves the same endpoint.
	r := do(t, "POST", api.URL+"/api/video/create-room", st.tokens.ID, "application/json", strings.NewReader(`{}`))
	if r.status != 422 {
		t.Fatalf("/api/video/create-room: %d", r.status)
	}
}

func latestSession(t *testing.T, userID string) sessions.Session {
	t.Helper()
	list, err := sessionStore().ListByUser(context.Background(), userID, 1)
	if err != nil || len(list) == 0 {
		t.Fatalf("no session for %s (%v)", userID, err)
	}
	return list[0]
}

func assertInternalError(t *testing.T, r response) {
	t.Helper()
	if r.status != http.StatusInternalServerError {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	e := r.errorBody(t)
	if e.Code != "internal_error" {
		t.Fatalf("code %q", e.Code)
	}
	body := strings.ToLower(string(r.body))
	for _, leak := range []string{"livekit", "dial", "ecs", "dynamodb", "127.0.0.1", "capacity", "secret"} {
		if strings.Contains(body, leak) {
			t.Fatalf("500 body leaks %q: %s", leak, r.body)
		}
	}
}

// TestCreateRoomLiveKitDown: nothing is launched, the session is failed, and the student can retry.
func TestCreateRoomLiveKitDown(t *testing.T) {
	port, _ := localstack.FreePort()
	api := startAPI(t, map[string]string{"LIVEKIT_URL": "http://127.0.0.1:" + strconv.Itoa(port)})
	st := newStudent(t)
	cat := enabledCategory(t)
	before := len(env.ecs.RunTasks())

	r, _ := createRoom(t, api, st.tokens.ID, cat.ID)
	assertInternalError(t, r)
	sess := latestSession(t, st.sub)
	if sess.Status != sessions.StatusFailed || sess.EndReason != "room creation failed" || sess.EndedAt.IsZero() {
		t.Fatalf("session after failure: %+v", sess)
	}
	if len(env.ecs.RunTasks()) != before {
		t.Fatal("an agent task was launched although the room was not created")
	}
	if !strings.Contains(api.logs.String(), sess.SessionID) {
		t.Fatal("the failure is not logged with the session id")
	}
	// The failed session released the student's lock: a healthy API starts a new session.
	healthy := startAPI(t, nil)
	if r, room := createRoom(t, healthy, st.tokens.ID, cat.ID); r.status != http.StatusOK || room.SessionID == sess.SessionID || room.Resumed {
		t.Fatalf("retry after failure: %d %+v", r.status, room)
	}
}

// TestCreateRoomAgentLaunchFails: ECS refusing the task (error or Failures) deletes the room and
// fails the session.
func TestCreateRoomAgentLaunchFails(t *testing.T) {
	for _, mode := range []string{"failure", "error"} {
		t.Run(mode, func(t *testing.T) {
			api := startAPI(t, nil)
			st := newStudent(t)
			env.ecs.FailRunTask(mode)
			defer env.ecs.FailRunTask("")

			assertLaunchFailedCleanly(t, api, st)
		})
	}
}

// assertLaunchFailedCleanly creates a room whose agent launch fails: 500, session failed, no room
// left, RunTask attempted. It returns the failed session.
func assertLaunchFailedCleanly(t *testing.T, api *apiServer, st student) sessions.Session {
	t.Helper()
	r, _ := createRoom(t, api, st.tokens.ID, enabledCategory(t).ID)
	assertInternalError(t, r)
	sess := latestSession(t, st.sub)
	if sess.Status != sessions.StatusFailed || sess.EndReason != "agent launch failed" {
		t.Fatalf("session: %+v", sess)
	}
	if listRoom(t, sess.RoomName) != nil {
		t.Fatal("room left behind after a failed launch")
	}
	if runTasksFor(sess.SessionID) == 0 {
		t.Fatal("RunTask was never attempted")
	}
	return sess
}
