package integration

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"google.golang.org/protobuf/encoding/protojson"

	"counselvideo/shared/sessions"
	"counselvideo/shared/sweeper"
	"counselvideo/shared/webhook"
)

// answered passes livekit-server's webhooks to next and keeps each event with the handler's answer,
// so a test can wait until a given event has been handled.
type answered struct {
	next http.Handler
	drop func(*livekit.WebhookEvent) bool // answered 200 without handling: a lost webhook

	mu   sync.Mutex
	list []answer
}

type answer struct {
	ev     *livekit.WebhookEvent
	status int
	body   string
}

func (a *answered) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var ev livekit.WebhookEvent
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, &ev); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if a.drop != nil && a.drop(&ev) {
		w.WriteHeader(http.StatusOK)
		return
	}
	r.Body = io.NopCloser(strings.NewReader(string(raw)))
	rec := httptest.NewRecorder()
	a.next.ServeHTTP(rec, r)
	a.mu.Lock()
	a.list = append(a.list, answer{ev: &ev, status: rec.Code, body: rec.Body.String()})
	a.mu.Unlock()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// answerWebhooks routes livekit-server's webhooks to the webhook handler, as wired for the Lambda,
// for the rest of the test; drop (optional) picks events to lose.
func answerWebhooks(t *testing.T, drop func(*livekit.WebhookEvent) bool) *answered {
	t.Helper()
	h, _ := newWebhookHandler(t)
	a := &answered{next: h, drop: drop}
	installWebhooks(t, a)
	return a
}

// wait returns the first handled event that matches.
func (a *answered) wait(t *testing.T, what string, match func(*livekit.WebhookEvent) bool) answer {
	t.Helper()
	var got answer
	eventually(t, what, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, x := range a.list {
			if match(x.ev) {
				got = x
				return true
			}
		}
		return false
	})
	return got
}

func studentLeft(room, sid string) func(*livekit.WebhookEvent) bool {
	return func(e *livekit.WebhookEvent) bool {
		return (e.Event == webhook.EventParticipantLeft || e.Event == webhook.EventParticipantAbort) &&
			e.GetRoom().GetName() == room && e.GetParticipant().GetSid() == sid
	}
}

func studentIn(t *testing.T, room, identity string) (sid string, ok bool) {
	t.Helper()
	res, err := roomClient().ListParticipants(context.Background(), &livekit.ListParticipantsRequest{Room: room})
	if err != nil {
		return "", false
	}
	for _, p := range res.Participants {
		if p.Identity == identity {
			return p.Sid, true
		}
	}
	return "", false
}

// TestReconnectSecondTabKeepsSession: the student opens a second tab (or reloads, or switches
// networks): the same identity joins again, livekit-server removes the old participant with
// DUPLICATE_IDENTITY and sends its participant_left. The session stays active in its room, with the
// new connection in it.
func TestReconnectSecondTabKeepsSession(t *testing.T) {
	api := startAPI(t, nil)
	hooks := answerWebhooks(t, nil)
	st, room, firstTab := startLiveSession(t, api)
	joinRoom(t, agentToken(t, room.SessionID))
	waitStatus(t, room.SessionID, sessions.StatusActive)
	firstSID := firstTab.LocalParticipant.SID()

	secondTab := joinRoom(t, room.AccessToken)
	left := hooks.wait(t, "participant_left of the first tab", studentLeft(room.RoomName, firstSID))
	if reason := left.ev.GetParticipant().GetDisconnectReason(); reason != livekit.DisconnectReason_DUPLICATE_IDENTITY {
		t.Fatalf("livekit-server gave the replaced connection reason %s", reason)
	}
	if left.status != http.StatusOK {
		t.Fatalf("webhook answered %d %s", left.status, left.body)
	}
	if listRoom(t, room.RoomName) == nil {
		t.Fatal("the room was deleted under the student's second tab")
	}
	if sid, in := studentIn(t, room.RoomName, st.sub); !in || sid != secondTab.LocalParticipant.SID() {
		t.Fatalf("student in the room: %v with sid %q, want the second tab %q", in, sid, secondTab.LocalParticipant.SID())
	}
	if s := getSession(t, room.SessionID); s.Status != sessions.StatusActive || len(stopsFor(s.AgentTaskID)) != 0 {
		t.Fatalf("session after the second tab joined: %+v", s)
	}
}

// TestReconnectWithinDepartureTimeout: two students leave their sessions (CLIENT_INITIATED, as on a
// reload or a closed tab). One comes back right away (the reload's new connection): the session stays
// active in the same room. The other does not: livekit-server closes the room once the departure
// timeout passed (the agents are dependent participants and do not hold it open), and room_finished
// ends the session. The returning student left first, so when the other room closes the returning
// student's departure timeout has passed too: its room surviving shows the return kept it.
func TestReconnectWithinDepartureTimeout(t *testing.T) {
	api := startAPI(t, nil)
	hooks := answerWebhooks(t, nil)
	back, backRoom, backConn := startLiveSession(t, api)
	_, gone, goneConn := startLiveSession(t, api)
	for _, r := range []createdRoom{backRoom, gone} {
		joinRoom(t, agentToken(t, r.SessionID))
		waitStatus(t, r.SessionID, sessions.StatusActive)
	}

	backSID := backConn.LocalParticipant.SID()
	backConn.Disconnect()
	// Rejoining before livekit-server removed the old participant would be a duplicate identity:
	// wait for the departure to be handled, so this is a real leave and return.
	left := hooks.wait(t, "participant_left of the returning student", studentLeft(backRoom.RoomName, backSID))
	if reason := left.ev.GetParticipant().GetDisconnectReason(); reason != livekit.DisconnectReason_CLIENT_INITIATED {
		t.Fatalf("disconnect reason %s", reason)
	}
	goneConn.Disconnect()
	again := joinRoom(t, backRoom.AccessToken)

	ended := waitStatus(t, gone.SessionID, sessions.StatusEnded)
	if ended.EndReason != "room finished" || ended.DurationSeconds < 1 {
		t.Fatalf("the student who did not return: %+v", ended)
	}
	if listRoom(t, gone.RoomName) != nil {
		t.Fatal("the room of the student who did not return still exists")
	}
	eventually(t, "task of the ended session stopped", func() bool { return len(stopsFor(ended.AgentTaskID)) > 0 })

	if listRoom(t, backRoom.RoomName) == nil {
		t.Fatal("the returning student's room closed although they came back within the departure timeout")
	}
	if sid, in := studentIn(t, backRoom.RoomName, back.sub); !in || sid != again.LocalParticipant.SID() {
		t.Fatalf("returning student in the room: %v %q", in, sid)
	}
	if s := getSession(t, backRoom.SessionID); s.Status != sessions.StatusActive || !s.EndedAt.IsZero() {
		t.Fatalf("returning student's session: %+v", s)
	}
}

// TestGhostRoomDeleted: a student joins with a token obtained before their session ended; livekit-server
// auto-creates a room with the session's name (a new sid) and the student would sit in it alone. The
// webhook deletes it, whether the session is already closed or its old room's room_finished is still
// to come (here: lost, so the sweeper closes the session).
func TestGhostRoomDeleted(t *testing.T) {
	api := startAPI(t, nil)
	var lostFinish string // room sid whose room_finished is lost
	hooks := answerWebhooks(t, func(e *livekit.WebhookEvent) bool {
		return e.Event == webhook.EventRoomFinished && e.GetRoom().GetSid() == lostFinish
	})

	rejoinGhost := func(t *testing.T, room createdRoom, s sessions.Session) {
		t.Helper()
		// A join may be refused or cut short once the webhook deleted the room: either is fine.
		ghost, err := lksdk.ConnectToRoomWithToken(env.stack.LiveKit.WSURL, room.AccessToken, &lksdk.RoomCallback{}, lksdk.WithAutoSubscribe(false))
		if err == nil {
			t.Cleanup(ghost.Disconnect)
		}
		joined := hooks.wait(t, "student's join of the ghost room", func(e *livekit.WebhookEvent) bool {
			return e.Event == webhook.EventParticipantJoined && e.GetRoom().GetName() == room.RoomName && e.GetRoom().GetSid() != s.RoomSID
		})
		if joined.status != http.StatusOK || !strings.Contains(joined.body, "applied") {
			t.Fatalf("ghost join: %d %s", joined.status, joined.body)
		}
		eventually(t, "ghost room deleted", func() bool { return listRoom(t, room.RoomName) == nil })
		if err == nil {
			eventually(t, "student disconnected from the ghost room", func() bool { return ghost.ConnectionState() == lksdk.ConnectionStateDisconnected })
		}
	}

	t.Run("session closed", func(t *testing.T) {
		_, room, conn := startLiveSession(t, api)
		waitStatus(t, room.SessionID, sessions.StatusActive)
		// The end as /end records it: the session first, then the room.
		if _, err := sessionStore().End(context.Background(), room.SessionID, sessions.Ending{Status: sessions.StatusEnded, At: time.Now(), Reason: "ended by the student"}); err != nil {
			t.Fatal(err)
		}
		if err := roomClientDelete(room.RoomName); err != nil {
			t.Fatal(err)
		}
		eventually(t, "student disconnected", func() bool { return conn.ConnectionState() == lksdk.ConnectionStateDisconnected })
		closed := getSession(t, room.SessionID)
		rejoinGhost(t, room, closed)
		if got := getSession(t, room.SessionID); got.Status != sessions.StatusEnded || !got.StudentJoinedAt.Equal(closed.StudentJoinedAt) || got.DurationSeconds != closed.DurationSeconds {
			t.Fatalf("the ghost join changed the record: %+v, was %+v", got, closed)
		}
	})

	t.Run("room_finished of the old room lost", func(t *testing.T) {
		_, room, conn := startLiveSession(t, api)
		s := waitStatus(t, room.SessionID, sessions.StatusActive)
		lostFinish = s.RoomSID
		if err := roomClientDelete(room.RoomName); err != nil {
			t.Fatal(err)
		}
		eventually(t, "student disconnected", func() bool { return conn.ConnectionState() == lksdk.ConnectionStateDisconnected })
		rejoinGhost(t, room, s)
		if got := getSession(t, room.SessionID); got.Status != sessions.StatusActive || !got.StudentJoinedAt.Equal(s.StudentJoinedAt) {
			t.Fatalf("the ghost join changed the record: %+v", got)
		}
		sw := newSweeper(t)
		sw.MinAge = -1
		rep, err := sw.Run(context.Background())
		sweepOK(t, err, rep, room.SessionID)
		if c, ok := closedIn(rep, room.SessionID); !ok || c.Reason != sweeper.ReasonRoomGone {
			t.Fatalf("sweeper report %+v", rep)
		}
	})
}
