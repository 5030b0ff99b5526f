package integration

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"

	"counselvideo/shared/agents"
	"counselvideo/shared/app"
	"counselvideo/shared/config"
	"counselvideo/shared/logging"
	"counselvideo/shared/rooms"
	"counselvideo/shared/sessions"
	"counselvideo/shared/webhook"
)

// fakeAgentEnv makes the test binary run as an agent process (TestMain): it joins the session's room
// over WebRTC as the agent does (kind AGENT, identity agent-<SESSION_ID>, its metadata telling whether
// it is a replacement) and stays until it is stopped (SIGTERM: it leaves) or killed (it vanishes).
const fakeAgentEnv = "COUNSELVIDEO_IT_FAKE_AGENT"

func runFakeAgent() int {
	sessionID := os.Getenv("SESSION_ID")
	tok, err := auth.NewAccessToken(os.Getenv("LIVEKIT_API_KEY"), os.Getenv("LIVEKIT_API_SECRET")).
		SetIdentity(rooms.AgentIdentity(sessionID)).SetKind(livekit.ParticipantInfo_AGENT).
		SetMetadata("replacement=" + os.Getenv("AGENT_REPLACEMENT")).SetValidFor(10 * time.Minute).
		SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: os.Getenv("ROOM_NAME")}).ToJWT()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake agent:", err)
		return 1
	}
	room, err := lksdk.ConnectToRoomWithToken(os.Getenv("LIVEKIT_WS_URL"), tok, &lksdk.RoomCallback{}, lksdk.WithAutoSubscribe(false))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake agent: join:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "fake agent %d joined %s (replacement=%s)\n", os.Getpid(), os.Getenv("ROOM_NAME"), os.Getenv("AGENT_REPLACEMENT"))
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	room.Disconnect()
	return 0
}

// sessionAgent returns the session's agent participant in its room (nil if none).
func sessionAgent(t *testing.T, sessionID string) *livekit.ParticipantInfo {
	t.Helper()
	res, err := roomClient().ListParticipants(context.Background(), &livekit.ListParticipantsRequest{Room: sessions.RoomName(sessionID)})
	if err != nil {
		return nil // the room may be gone
	}
	for _, p := range res.Participants {
		if p.Identity == rooms.AgentIdentity(sessionID) && p.State == livekit.ParticipantInfo_ACTIVE {
			return p
		}
	}
	return nil
}

// TestAgentKilledMidSession: real livekit-server, DynamoDB Local, agent processes started by the
// launcher the API and the webhook share. The agent process is killed (SIGKILL: no leave message)
// while the student stays: LiveKit notices (its ICE and cleanup timeouts, about 20 s) and the webhook
// starts one replacement, which joins; killed again, the session fails "agent lost", its room is
// deleted and no agent process is left.
func TestAgentKilledMidSession(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	agentLogs := newSyncBuffer()
	launcher := agents.NewProcessLauncher([]string{exe, "-test.run=^$"}, []string{
		fakeAgentEnv + "=1", "LIVEKIT_WS_URL=" + env.stack.LiveKit.WSURL,
		"LIVEKIT_API_KEY=" + env.stack.LiveKit.APIKey, "LIVEKIT_API_SECRET=" + env.stack.LiveKit.APISecret,
	}, agentLogs, logging.New(agentLogs, "info"))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		launcher.StopAll(ctx)
	})
	api := startAPIWith(t, nil, app.Deps{Launcher: launcher})
	awsCfg, err := app.AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	hookLogs := newSyncBuffer()
	h, err := app.NewWebhookHandler(lifecycleConfig(t, config.Webhook), awsCfg, app.Deps{Launcher: launcher, Log: logging.New(hookLogs, "debug")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	installWebhooks(t, h)
	defer func() {
		if t.Failed() {
			t.Logf("webhook logs:\n%s\nagent logs:\n%s", hookLogs, agentLogs)
		}
	}()

	_, room, _ := startLiveSession(t, api)
	id := room.SessionID
	first := "process:" + id
	eventually(t, "the agent in the room", func() bool { return sessionAgent(t, id) != nil })
	lost := sessionAgent(t, id)
	if lost.Metadata != "replacement=false" || getSession(t, id).AgentTaskID != first {
		t.Fatalf("first agent: metadata %q, session %+v", lost.Metadata, getSession(t, id))
	}

	// Killed: a replacement joins, told it is one; the record names it.
	if err := launcher.Kill(first); err != nil {
		t.Fatal(err)
	}
	var replacement *livekit.ParticipantInfo
	eventually(t, "a replacement agent in the room", func() bool {
		replacement = sessionAgent(t, id)
		return replacement != nil && replacement.Sid != lost.Sid
	})
	s := getSession(t, id)
	second := "process:" + agents.Session{SessionID: id, Replacement: true}.LaunchKey()
	if replacement.Metadata != "replacement=true" || !s.Replaced() || s.AgentLostSID != lost.Sid || s.AgentTaskID != second || s.Status != sessions.StatusActive {
		t.Fatalf("after the replacement: metadata %q, session %+v", replacement.Metadata, s)
	}
	if launcher.Running(first) || !launcher.Running(second) {
		t.Fatalf("running: first %v, replacement %v", launcher.Running(first), launcher.Running(second))
	}

	// Killed again: failed, room deleted, nothing left running, no third agent.
	if err := launcher.Kill(second); err != nil {
		t.Fatal(err)
	}
	s = waitStatus(t, id, sessions.StatusFailed)
	if s.EndReason != webhook.EndReasonAgentLost {
		t.Fatalf("end reason %q", s.EndReason)
	}
	eventually(t, "room deleted", func() bool { return listRoom(t, room.RoomName) == nil })
	eventually(t, "no agent process", func() bool { return !launcher.Running(first) && !launcher.Running(second) })
	if n := strings.Count(agentLogs.String(), "fake agent "); n != 2 {
		t.Fatalf("%d agents joined, want 2:\n%s", n, agentLogs)
	}
}
