package integration

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
)

// TestStudentTokenOnlyCoversTheJoin: the student's token is short-lived (it only has to cover the
// join). Once it has expired (LiveKit accepts tokens up to one minute past exp), a new join with it is
// refused, but the participant who joined with it stays connected, and a reconnect succeeds with the
// token LiveKit refreshed for it (livekit-server sends one at join and every five minutes).
func TestStudentTokenOnlyCoversTheJoin(t *testing.T) {
	api := startAPI(t, map[string]string{"STUDENT_TOKEN_TTL_SECONDS": "1"})
	st := newStudent(t)
	r, room := createRoom(t, api, st.tokens.ID, enabledCategory(t).ID)
	if r.status != http.StatusOK {
		t.Fatalf("create-room: %d %s", r.status, r.body)
	}
	reconnected := make(chan struct{}, 1)
	cb := &lksdk.RoomCallback{OnReconnected: func() {
		select {
		case reconnected <- struct{}{}:
		default:
		}
	}}
	student, err := lksdk.ConnectToRoomWithToken(room.RoomURL, room.AccessToken, cb, lksdk.WithAutoSubscribe(false))
	if err != nil {
		t.Fatalf("join with the fresh token: %v", err)
	}
	t.Cleanup(student.Disconnect)
	sid := student.LocalParticipant.SID()

	// Wait until LiveKit refuses the token (its /rtc/validate runs the join's token check): it has
	// expired, leeway included. Then a new join with it fails too.
	eventuallyWithin(t, 3*time.Minute, "the token expired for LiveKit", func() bool {
		resp, err := http.Get(env.stack.LiveKit.URL + "/rtc/validate?access_token=" + url.QueryEscape(room.AccessToken))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("validate: %d", resp.StatusCode)
		}
		return resp.StatusCode == http.StatusUnauthorized
	})
	if late, err := lksdk.ConnectToRoomWithToken(room.RoomURL, room.AccessToken, &lksdk.RoomCallback{}, lksdk.WithAutoSubscribe(false)); err == nil {
		late.Disconnect()
		t.Fatal("a new join with the expired token was accepted")
	}
	if student.ConnectionState() != lksdk.ConnectionStateConnected {
		t.Fatalf("the participant who joined before expiry is %s", student.ConnectionState())
	}
	inRoom := func() bool {
		p, err := roomClient().GetParticipant(context.Background(), &livekit.RoomParticipantIdentity{Room: room.RoomName, Identity: st.sub})
		return err == nil && p.Sid == sid && p.State == livekit.ParticipantInfo_ACTIVE
	}
	if !inRoom() {
		t.Fatal("the student is not in the room after the token expired")
	}

	// A reconnect (network switch) after expiry uses the token LiveKit refreshed.
	student.Simulate(lksdk.SimulateSignalReconnect)
	waitClosed(t, "reconnect after the token expired", reconnected)
	eventually(t, "the same participant still in the room after reconnecting", inRoom)
}

// eventuallyWithin polls cond every 2 s until it holds; the deadline only bounds a hung test.
func eventuallyWithin(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(2 * time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
	}
}
