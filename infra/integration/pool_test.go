package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"

	"counselvideo/infra/devstack"
	"counselvideo/infra/localstack"
	"counselvideo/shared/agents"
	"counselvideo/shared/app"
	"counselvideo/shared/config"
	"counselvideo/shared/logging"
	"counselvideo/shared/metrics"
	"counselvideo/shared/rooms"
	"counselvideo/shared/sessions"
)

// countingLauncher is the cold path of these tests: real agent processes (node dist/main.js), counted.
type countingLauncher struct {
	*agents.ProcessLauncher
	launches atomic.Int64
}

func (c *countingLauncher) Launch(ctx context.Context, s agents.Session) (string, error) {
	c.launches.Add(1)
	return c.ProcessLauncher.Launch(ctx, s)
}

// TestWarmPool runs create-room against real pool workers (node dist/worker.js, one job each, replaced
// when they exit), real cold agent processes, livekit-server and DynamoDB Local, with the real webhook
// recording the joins. The workers and stand-ins start once for the three cases.
func TestWarmPool(t *testing.T) {
	ctx := context.Background()
	logDir, err := os.MkdirTemp("", "counselvideo-it-pool-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent and stand-in logs kept in %s", logDir)
		} else {
			os.RemoveAll(logDir)
		}
	})
	quiet := logging.New(&syncBufferDiscard{}, "info")
	agentEnv, stopStandins, err := devstack.StandinAgentEnvironment(ctx, env.stack, sessionsTable, categoriesTable, logDir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopStandins)
	out, err := os.Create(filepath.Join(logDir, "agents.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	dist := filepath.Join(env.stack.Paths.Root, "agentimage", "dist")
	poolName := fmt.Sprintf("it-pool-%d", time.Now().UnixNano())
	// Started now, so the workers register while the empty-pool case runs under another name.
	pool, err := localstack.StartAgentPool(localstack.AgentPoolOptions{
		Command: []string{"node", filepath.Join(dist, "worker.js")}, Env: agentEnv,
		AgentName: poolName, Size: 1, Output: out, Log: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Stop)
	cold := &countingLauncher{ProcessLauncher: agents.NewProcessLauncher([]string{"node", filepath.Join(dist, "main.js")}, agentEnv, out, quiet)}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		cold.StopAll(c)
	})

	// The real webhook, with metrics, behind a recorder of every event.
	metricLines := newSyncBuffer()
	awsCfg, err := app.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hook, err := app.NewWebhookHandler(lifecycleConfig(t, config.Webhook), awsCfg,
		app.Deps{Log: quiet, Metrics: metrics.New(metricLines, config.DefaultStackName)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{next: hook}
	installWebhooks(t, rec)
	dispatches := lksdk.NewAgentDispatchServiceClient(env.stack.LiveKit.URL, env.stack.LiveKit.APIKey, env.stack.LiveKit.APISecret)
	cat := enabledCategory(t)

	// agentJoins counts the joins of the session's agent identity LiveKit reported for its room.
	agentJoins := func(sessionID string) int {
		n := 0
		for _, ev := range rec.forRoom(sessions.RoomName(sessionID)) {
			if ev.GetEvent() == "participant_joined" && ev.GetParticipant().GetIdentity() == agents.AgentIdentity(sessionID) {
				n++
			}
		}
		return n
	}
	joined := func(t *testing.T, sessionID string) sessions.Session {
		t.Helper()
		var s sessions.Session
		eventuallyWithinStep(t, 60*time.Second, "agent of "+sessionID+" joined and recorded", func() bool {
			s = getSession(t, sessionID)
			return !s.AgentJoinedAt.IsZero()
		})
		return s
	}
	waitIdle := func(t *testing.T) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		if err := pool.WaitIdle(wctx, 1); err != nil {
			t.Fatalf("%v (worker log: %s)", err, out.Name())
		}
	}
	poolAPI := func(t *testing.T, name string) *apiServer {
		return startAPIWith(t, map[string]string{"AGENT_POOL_AGENT_NAME": name, "AGENT_POOL_JOIN_TIMEOUT_SECONDS": "2"}, app.Deps{Launcher: cold})
	}

	t.Run("pool empty: deleted dispatch, then cold, one agent", func(t *testing.T) {
		api := poolAPI(t, poolName+"-nobody")
		st := newStudent(t)
		r, room := createRoom(t, api, st.tokens.ID, cat.ID)
		if r.status != http.StatusOK {
			t.Fatalf("create-room %d: %s", r.status, r.body)
		}
		defer endSession(t, api, st, room.SessionID)
		if n := cold.launches.Load(); n != 1 {
			t.Fatalf("%d cold launches, want 1", n)
		}
		if !strings.Contains(api.logs.String(), "no pool agent joined in time") {
			t.Fatal("the pool was not tried first")
		}
		list, err := dispatches.ListDispatch(ctx, &livekit.ListAgentDispatchRequest{Room: room.RoomName})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range list.GetAgentDispatches() {
			if d.GetAgentName() != "" { // CreateRoom's own default dispatch has none
				t.Fatalf("dispatch left in the room: %v (must be deleted before the cold start)", d)
			}
		}
		s := joined(t, room.SessionID)
		if s.AgentSource != agents.SourceCold || !strings.HasPrefix(s.AgentTaskID, "process:") || s.TimeToAgentMS <= 0 {
			t.Fatalf("source %q task %q time to agent %d, want cold, a process, a time", s.AgentSource, s.AgentTaskID, s.TimeToAgentMS)
		}
		time.Sleep(time.Second) // a late second agent's join webhook would arrive by now
		if n := agentJoins(room.SessionID); n != 1 {
			t.Fatalf("%d joins of %s, want exactly one agent", n, agents.AgentIdentity(room.SessionID))
		}
	})

	t.Run("pool empty, AWS launcher: deleted dispatch, then RunTask on the ECS double", func(t *testing.T) {
		// The API as deployed: no cold launcher supplied, so the ECS launcher behind the pool.
		api := startAPIWith(t, map[string]string{"AGENT_POOL_AGENT_NAME": poolName + "-nobody", "AGENT_POOL_JOIN_TIMEOUT_SECONDS": "1"}, app.Deps{})
		st := newStudent(t)
		r, room := createRoom(t, api, st.tokens.ID, cat.ID)
		if r.status != http.StatusOK {
			t.Fatalf("create-room %d: %s", r.status, r.body)
		}
		if n := runTasksFor(room.SessionID); n != 1 {
			t.Fatalf("%d RunTask calls for the session, want 1 (the fallback)", n)
		}
		list, err := dispatches.ListDispatch(ctx, &livekit.ListAgentDispatchRequest{Room: room.RoomName})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range list.GetAgentDispatches() {
			if d.GetAgentName() != "" {
				t.Fatalf("dispatch left in the room: %v (must be deleted before RunTask)", d)
			}
		}
		s := getSession(t, room.SessionID)
		if s.AgentSource != agents.SourceCold || !strings.HasPrefix(s.AgentTaskID, "arn:aws:ecs:") {
			t.Fatalf("source %q task %q, want cold and the RunTask's task ARN", s.AgentSource, s.AgentTaskID)
		}
		endSession(t, api, st, room.SessionID)
		if running := env.ecs.Running(room.SessionID); len(running) != 0 {
			t.Fatalf("task still running after the end: %v", running)
		}
	})

	t.Run("pool hit: a worker serves, no cold launch", func(t *testing.T) {
		waitIdle(t)
		api := poolAPI(t, poolName)
		before := cold.launches.Load()
		st := newStudent(t)
		r, room := createRoom(t, api, st.tokens.ID, cat.ID)
		if r.status != http.StatusOK {
			t.Fatalf("create-room %d: %s", r.status, r.body)
		}
		defer endSession(t, api, st, room.SessionID)
		if n := cold.launches.Load() - before; n != 0 {
			t.Fatalf("%d cold launches on a pool hit", n)
		}
		s := joined(t, room.SessionID)
		if s.AgentSource != agents.SourcePool || !strings.HasPrefix(s.AgentTaskID, "pool:"+room.RoomName+":") {
			t.Fatalf("source %q task %q, want the pool's", s.AgentSource, s.AgentTaskID)
		}
		var got struct {
			AgentSource   string `json:"agent_source"`
			TimeToAgentMS int64  `json:"time_to_agent_ms"`
		}
		g := do(t, http.MethodGet, api.URL+"/api/v1/video/sessions/"+room.SessionID, st.tokens.ID, "", nil)
		g.json(t, &got)
		if g.status != http.StatusOK || got.AgentSource != "pool" || got.TimeToAgentMS <= 0 {
			t.Fatalf("GET session %d: %s", g.status, g.body)
		}
		t.Logf("pool hit: time to agent %d ms", got.TimeToAgentMS)
		if n := agentJoins(room.SessionID); n != 1 {
			t.Fatalf("%d agent joins, want 1", n)
		}
		var line string
		eventually(t, "the webhook's TimeToAgent metric", func() bool {
			for _, l := range strings.Split(metricLines.String(), "\n") {
				if strings.Contains(l, `"TimeToAgent"`) && strings.Contains(l, room.SessionID) {
					line = l
				}
			}
			return line != ""
		})
		if !strings.Contains(line, `"AgentSource":"pool"`) {
			t.Fatalf("TimeToAgent not attributed to the pool: %s", line)
		}
		if !strings.Contains(api.logs.String(), `"agent_source":"pool"`) {
			t.Fatal("the API's session started log does not name the source")
		}
		// Ending stops the agent by deleting its dispatch; the webhook's room_finished stops it again
		// on a room that is gone: that must be no error (else LiveKit retries the webhook).
		endSession(t, api, st, room.SessionID)
		lk := rooms.NewClient(env.stack.LiveKit.URL, env.stack.LiveKit.APIKey, env.stack.LiveKit.APISecret)
		eventually(t, "the room gone", func() bool {
			exists, err := lk.RoomExists(ctx, room.RoomName)
			return err == nil && !exists
		})
		stopper := agents.NewPool(lk, cold, "", 0, quiet)
		if err := stopper.Stop(ctx, s.AgentTaskID, "test"); err != nil {
			t.Fatalf("stopping a pool agent whose room is gone: %v", err)
		}
	})

	t.Run("pool of one, two students at once: one pool, one cold, both served", func(t *testing.T) {
		waitIdle(t) // the worker of the previous case exited after its session; its replacement
		api := poolAPI(t, poolName)
		before := cold.launches.Load()
		students := []student{newStudent(t), newStudent(t)}
		ids := make([]string, 2)
		var wg sync.WaitGroup
		for i, st := range students {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, room := createRoom(t, api, st.tokens.ID, cat.ID)
				if r.status != http.StatusOK {
					t.Errorf("create-room %d: %s", r.status, r.body)
					return
				}
				ids[i] = room.SessionID
			}()
		}
		wg.Wait()
		for i, id := range ids {
			if id != "" {
				defer endSession(t, api, students[i], id)
			}
		}
		if t.Failed() {
			return
		}
		sources := map[string]int{}
		for _, id := range ids {
			s := joined(t, id)
			sources[s.AgentSource]++
			if n := agentJoins(id); n != 1 {
				t.Errorf("session %s: %d agent joins, want 1", id, n)
			}
		}
		if sources[agents.SourcePool] != 1 || sources[agents.SourceCold] != 1 {
			t.Fatalf("sources %v, want one pool and one cold", sources)
		}
		if n := cold.launches.Load() - before; n != 1 {
			t.Fatalf("%d cold launches, want 1", n)
		}
	})
}

// syncBufferDiscard drops the logs of the agents' helpers (their own files hold what matters).
type syncBufferDiscard struct{}

func (syncBufferDiscard) Write(p []byte) (int, error) { return len(p), nil }

// eventuallyWithinStep polls cond every 100 ms until it holds; the deadline only bounds a hung test.
func eventuallyWithinStep(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
	}
}
