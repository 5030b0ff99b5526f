package integration

import (
	"net/http"
	"strings"
	"testing"

	"counselvideo/shared/sessions"
)

// TestEndSessionEndpoint: the owner ends the session (room deleted, the webhook records the end and
// stops the task); another student gets 404 and changes nothing; ending twice is fine.
func TestEndSessionEndpoint(t *testing.T) {
	api := startAPI(t, nil)
	h, _ := newWebhookHandler(t)
	installWebhooks(t, h)
	st, room, _ := startLiveSession(t, api)
	waitStatus(t, room.SessionID, sessions.StatusActive)
	endURL := api.URL + "/api/v1/video/sessions/" + room.SessionID + "/end"

	if r := do(t, http.MethodPost, endURL, "", "", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("unauthenticated end: %d", r.status)
	}
	other := newStudent(t)
	if r := do(t, http.MethodPost, endURL, other.tokens.ID, "", nil); r.status != http.StatusNotFound {
		t.Fatalf("another student's end: %d %s", r.status, r.body)
	}
	if s := getSession(t, room.SessionID); s.Status != sessions.StatusActive || listRoom(t, room.RoomName) == nil {
		t.Fatalf("another student's request changed the session: %+v", s)
	}

	if r := do(t, http.MethodPost, endURL, st.tokens.ID, "", nil); r.status/100 != 2 {
		t.Fatalf("owner's end: %d %s", r.status, r.body)
	}
	eventually(t, "room deleted", func() bool { return listRoom(t, room.RoomName) == nil })
	s := waitStatus(t, room.SessionID, sessions.StatusEnded)
	if s.EndReason == "" || s.EndedAt.IsZero() {
		t.Fatalf("ended session: %+v", s)
	}
	eventually(t, "StopTask", func() bool { return len(stopsFor(s.AgentTaskID)) == 1 })

	r := do(t, http.MethodPost, endURL, st.tokens.ID, "", nil)
	if r.status/100 != 2 || !strings.Contains(string(r.body), `"status":"ended"`) {
		t.Fatalf("second end: %d %s", r.status, r.body)
	}
	if n := len(stopsFor(s.AgentTaskID)); n != 1 {
		t.Fatalf("%d StopTask calls after ending twice", n)
	}
}
