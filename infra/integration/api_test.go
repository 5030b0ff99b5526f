package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"

	"counselvideo/shared/rooms"
	"counselvideo/shared/sessions"
)

func roomClient() *lksdk.RoomServiceClient {
	return lksdk.NewRoomServiceClient(env.stack.LiveKit.URL, env.stack.LiveKit.APIKey, env.stack.LiveKit.APISecret)
}

func listRoom(t *testing.T, name string) *livekit.Room {
	t.Helper()
	res, err := roomClient().ListRooms(context.Background(), &livekit.ListRoomsRequest{Names: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rooms) == 0 {
		return nil
	}
	return res.Rooms[0]
}

func runTasksFor(sessionID string) int {
	n := 0
	for _, in := range env.ecs.RunTasks() {
		if in.ClientToken != nil && *in.ClientToken == sessionID {
			n++
		}
	}
	return n
}

// TestCreateRoomEndToEnd: a cognito-local student creates a room; the room, the session record and
// the RunTask request are checked on the real components, then the student joins over WebRTC.
func TestCreateRoomEndToEnd(t *testing.T) {
	api := startAPI(t, nil)
	st := newStudent(t)
	cat := enabledCategory(t)

	r, room := createRoom(t, api, st.tokens.ID, cat.ID)
	if r.status != http.StatusOK {
		t.Fatalf("create-room: %d %s", r.status, r.body)
	}
	if room.RoomURL != env.stack.LiveKit.WSURL || room.RoomName != "video-"+room.SessionID || room.AccessToken == "" || room.Resumed {
		t.Fatalf("unexpected response: %+v", room)
	}

	// LiveKit: the room exists with our settings.
	lr := listRoom(t, room.RoomName)
	if lr == nil {
		t.Fatal("room not created in livekit-server")
	}
	if lr.MaxParticipants != rooms.MaxParticipants || lr.EmptyTimeout != uint32(rooms.EmptyTimeout/time.Second) || lr.DepartureTimeout == 0 {
		t.Fatalf("room settings: max=%d empty=%d departure=%d", lr.MaxParticipants, lr.EmptyTimeout, lr.DepartureTimeout)
	}
	var md rooms.Metadata
	if err := json.Unmarshal([]byte(lr.Metadata), &md); err != nil || md.SessionID != room.SessionID || md.CategoryID != cat.ID {
		t.Fatalf("room metadata %q", lr.Metadata)
	}

	// DynamoDB: the session record.
	sess, err := sessionStore().Get(context.Background(), room.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if sess.UserID != st.sub || sess.Status != sessions.StatusStarting || sess.CategoryID != cat.ID || sess.CategoryName != cat.Name ||
		sess.Mode != "video" || sess.RoomName != room.RoomName || sess.RoomSID != lr.Sid || sess.AgentTaskID == "" ||
		sess.CreatedAt.IsZero() || sess.StartedAt.IsZero() {
		t.Fatalf("session record: %+v (room sid %s)", sess, lr.Sid)
	}

	// ECS: exactly one RunTask, shaped as a deployment needs, with no secret in it.
	var run *struct{}
	_ = run
	found := false
	for _, in := range env.ecs.RunTasks() {
		if in.ClientToken == nil || *in.ClientToken != room.SessionID {
			continue
		}
		found = true
		if *in.Cluster != "counsel-agents" || *in.TaskDefinition != "counsel-agent:7" || *in.StartedBy != room.SessionID || in.LaunchType != "FARGATE" {
			t.Fatalf("RunTask: %+v", in)
		}
		net := in.NetworkConfiguration.AwsvpcConfiguration
		if strings.Join(net.Subnets, ",") != "subnet-aaa,subnet-bbb" || strings.Join(net.SecurityGroups, ",") != "sg-123" || net.AssignPublicIp != "ENABLED" {
			t.Fatalf("network: %+v", net)
		}
		co := in.Overrides.ContainerOverrides
		if len(co) != 1 || *co[0].Name != "agent" {
			t.Fatalf("container overrides: %+v", co)
		}
		got := map[string]string{}
		for _, kv := range co[0].Environment {
			got[*kv.Name] = *kv.Value
		}
		want := map[string]string{"SESSION_ID": room.SessionID, "ROOM_NAME": room.RoomName, "CATEGORY_ID": cat.ID, "AGENT_MAX_DURATION_SECONDS": "3600", "AGENT_REPLACEMENT": "false"}
		if len(got) != len(want) {
			t.Fatalf("overrides carry %v, want only %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("override %s=%q, want %q", k, got[k], v)
			}
		}
		tagged := false
		for _, tag := range in.Tags {
			if *tag.Key == "session_id" && *tag.Value == room.SessionID {
				tagged = true
			}
		}
		if !tagged {
			t.Fatalf("tags %+v lack session_id", in.Tags)
		}
		raw, _ := json.Marshal(in)
		if strings.Contains(string(raw), env.stack.LiveKit.APISecret+`"`) || strings.Contains(string(raw), st.tokens.ID) {
			t.Fatal("RunTask request carries a secret")
		}
	}
	if !found || runTasksFor(room.SessionID) != 1 {
		t.Fatalf("want exactly one RunTask for the session, got %d", runTasksFor(room.SessionID))
	}

	// The owner reads the session; another student gets 404.
	got := do(t, http.MethodGet, api.URL+"/api/v1/video/sessions/"+room.SessionID, st.tokens.ID, "", nil)
	if got.status != http.StatusOK || !strings.Contains(string(got.body), `"status":"starting"`) {
		t.Fatalf("get session: %d %s", got.status, got.body)
	}
	other := newStudent(t)
	if r := do(t, http.MethodGet, api.URL+"/api/v1/video/sessions/"+room.SessionID, other.tokens.ID, "", nil); r.status != http.StatusNotFound {
		t.Fatalf("other student's read: %d", r.status)
	}

	// Logs: structured, with request id, session id and user id, and no token or secret.
	logs := api.logs.String()
	if !strings.Contains(logs, `"session_id":"`+room.SessionID+`"`) || !strings.Contains(logs, `"user_id":"`+st.sub+`"`) || !strings.Contains(logs, `"request_id":"`) {
		t.Fatalf("logs lack ids:\n%s", logs)
	}
	if strings.Contains(logs, room.AccessToken) || strings.Contains(logs, st.tokens.ID) {
		t.Fatal("logs contain a token")
	}

	// The student joins over WebRTC with what the API returned: microphone allowed, camera refused.
	joinAndPublish(t, room)
}

func joinAndPublish(t *testing.T, room createdRoom) {
	t.Helper()
	lkRoom, err := lksdk.ConnectToRoomWithToken(room.RoomURL, room.AccessToken, &lksdk.RoomCallback{}, lksdk.WithAutoSubscribe(false))
	if err != nil {
		t.Fatalf("student join: %v", err)
	}
	defer lkRoom.Disconnect()
	if lkRoom.Name() != room.RoomName {
		t.Fatalf("joined %q", lkRoom.Name())
	}
	mic, err := lksdk.NewLocalSampleTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lkRoom.LocalParticipant.PublishTrack(mic, &lksdk.TrackPublicationOptions{Name: "mic", Source: livekit.TrackSource_MICROPHONE}); err != nil {
		t.Fatalf("publishing the microphone: %v", err)
	}
	cam, err := lksdk.NewLocalSampleTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lkRoom.LocalParticipant.PublishTrack(cam, &lksdk.TrackPublicationOptions{Name: "cam", Source: livekit.TrackSource_CAMERA}); err == nil {
		t.Fatal("publishing a camera track was accepted; the token must allow the microphone only")
	}
	// The server's view: one published track, the microphone.
	p, err := roomClient().GetParticipant(context.Background(), &livekit.RoomParticipantIdentity{Room: room.RoomName, Identity: lkRoom.LocalParticipant.Identity()})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Tracks) != 1 || p.Tracks[0].Source != livekit.TrackSource_MICROPHONE {
		t.Fatalf("server sees tracks %+v", p.Tracks)
	}
}

// TestCreateRoomReturnsOpenSession: a second create-room returns the same session with a fresh token.
func TestCreateRoomReturnsOpenSession(t *testing.T) {
	api := startAPI(t, nil)
	st := newStudent(t)
	cat := enabledCategory(t)
	_, first := createRoom(t, api, st.tokens.ID, cat.ID)
	r, second := createRoom(t, api, st.tokens.Access, cat.ID) // access tokens are accepted too
	if r.status != http.StatusOK || second.SessionID != first.SessionID || second.RoomName != first.RoomName || !second.Resumed || second.AccessToken == "" {
		t.Fatalf("second create-room: %d %+v (first %+v)", r.status, second, first)
	}
	if n := runTasksFor(first.SessionID); n != 1 {
		t.Fatalf("%d RunTask calls for one session", n)
	}
}

// TestCreateRoomConcurrentOneStudent: 20 concurrent calls for one student give one room and one task.
func TestCreateRoomConcurrentOneStudent(t *testing.T) {
	api := startAPI(t, nil)
	st := newStudent(t)
	cat := enabledCategory(t)
	ids := concurrently(t, 20, func(i int) (int, createdRoom) {
		r, c := createRoom(t, api, st.tokens.ID, cat.ID)
		return r.status, c
	})
	if len(ids) != 1 {
		t.Fatalf("20 concurrent calls made %d sessions: %v", len(ids), ids)
	}
	for id := range ids {
		if n := runTasksFor(id); n != 1 {
			t.Fatalf("%d RunTask calls", n)
		}
		if listRoom(t, sessions.RoomName(id)) == nil {
			t.Fatal("room missing")
		}
	}
	list, err := sessionStore().ListByUser(context.Background(), st.sub, 50)
	if err != nil || len(list) != 1 {
		t.Fatalf("student has %d session records (%v)", len(list), err)
	}
}

// TestCreateRoomConcurrentManyStudents: 50 students at once get 50 sessions, none lost.
func TestCreateRoomConcurrentManyStudents(t *testing.T) {
	api := startAPI(t, nil)
	cat := enabledCategory(t)
	students := make([]student, 50)
	for i := range students {
		students[i] = newStudent(t)
	}
	ids := concurrently(t, 50, func(i int) (int, createdRoom) {
		r, c := createRoom(t, api, students[i].tokens.ID, cat.ID)
		return r.status, c
	})
	if len(ids) != 50 {
		t.Fatalf("50 students got %d distinct sessions", len(ids))
	}
	for id := range ids {
		s, err := sessionStore().Get(context.Background(), id)
		if err != nil || s.Status != sessions.StatusStarting || s.AgentTaskID == "" {
			t.Fatalf("session %s: %+v %v", id, s, err)
		}
		if runTasksFor(id) != 1 {
			t.Fatalf("session %s has %d tasks", id, runTasksFor(id))
		}
	}
}

func concurrently(t *testing.T, n int, call func(i int) (int, createdRoom)) map[string]int {
	t.Helper()
	var mu sync.Mutex
	ids := map[string]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			status, c := call(i)
			mu.Lock()
			defer mu.Unlock()
			if status != http.StatusOK {
				t.Errorf("call %d: status %d", i, status)
				return
			}
			ids[c.SessionID]++
		}(i)
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return ids
}
