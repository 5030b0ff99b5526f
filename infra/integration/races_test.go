package integration

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"

	"counselvideo/shared/agents"
	"counselvideo/shared/service"
	"counselvideo/shared/sessions"
	"counselvideo/shared/webhook"
)

// Event orders around one session on the real stack: a second create-room while the first is still
// setting up (double click, client retry), the student joining or ending through the second answer,
// a create-room while the session is dying, concurrent creates meeting in DynamoDB, a RunTask that
// outlives our deadline.

// asyncCreate runs a create-room in the background.
func asyncCreate(t *testing.T, api *apiServer, token, category string) <-chan response {
	t.Helper()
	out := make(chan response, 1)
	go func() {
		r, _ := createRoom(t, api, token, category)
		out <- r
	}()
	return out
}

func waitResponse(t *testing.T, ch <-chan response) response {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(60 * time.Second):
		t.Fatal("create-room never answered")
		return response{}
	}
}

// runTasksSince returns the RunTask requests after the first n.
func runTasksSince(n int) []string {
	var ids []string
	for _, in := range env.ecs.RunTasks()[n:] {
		ids = append(ids, *in.StartedBy)
	}
	return ids
}

// TestDoubleCreateStudentJoinsBeforeSetupEnds: the first create-room's RunTask is slow; meanwhile a
// second create-room returns the `starting` session, the student joins with its token and the
// webhook marks the session active. The first request then finishes its setup (the task is recorded)
// and the live session stays up; before, its MarkStarted failed and its cleanup deleted the room and
// failed the session under the student.
func TestDoubleCreateStudentJoinsBeforeSetupEnds(t *testing.T) {
	api := startAPI(t, nil)
	h, _ := newWebhookHandler(t)
	installWebhooks(t, h)
	st := newStudent(t)
	cat := enabledCategory(t).ID
	before := len(env.ecs.RunTasks())
	release := env.ecs.HoldRunTask()
	defer release()

	first := asyncCreate(t, api, st.tokens.ID, cat)
	eventually(t, "the first RunTask is held", func() bool { return len(runTasksSince(before)) == 1 })
	r, second := createRoom(t, api, st.tokens.ID, cat)
	if r.status != http.StatusOK || !second.Resumed || second.Status != "starting" {
		t.Fatalf("second create-room: %d %s", r.status, r.body)
	}
	// The student joins with the second answer's token. The held RunTask must answer within the
	// launcher's deadline, so the webhook LiveKit sends for the join is delivered by the test (the
	// same signed event, to the same handler); the real join follows once the setup is done.
	s := getSession(t, second.SessionID)
	if s.RoomSID == "" {
		s.RoomSID = listRoom(t, s.RoomName).GetSid()
	}
	if w := sendSigned(t, h, studentJoinedEvent(s, "EV_dbl_"+s.SessionID)); w.Code != http.StatusOK {
		t.Fatalf("participant_joined: %d %s", w.Code, w.Body)
	}
	waitStatus(t, second.SessionID, sessions.StatusActive)
	release()

	if r := waitResponse(t, first); r.status != http.StatusOK {
		t.Fatalf("first create-room: %d %s", r.status, r.body)
	}
	s = getSession(t, second.SessionID)
	if s.Status != sessions.StatusActive || s.AgentTaskID == "" || s.StartedAt.IsZero() {
		t.Fatalf("session after the first setup finished: %+v", s)
	}
	if listRoom(t, s.RoomName) == nil || len(stopsFor(s.AgentTaskID)) != 0 {
		t.Fatalf("live session torn down: room %v, stops %v", listRoom(t, s.RoomName), stopsFor(s.AgentTaskID))
	}
	// The student's real join works and stays.
	joined := joinRoom(t, second.AccessToken)
	if joined.ConnectionState() != lksdk.ConnectionStateConnected || getSession(t, s.SessionID).Status != sessions.StatusActive {
		t.Fatalf("join after setup: %s, session %s", joined.ConnectionState(), getSession(t, s.SessionID).Status)
	}
}

// TestEndDuringSetupLeavesNothing: the student ends the session (with the id the second create-room
// returned) while the first create-room is still setting it up, before the room exists or before
// the agent was recorded. The setup must not leave a room or a task behind; the session is ended by
// the student, not failed, and the first request answers 409.
func TestEndDuringSetupLeavesNothing(t *testing.T) {
	for _, step := range []string{"before the room exists", "before the task is recorded"} {
		t.Run(step, func(t *testing.T) {
			lk := newFaultProxy(t, env.stack.LiveKit.URL)
			api := startAPI(t, map[string]string{"LIVEKIT_URL": lk.URL})
			st := newStudent(t)
			cat := enabledCategory(t).ID
			before := len(env.ecs.RunTasks())
			var held <-chan struct{}
			var release func()
			if step == "before the room exists" {
				held, release = lk.holdFirst(func(r *http.Request) bool {
					return strings.HasSuffix(r.URL.Path, "/livekit.RoomService/CreateRoom")
				})
			} else {
				release = env.ecs.HoldRunTask()
				ch := make(chan struct{})
				go func() {
					for len(runTasksSince(before)) == 0 {
						time.Sleep(10 * time.Millisecond)
					}
					close(ch)
				}()
				held = ch
			}
			defer release()

			first := asyncCreate(t, api, st.tokens.ID, cat)
			waitClosed(t, "the first setup is held", held)
			var sessionID string
			eventually(t, "session recorded", func() bool {
				list, err := sessionStore().ListByUser(context.Background(), st.sub, 1)
				if err == nil && len(list) == 1 {
					sessionID = list[0].SessionID
				}
				return sessionID != ""
			})
			r, second := createRoom(t, api, st.tokens.ID, cat)
			if r.status != http.StatusOK || !second.Resumed || second.SessionID != sessionID {
				t.Fatalf("second create-room: %d %s", r.status, r.body)
			}
			if r := do(t, http.MethodPost, api.URL+"/api/v1/video/sessions/"+sessionID+"/end", st.tokens.ID, "", nil); r.status != http.StatusAccepted {
				t.Fatalf("end: %d %s", r.status, r.body)
			}
			release()

			r = waitResponse(t, first)
			if r.status != http.StatusConflict || r.errorBody(t).Code != "session_closed" {
				t.Fatalf("first create-room: %d %s", r.status, r.body)
			}
			s := getSession(t, sessionID)
			if s.Status != sessions.StatusEnded || s.EndReason != service.ReasonEndedByStudent {
				t.Fatalf("session %s %q, want ended by the student", s.Status, s.EndReason)
			}
			if listRoom(t, s.RoomName) != nil {
				t.Fatal("the ended session's room exists")
			}
			if running := env.ecs.Running(sessionID); len(running) != 0 || runTasksFor(sessionID) != 1 {
				t.Fatalf("tasks still running %v (RunTask calls %d)", running, runTasksFor(sessionID))
			}
		})
	}
}

// TestCreateRightAfterEndStartsNewSession: /end deletes the room; before any webhook arrives (here:
// none ever does), a create-room must start a new session, not resume the dying one with a token for
// a room that no longer exists.
func TestCreateRightAfterEndStartsNewSession(t *testing.T) {
	api := startAPI(t, nil) // no webhook handler installed: room_finished is lost
	st := newStudent(t)
	cat := enabledCategory(t).ID
	_, first := createRoom(t, api, st.tokens.ID, cat)
	if r := do(t, http.MethodPost, api.URL+"/api/v1/video/sessions/"+first.SessionID+"/end", st.tokens.ID, "", nil); r.status != http.StatusAccepted {
		t.Fatalf("end: %d %s", r.status, r.body)
	}
	r, next := createRoom(t, api, st.tokens.ID, cat)
	if r.status != http.StatusOK || next.Resumed || next.SessionID == first.SessionID || listRoom(t, next.RoomName) == nil {
		t.Fatalf("create-room after end: %d %+v", r.status, next)
	}
	s := getSession(t, first.SessionID)
	if s.Status != sessions.StatusEnded || s.EndReason != service.ReasonEndedByStudent || listRoom(t, first.RoomName) != nil {
		t.Fatalf("ended session %+v", s)
	}
	if stops := stopsFor(s.AgentTaskID); len(stops) != 1 {
		t.Fatalf("the ended session's task: %d StopTask calls without any webhook, want 1", len(stops))
	}
}

// TestResumeOfSessionWhoseRoomIsGone: the student left, the webhook deleted the room, and room_finished
// was lost, so the session is still open. A create-room closes it (stopping its task) and starts a new
// session instead of resuming the gone room.
func TestResumeOfSessionWhoseRoomIsGone(t *testing.T) {
	api := startAPI(t, nil)
	h, _ := newWebhookHandler(t)
	st := newStudent(t)
	cat := enabledCategory(t).ID
	_, first := createRoom(t, api, st.tokens.ID, cat)
	installWebhooks(t, &recorder{next: h, drop: func(e *livekit.WebhookEvent) bool {
		return e.Event == webhook.EventRoomFinished && e.GetRoom().GetName() == first.RoomName
	}})
	studentRoom := joinRoom(t, first.AccessToken)
	waitStatus(t, first.SessionID, sessions.StatusActive)
	studentRoom.Disconnect()
	eventually(t, "room deleted after the student left", func() bool { return listRoom(t, first.RoomName) == nil })
	if s := getSession(t, first.SessionID); s.Status != sessions.StatusActive {
		t.Fatalf("room_finished was dropped, yet the session is %s", s.Status)
	}

	r, next := createRoom(t, api, st.tokens.ID, cat)
	if r.status != http.StatusOK || next.Resumed || next.SessionID == first.SessionID || listRoom(t, next.RoomName) == nil {
		t.Fatalf("create-room with a gone room: %d %+v", r.status, next)
	}
	old := getSession(t, first.SessionID)
	if old.Status != sessions.StatusEnded || old.EndReason != service.ReasonRoomGone {
		t.Fatalf("old session %s %q", old.Status, old.EndReason)
	}
	if len(stopsFor(old.AgentTaskID)) != 1 {
		t.Fatalf("old task stops %v", stopsFor(old.AgentTaskID))
	}
	// The new session is live: its token joins its own room.
	if joined := joinRoom(t, next.AccessToken); joined.Name() != next.RoomName {
		t.Fatalf("joined %q", joined.Name())
	}
}

// TestConcurrentCreatesMeetingInDynamoDB: two create-rooms for one student whose transactions meet:
// DynamoDB cancels one with TransactionConflict (DynamoDB Local serializes transactions, so a proxy
// answers the first with exactly the cancellation DynamoDB sends, once the second has committed).
// Both answer 200 with the one session, not a 500.
func TestConcurrentCreatesMeetingInDynamoDB(t *testing.T) {
	ddb := newFaultProxy(t, env.stack.DynamoDB.Endpoint)
	var mu sync.Mutex
	var heldOne bool
	committed := make(chan struct{})
	var commitOnce sync.Once
	ddb.setRule(func(w http.ResponseWriter, r *http.Request, forward func()) {
		if r.Header.Get("X-Amz-Target") != "DynamoDB_20120810.TransactWriteItems" {
			forward()
			return
		}
		mu.Lock()
		first := !heldOne
		heldOne = true
		mu.Unlock()
		if !first {
			forward()
			commitOnce.Do(func() { close(committed) })
			return
		}
		select {
		case <-committed:
		case <-time.After(30 * time.Second): // hang guard; the test then fails on the answers
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException",` +
			`"Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict, None]",` +
			`"CancellationReasons":[{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"},{"Code":"None"}]}`))
	})
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", ddb.URL)
	api := startAPI(t, nil)
	st := newStudent(t)
	cat := enabledCategory(t).ID

	a, b := asyncCreate(t, api, st.tokens.ID, cat), asyncCreate(t, api, st.tokens.ID, cat)
	ra, rb := waitResponse(t, a), waitResponse(t, b)
	if ra.status != http.StatusOK || rb.status != http.StatusOK {
		t.Fatalf("answers %d %s / %d %s", ra.status, ra.body, rb.status, rb.body)
	}
	var ca, cb createdRoom
	ra.json(t, &ca)
	rb.json(t, &cb)
	if ca.SessionID != cb.SessionID || ca.Resumed == cb.Resumed {
		t.Fatalf("sessions %s (resumed %v) and %s (resumed %v), want one session, resumed once", ca.SessionID, ca.Resumed, cb.SessionID, cb.Resumed)
	}
	if !heldOne {
		t.Fatal("no transaction went through the proxy")
	}
	if n := runTasksFor(ca.SessionID); n != 1 {
		t.Fatalf("%d RunTask calls", n)
	}
}

// TestRunTaskTimeoutStopsStartedTask: ECS starts the task but answers after the launcher's deadline.
// The setup fails cleanly (room deleted, session failed) and the task it started is found by
// startedBy and stopped: nothing runs for the failed session.
func TestRunTaskTimeoutStopsStartedTask(t *testing.T) {
	api := startAPI(t, nil)
	st := newStudent(t)
	env.ecs.DelayRunTask(agents.RunTaskTimeout + 10*time.Second)
	defer env.ecs.DelayRunTask(0)

	s := assertLaunchFailedCleanly(t, api, st)
	if running := env.ecs.Running(s.SessionID); len(running) != 0 {
		t.Fatalf("task started by the timed-out RunTask still running: %v", running)
	}
}
