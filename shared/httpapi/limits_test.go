package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"counselvideo/shared/sessions"
)

func endReq(student, sessionID string) req {
	return req{http.MethodPost, "/api/v1/video/sessions/" + sessionID + "/end", "", map[string]string{"Authorization": "Bearer " + student}}
}

// TestStudentLimitIs429: a student who used the day's sessions gets 429 student_limit_reached, with
// Retry-After (when the oldest counted session leaves the rolling day) and a message to show.
func TestStudentLimitIs429(t *testing.T) {
	f := newFixture(t)
	f.api.Service.MaxDuration = time.Hour
	f.api.Service.Limits = sessions.Limits{DailySessions: 1}
	w := f.do(createReq("s1", `{"counselor_category":"`+catID+`"}`))
	if w.Code != http.StatusOK {
		t.Fatalf("first session: %d %s", w.Code, w.Body)
	}
	var created struct {
		SessionID          string `json:"session_id"`
		MaxDurationSeconds int64  `json:"max_duration_seconds"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &created); err != nil {
		t.Fatal(err)
	}
	if created.MaxDurationSeconds != 3600 {
		t.Errorf("max_duration_seconds %d, want 3600", created.MaxDurationSeconds)
	}
	if w := f.do(endReq("s1", created.SessionID)); w.Code != http.StatusAccepted {
		t.Fatalf("end: %d %s", w.Code, w.Body)
	}
	w = f.do(createReq("s1", `{"counselor_category":"`+catID+`"}`))
	d := errorOf(t, w, http.StatusTooManyRequests, CodeStudentLimitReached)
	retry, err := strconv.Atoi(w.Header().Get("Retry-After"))
	if err != nil || retry < 86300 || retry > 86400 {
		t.Errorf("Retry-After %q, want about a day", w.Header().Get("Retry-After"))
	}
	if d.Message != "You have reached the limit of 1 session in 24 hours. You can start a new session in 24 h." {
		t.Errorf("message %q", d.Message)
	}
}

// TestCapacityIs503: every slot taken: 503 capacity_reached with Retry-After; the student holding
// an open session still gets it back.
func TestCapacityIs503(t *testing.T) {
	f := newFixture(t)
	f.api.Service.MaxDuration = time.Hour
	f.api.Service.Limits = sessions.Limits{MaxOpenSessions: 1}
	if w := f.do(createReq("s1", `{"counselor_category":"`+catID+`"}`)); w.Code != http.StatusOK {
		t.Fatalf("first session: %d %s", w.Code, w.Body)
	}
	w := f.do(createReq("s2", `{"counselor_category":"`+catID+`"}`))
	d := errorOf(t, w, http.StatusServiceUnavailable, CodeCapacityReached)
	if w.Header().Get("Retry-After") != "30" || d.Message != "All counselors are busy right now. Please try again in 30 seconds." {
		t.Errorf("Retry-After %q, message %q", w.Header().Get("Retry-After"), d.Message)
	}
	w = f.do(createReq("s1", `{"counselor_category":"`+catID+`"}`))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"resumed":true`) {
		t.Fatalf("resume while full: %d %s", w.Code, w.Body)
	}
}

func TestLimitMessages(t *testing.T) {
	for _, tc := range []struct {
		e    sessions.StudentLimitError
		want string
	}{
		{sessions.StudentLimitError{Kind: sessions.LimitDailySessions, Limit: 3, RetryAfter: 2*time.Hour + 4*time.Minute + time.Second},
			"You have reached the limit of 3 sessions in 24 hours. You can start a new session in 2 h 5 min."},
		{sessions.StudentLimitError{Kind: sessions.LimitDailyMinutes, Limit: 60, RetryAfter: 40 * time.Minute},
			"You have used your 60 minutes of sessions for the last 24 hours. You can start a new session in 40 minutes."},
		{sessions.StudentLimitError{Kind: sessions.LimitDailyMinutes, Limit: 1, RetryAfter: 61 * time.Second},
			"You have used your 1 minute of sessions for the last 24 hours. You can start a new session in 2 minutes."},
		{sessions.StudentLimitError{Kind: sessions.LimitDailySessions, Limit: 2, RetryAfter: time.Second},
			"You have reached the limit of 2 sessions in 24 hours. You can start a new session in 1 second."},
	} {
		if got := studentLimitMessage(&tc.e); got != tc.want {
			t.Errorf("%+v:\n got %q\nwant %q", tc.e, got, tc.want)
		}
	}
}

func TestCreateRoomRoutesAreTheCreateRoomHandlers(t *testing.T) {
	got := CreateRoomRoutes()
	if len(got) != 2 || got[0] != (Route{http.MethodPost, "/api/v1/video/create-room"}) || got[1] != (Route{http.MethodPost, "/api/video/create-room"}) {
		t.Fatalf("CreateRoomRoutes = %v", got)
	}
}
