// Command bench-pool measures the warm pool against the cold path on the dev stack (real
// livekit-server, DynamoDB Local, cognito-local, the agent stand-ins): POST create-room → agent
// joined and POST → first avatar video frame at the student (the playground page in headless Chromium)
// for sessions served by a local pool worker and by a cold local agent process, and create-room's own
// latency in pool mode next to the RunTask path (ECS double). It writes a markdown report
// (bench/results/pool.md).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"counselvideo/infra/devstack"
	"counselvideo/infra/ecsdouble"
	"counselvideo/infra/localstack"
	"counselvideo/shared/agents"
	"counselvideo/shared/app"
	"counselvideo/shared/config"
	"counselvideo/shared/rooms"
	"counselvideo/shared/sessions"
)

func main() {
	out := flag.String("out", "bench/results/pool.md", "report file")
	n := flag.Int("n", 10, "sessions per path")
	flag.Parse()
	if err := run(*out, *n); err != nil {
		fmt.Fprintln(os.Stderr, "bench-pool:", err)
		os.Exit(1)
	}
}

// sample is one session: create-room's answer time, the session's own time to agent (LiveKit's join
// time minus the record's creation) and the client's view (POST sent → agent-<id> in the room).
type sample struct {
	sessionID                           string
	createRoom, timeToAgent, clientSeen time.Duration
}

func run(out string, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	logDir, err := os.MkdirTemp("", "counselvideo-bench-pool-")
	if err != nil {
		return err
	}
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	const poolSize = 2
	r, err := devstack.Start(ctx, devstack.Options{
		APIAddr: "127.0.0.1:0", PlaygroundAddr: "127.0.0.1:0", LogDir: logDir, AgentPoolSize: poolSize,
		EnvFile: os.DevNull, Log: quiet,
	})
	if err != nil {
		return err
	}
	defer r.Stop()
	ecs := ecsdouble.New()
	defer ecs.Close()
	os.Setenv("AWS_ENDPOINT_URL_ECS", ecs.URL)
	awsCfg, err := app.AWSConfig(ctx)
	if err != nil {
		return err
	}
	lk := r.Stack.LiveKit
	base := map[string]string{
		"LIVEKIT_URL": lk.URL, "LIVEKIT_PUBLIC_URL": lk.WSURL, "LIVEKIT_API_KEY": lk.APIKey, "LIVEKIT_API_SECRET": lk.APISecret,
		"SESSIONS_TABLE": devstack.SessionsTable, "CATEGORIES_TABLE": devstack.CategoriesTable,
		"COGNITO_ISSUER": r.Pool.Issuer, "COGNITO_CLIENT_IDS": r.Pool.ClientID, "LOG_LEVEL": "warn",
		"AGENT_LAUNCHER": config.LauncherProcess, "AGENT_COMMAND": "node agentimage/dist/main.js",
		"CORS_ALLOWED_ORIGINS": r.PlaygroundURL, // the page creates its sessions through these APIs
	}
	api := func(extra map[string]string, launcher agents.Launcher) (string, func(), error) {
		e := map[string]string{}
		for k, v := range base {
			e[k] = v
		}
		for k, v := range extra {
			e[k] = v
		}
		cfg, err := config.Load(config.API, func(k string) string { return e[k] })
		if err != nil {
			return "", nil, err
		}
		h, err := app.NewAPIHandler(ctx, cfg, awsCfg, app.Deps{Launcher: launcher, Log: quiet}, nil)
		if err != nil {
			return "", nil, err
		}
		srv := httptest.NewServer(h)
		return srv.URL, srv.Close, nil
	}
	poolURL, closePool, err := api(map[string]string{"AGENT_POOL_AGENT_NAME": devstack.PoolAgentName}, r.Agents)
	if err != nil {
		return err
	}
	defer closePool()
	coldURL, closeCold, err := api(nil, r.Agents)
	if err != nil {
		return err
	}
	defer closeCold()
	runTaskURL, closeRunTask, err := api(map[string]string{
		"AGENT_LAUNCHER": config.LauncherECS, "ECS_CLUSTER": "bench", "AGENT_TASK_DEFINITION": "agent:1",
		"AGENT_CONTAINER_NAME": "agent", "AGENT_SUBNETS": "subnet-1", "AGENT_SECURITY_GROUPS": "sg-1",
	}, nil)
	if err != nil {
		return err
	}
	defer closeRunTask()

	tok, err := r.Token(ctx)
	if err != nil {
		return err
	}
	b := &bench{
		ctx: ctx, token: tok.ID, rooms: rooms.NewClient(lk.URL, lk.APIKey, lk.APISecret),
		store: sessions.NewDynamoStore(dynamodb.NewFromConfig(awsCfg), devstack.SessionsTable),
	}
	if b.category, err = b.firstCategory(poolURL); err != nil {
		return err
	}
	// One warm-up of each API (category cache, connections), not counted.
	for _, u := range []string{runTaskURL} {
		if _, err := b.session(u, false); err != nil {
			return err
		}
	}

	// settle waits until every pool worker is idle (an ended one's replacement has started) and the
	// last cold agent process has exited, so no path is measured while another's processes start.
	settle := func(coldSession string) error {
		sctx, scancel := context.WithTimeout(ctx, 2*time.Minute)
		defer scancel()
		if coldSession != "" {
			if err := r.Agents.Wait(sctx, "process:"+coldSession); err != nil {
				return err
			}
		}
		return r.AgentPool.WaitIdle(sctx, poolSize)
	}
	paths, err := localstack.FindPaths()
	if err != nil {
		return err
	}
	page, err := startBrowser(paths.Root, r.PlaygroundURL, logDir+"/first-frame.log")
	if err != nil {
		return err
	}
	defer page.close()
	// One page session of each path first, not counted (Chromium's caches, the page's first sign-in).
	for _, u := range []string{poolURL, coldURL} {
		if err := settle(""); err != nil {
			return err
		}
		s, err := page.session(u)
		if err != nil {
			return fmt.Errorf("page warm-up: %w", err)
		}
		if err := settle(s.sessionID); err != nil {
			return err
		}
	}

	loadBefore := loadAverage()
	var warm, cold, runTask []sample
	var warmFrame, coldFrame []frameSample
	for i := range n {
		if err := settle(""); err != nil {
			return err
		}
		s, err := b.session(poolURL, true)
		if err != nil {
			return fmt.Errorf("warm %d: %w", i, err)
		}
		warm = append(warm, s)
		if err := settle(""); err != nil {
			return err
		}
		if s, err = b.session(coldURL, true); err != nil {
			return fmt.Errorf("cold %d: %w", i, err)
		}
		cold = append(cold, s)
		if err := settle(s.sessionID); err != nil {
			return err
		}
		if s, err = b.session(runTaskURL, false); err != nil {
			return fmt.Errorf("runtask %d: %w", i, err)
		}
		runTask = append(runTask, s)
		if err := settle(""); err != nil {
			return err
		}
		f, err := page.session(poolURL)
		if err != nil {
			return fmt.Errorf("page warm %d: %w", i, err)
		}
		if err := b.servedBy(f.sessionID, agents.SourcePool); err != nil {
			return fmt.Errorf("page warm %d: %w", i, err)
		}
		warmFrame = append(warmFrame, f)
		if err := settle(f.sessionID); err != nil { // a pool miss would have started a cold process
			return err
		}
		if f, err = page.session(coldURL); err != nil {
			return fmt.Errorf("page cold %d: %w", i, err)
		}
		if err := b.servedBy(f.sessionID, agents.SourceCold); err != nil {
			return fmt.Errorf("page cold %d: %w", i, err)
		}
		coldFrame = append(coldFrame, f)
		if err := settle(f.sessionID); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "bench-pool: %d/%d: warm %v, cold %v; first avatar frame warm %v, cold %v\n",
			i+1, n, warm[i].timeToAgent, cold[i].timeToAgent, warmFrame[i].firstFrame, coldFrame[i].firstFrame)
	}
	rep := report(n, poolSize, loadBefore+" before, "+loadAverage()+" after", warm, cold, runTask, warmFrame, coldFrame)
	return os.WriteFile(out, []byte(rep), 0o644)
}

// loadAverage is the host's 1/5/15-minute load (the machine is shared: the figures depend on it).
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

type bench struct {
	ctx      context.Context
	token    string
	category string
	rooms    *rooms.Client
	store    *sessions.DynamoStore
}

func (b *bench) firstCategory(apiURL string) (string, error) {
	var list struct {
		Categories []struct {
			ID string `json:"id"`
		} `json:"categories"`
	}
	if err := b.call(http.MethodGet, apiURL+"/api/v1/counselor-categories", "", &list); err != nil {
		return "", err
	}
	if len(list.Categories) == 0 {
		return "", fmt.Errorf("no categories")
	}
	return list.Categories[0].ID, nil
}

// session creates a session, waits for its agent when one comes (withAgent), and ends it.
func (b *bench) session(apiURL string, withAgent bool) (sample, error) {
	var created struct {
		SessionID string `json:"session_id"`
		RoomName  string `json:"room_name"`
	}
	began := time.Now()
	if err := b.call(http.MethodPost, apiURL+"/api/v1/video/create-room", fmt.Sprintf(`{"counselor_category":%q}`, b.category), &created); err != nil {
		return sample{}, err
	}
	s := sample{sessionID: created.SessionID, createRoom: time.Since(began)}
	defer func() {
		_ = b.call(http.MethodPost, apiURL+"/api/v1/video/sessions/"+created.SessionID+"/end", "", nil)
	}()
	if !withAgent {
		return s, nil
	}
	deadline := time.Now().Add(90 * time.Second)
	identity := agents.AgentIdentity(created.SessionID)
	for s.clientSeen == 0 {
		if time.Now().After(deadline) {
			return s, fmt.Errorf("session %s: no agent in the room", created.SessionID)
		}
		if ok, _ := b.rooms.ParticipantPresent(b.ctx, created.RoomName, identity); ok {
			s.clientSeen = time.Since(began)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for { // the webhook records the join a moment later
		sess, err := b.store.Get(b.ctx, created.SessionID)
		if err == nil && !sess.AgentJoinedAt.IsZero() {
			s.timeToAgent = sess.AgentJoinedAt.Sub(sess.CreatedAt)
			return s, nil
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("session %s: agent join never recorded", created.SessionID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// servedBy checks that the session's agent came the way the path says (a warm sample served by a cold
// fallback would measure the wrong thing).
func (b *bench) servedBy(sessionID, source string) error {
	sess, err := b.store.Get(b.ctx, sessionID)
	if err != nil {
		return err
	}
	if sess.AgentSource != source {
		return fmt.Errorf("session %s: agent_source %q, want %q", sessionID, sess.AgentSource, source)
	}
	return nil
}

func (b *bench) call(method, url, body string, into any) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(b.ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, raw)
	}
	if into != nil {
		return json.Unmarshal(raw, into)
	}
	return nil
}

// quantile is the nearest-rank quantile q of ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*q+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func pick[S any](ss []S, f func(S) time.Duration) []time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

func verdict(got, target time.Duration) string {
	if got <= target {
		return "met"
	}
	return "not met"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond)) }

func row(name string, ds []time.Duration) string {
	return fmt.Sprintf("| %s | %d | %s | %s | %s |\n", name, len(ds), ms(quantile(ds, 0.5)), ms(quantile(ds, 0.95)), ms(slices.Max(ds)))
}

func report(n, poolSize int, load string, warm, cold, runTask []sample, warmFrame, coldFrame []frameSample) string {
	var w strings.Builder
	fmt.Fprintf(&w, "# Warm pool vs cold start (`go run ./infra/cmd/bench-pool`)\n\n")
	fmt.Fprintf(&w, "Measured %s, %s, %d cores visible; the dev stack (livekit-server 1.13.5, DynamoDB Local, cognito-local,\n",
		time.Now().UTC().Format(time.RFC3339), runtime.Version(), runtime.NumCPU())
	fmt.Fprintf(&w, "the agent's Realtime and Bey stand-ins) on loopback, a local pool of %d one-job workers (`node dist/worker.js`).\n", poolSize)
	fmt.Fprintf(&w, "Host load average (1/5/15 min): %s (shared with other jobs; 2 cores means everything above 2 waits).\n", load)
	fmt.Fprintf(&w, "n = %d sessions per path, one after the other, interleaved (warm, cold, RunTask, page warm, page cold), each ended before the next;\n", n)
	fmt.Fprintf(&w, "before every session all pool workers were idle (an ended one's replacement ready) and the last cold agent process had exited.\n\n")
	fmt.Fprintf(&w, "- warm: API with `AGENT_POOL_AGENT_NAME` (dispatch, wait for `agent-<id>`, join timeout 3 s); create-room answers after the join.\n")
	fmt.Fprintf(&w, "- cold: API without the pool, a local agent process per session (`node dist/main.js`), as `make dev` with `DEV_AGENT_POOL_SIZE=0`.\n")
	fmt.Fprintf(&w, "- RunTask: API with the ECS launcher against the wire-level ECS double (no agent starts): the create-room path of AWS without the pool.\n\n")
	fmt.Fprintf(&w, "## POST create-room → agent joined (ms)\n\n")
	fmt.Fprintf(&w, "`time to agent` is the session's `agent_joined_at` (LiveKit's join time, via the webhook) minus `created_at`, as\n")
	fmt.Fprintf(&w, "GET session's `time_to_agent_ms`; `client` is from sending the POST to `agent-<id>` answering GetParticipant (polled every 10 ms).\n\n")
	fmt.Fprintf(&w, "| path | n | p50 | p95 | max |\n|---|---:|---:|---:|---:|\n")
	w.WriteString(row("warm pool: time to agent", pick(warm, func(s sample) time.Duration { return s.timeToAgent })))
	w.WriteString(row("warm pool: client, POST → agent in room", pick(warm, func(s sample) time.Duration { return s.clientSeen })))
	w.WriteString(row("cold process: time to agent", pick(cold, func(s sample) time.Duration { return s.timeToAgent })))
	w.WriteString(row("cold process: client, POST → agent in room", pick(cold, func(s sample) time.Duration { return s.clientSeen })))
	fmt.Fprintf(&w, "\nTarget (issue 10): warm POST → agent joined p50 ≤ 500 ms on this machine.\n\n")
	fmt.Fprintf(&w, "## create-room's own latency (ms)\n\n")
	fmt.Fprintf(&w, "In pool mode the answer waits for the agent's join (bounded by `AGENT_POOL_JOIN_TIMEOUT_SECONDS`): the\n")
	fmt.Fprintf(&w, "single-agent rule needs the join or the dispatch's deletion settled before a cold fallback can start, and\n")
	fmt.Fprintf(&w, "checking after the answer would need a second Lambda invocation to run the fallback.\n\n")
	fmt.Fprintf(&w, "| path | n | p50 | p95 | max |\n|---|---:|---:|---:|---:|\n")
	w.WriteString(row("pool mode (hit)", pick(warm, func(s sample) time.Duration { return s.createRoom })))
	w.WriteString(row("cold local process", pick(cold, func(s sample) time.Duration { return s.createRoom })))
	w.WriteString(row("RunTask (ECS double)", pick(runTask, func(s sample) time.Duration { return s.createRoom })))
	fmt.Fprintf(&w, "\n## POST create-room → first avatar video frame decoded at the student (ms)\n\n")
	fmt.Fprintf(&w, "The playground page in headless Chromium (`playground/bench/first-frame.mjs`, playwright-core, fake microphone)\n")
	fmt.Fprintf(&w, "creates each session itself: `window.__timings` in performance.now(), from just before the page sends the POST\n")
	fmt.Fprintf(&w, "to its answer (the page's POST includes its CORS preflight), to `room.connect` resolving, to the page first\n")
	fmt.Fprintf(&w, "seeing `agent-<id>` (checked after its connect and microphone publish, so a warm agent already in the room\n")
	fmt.Fprintf(&w, "counts from then), to the avatar's (`bey-avatar-agent`) video track subscribed, and to the first\n")
	fmt.Fprintf(&w, "`requestVideoFrameCallback` on the video element it is attached to: a frame decoded and presented.\n")
	fmt.Fprintf(&w, "Each warm sample was checked to be served by the pool (`agent_source` pool), each cold one by a process (cold).\n")
	fmt.Fprintf(&w, "The avatar's video is the Bey stand-in's (a LiveKit participant publishing generated frames), not Beyond Presence.\n\n")
	fmt.Fprintf(&w, "| path | n | p50 | p95 | max |\n|---|---:|---:|---:|---:|\n")
	w.WriteString(row("warm pool: POST → create-room answered", pick(warmFrame, func(s frameSample) time.Duration { return s.createRoom })))
	w.WriteString(row("warm pool: POST → room joined (page)", pick(warmFrame, func(s frameSample) time.Duration { return s.connected })))
	w.WriteString(row("warm pool: POST → agent in room (page)", pick(warmFrame, func(s frameSample) time.Duration { return s.agentSeen })))
	w.WriteString(row("warm pool: POST → avatar video subscribed", pick(warmFrame, func(s frameSample) time.Duration { return s.avatarTrack })))
	w.WriteString(row("**warm pool: POST → first avatar frame**", pick(warmFrame, func(s frameSample) time.Duration { return s.firstFrame })))
	w.WriteString(row("cold process: POST → create-room answered", pick(coldFrame, func(s frameSample) time.Duration { return s.createRoom })))
	w.WriteString(row("cold process: POST → room joined (page)", pick(coldFrame, func(s frameSample) time.Duration { return s.connected })))
	w.WriteString(row("cold process: POST → agent in room (page)", pick(coldFrame, func(s frameSample) time.Duration { return s.agentSeen })))
	w.WriteString(row("cold process: POST → avatar video subscribed", pick(coldFrame, func(s frameSample) time.Duration { return s.avatarTrack })))
	w.WriteString(row("**cold process: POST → first avatar frame**", pick(coldFrame, func(s frameSample) time.Duration { return s.firstFrame })))
	fmt.Fprintf(&w, "\nTarget (issue 10): warm POST → first avatar frame p50 ≤ 1.5 s on this machine with the stand-ins: %s (p50 %s ms).\n",
		verdict(quantile(pick(warmFrame, func(s frameSample) time.Duration { return s.firstFrame }), 0.5), 1500*time.Millisecond),
		ms(quantile(pick(warmFrame, func(s frameSample) time.Duration { return s.firstFrame }), 0.5)))
	fmt.Fprintf(&w, "\nNot measured here: the first avatar frame with real Beyond Presence and OpenAI (the stand-ins answer at once),\n")
	fmt.Fprintf(&w, "worker RSS (bench/results/agent.md), and Fargate's own start (20-90 s on AWS).\n")
	return w.String()
}
