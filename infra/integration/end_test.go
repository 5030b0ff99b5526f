package integration

import (
	"net/http"
	"strings"
	"testing"

	"counselvideo/shared/service"
	"counselvideo/shared/sessions"
)

// TestEndSessionEndpoint: the owner ends the session (end recorded, room deleted, task stopped; the
// webhook's room_finished then finds it closed); another student gets 404 and changes nothing; ending
// twice is fine.
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
	// The end is recorded by the API itself (before any webhook), then the room and the task go.
	s := getSession(t, room.SessionID)
	if s.Status != sessions.StatusEnded || s.EndReason != service.ReasonEndedByStudent || s.EndedAt.IsZero() || s.DurationSeconds < 0 {
		t.Fatalf("ended session: %+v", s)
	}
	if listRoom(t, room.RoomName) != nil || len(stopsFor(s.AgentTaskID)) == 0 {
		t.Fatalf("after end: room %v, stops %v", listRoom(t, room.RoomName), stopsFor(s.AgentTaskID))
	}
	// room_finished finds the session closed (its reason stays) and stops the task once more.
	eventually(t, "room_finished's StopTask", func() bool { return len(stopsFor(s.AgentTaskID)) == 2 })
	if got := getSession(t, room.SessionID); got.EndReason != service.ReasonEndedByStudent {
		t.Fatalf("end reason after room_finished: %q", got.EndReason)
	}

	r := do(t, http.MethodPost, endURL, st.tokens.ID, "", nil)
	if r.status/100 != 2 || !strings.Contains(string(r.body), `"status":"ended"`) {
		t.Fatalf("second end: %d %s", r.status, r.body)
	}
	if n := len(stopsFor(s.AgentTaskID)); n != 2 {
		t.Fatalf("%d StopTask calls after ending twice, want the two of the first end", n)
	}
}
