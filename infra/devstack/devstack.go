// Package devstack runs the whole system on one machine: the real local components (livekit-server,
// DynamoDB Local, cognito-local), the API, webhook and sweeper handlers from shared/app, and one agent
// process per session. `make dev` runs it; end-to-end tests start it in-process.
package devstack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"counselvideo/infra/localstack"
	"counselvideo/infra/seed"
	"counselvideo/shared/agents"
	"counselvideo/shared/app"
	"counselvideo/shared/categories"
	"counselvideo/shared/config"
	"counselvideo/shared/metrics"
	"counselvideo/shared/sweeper"
)

// Local test student created in cognito-local.
const (
	StudentUsername = "student@example.edu"
	StudentPassword = "Passw0rd!local"
	SessionsTable   = "dev-sessions"
	// PoolAgentName is the local pool workers' LIVEKIT_AGENT_NAME and the API's AGENT_POOL_AGENT_NAME.
	PoolAgentName   = "counselor-dev"
	CategoriesTable = "dev-categories"
	// safetyGraceSeconds is the agent's and the sweeper's grace for a flagged session, one value as
	// the template gives both.
	safetyGraceSeconds = "900"
	// poolReadyWait bounds waiting at start for a first idle pool worker (~2 s; more on a busy host).
	poolReadyWait = 60 * time.Second
)

type Options struct {
	// APIAddr is where the API and the webhook listen (default 127.0.0.1:8080; ":0" picks a port).
	APIAddr string
	// LogDir holds component logs (default .dev/logs under the repository).
	LogDir string
	// SweepEvery is the sweeper's schedule (default 15 s).
	SweepEvery time.Duration
	// AgentCommand overrides the agent process (default: node agentimage/dist/main.js).
	AgentCommand []string
	// AgentPoolSize is how many warm pool workers (node agentimage/dist/worker.js) run; each one that
	// exits after its session is replaced. 0: no pool, every session starts its own agent process.
	// With a pool, the agent process stays the cold fallback.
	AgentPoolSize int
	// EnvFile holds real provider keys (default .env.local); without keys the stand-ins are used.
	EnvFile string
	// PlaygroundAddr serves playground/ on its own origin (default 127.0.0.1:8081; ":0" picks a port),
	// which the API allows through CORS.
	PlaygroundAddr string
	Log            *slog.Logger
}

// Running is a started dev stack.
type Running struct {
	Stack         *localstack.Stack
	APIURL        string
	PlaygroundURL string
	Pool          localstack.UserPool
	StudentID     string
	Providers     string // "stand-ins" or "real services"
	// SafetyAlerts is the file the local SNS stand-in appends each safety alert to (JSON lines).
	SafetyAlerts string
	// RealtimeControlURL scripts the stand-in Realtime server (POST {"transcript", ...}: the student
	// says it); empty with real provider keys.
	RealtimeControlURL string
	Agents             *agents.ProcessLauncher
	// AgentPool runs the warm pool's workers (nil without one).
	AgentPool *localstack.AgentPool
	stop      []func()
}

// Start brings everything up; Stop tears it down in reverse order.
func Start(ctx context.Context, o Options) (r *Running, err error) {
	paths, err := localstack.FindPaths()
	if err != nil {
		return nil, err
	}
	if o.APIAddr == "" {
		o.APIAddr = "127.0.0.1:8080"
	}
	if o.LogDir == "" {
		o.LogDir = filepath.Join(paths.Root, ".dev", "logs")
	}
	if o.SweepEvery == 0 {
		o.SweepEvery = 15 * time.Second
	}
	if o.EnvFile == "" {
		o.EnvFile = filepath.Join(paths.Root, ".env.local")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	started := &Running{}
	r = started
	defer func() {
		if err != nil { // every error return sets r to nil: stop what was started through started
			started.Stop()
		}
	}()

	// The webhook listener exists before livekit-server starts, since its config names the URL.
	ln, err := net.Listen("tcp", o.APIAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (set DEV_API_ADDR to use another address): %w", o.APIAddr, err)
	}
	r.APIURL = "http://" + ln.Addr().String()
	r.stop = append(r.stop, func() { ln.Close() })
	if o.PlaygroundAddr == "" {
		o.PlaygroundAddr = "127.0.0.1:8081"
	}
	pln, err := net.Listen("tcp", o.PlaygroundAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (set DEV_PLAYGROUND_ADDR to use another address): %w", o.PlaygroundAddr, err)
	}
	r.PlaygroundURL = "http://" + pln.Addr().String()
	r.stop = append(r.stop, func() { pln.Close() })

	stack, err := localstack.Start(ctx, localstack.Options{LogDir: o.LogDir, WebhookURLs: []string{r.APIURL + "/livekit/webhook"}})
	if err != nil {
		return nil, err
	}
	r.Stack = stack
	r.stop = append(r.stop, stack.Stop)

	if err := stack.DynamoDB.CreateTables(ctx, SessionsTable, CategoriesTable); err != nil {
		return nil, err
	}
	list, err := seed.Load(filepath.Join(paths.Root, "infra", "seed", "categories.json"))
	if err != nil {
		return nil, err
	}
	if err := seed.Seed(ctx, categories.NewDynamoStore(stack.DynamoDB.Client, CategoriesTable), list); err != nil {
		return nil, err
	}
	if r.Pool, err = stack.Cognito.CreatePool(ctx, "dev"); err != nil {
		return nil, err
	}
	if r.StudentID, err = stack.Cognito.CreateUser(ctx, r.Pool, StudentUsername, StudentPassword); err != nil {
		return nil, err
	}

	// The SDK finds the local endpoints the standard way, as a deployed function finds the real ones.
	for k, v := range map[string]string{
		"AWS_REGION": localstack.Region, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
		"AWS_ENDPOINT_URL_DYNAMODB": stack.DynamoDB.Endpoint, "AWS_EC2_METADATA_DISABLED": "true",
	} {
		os.Setenv(k, v)
	}

	setup, err := agentEnvironment(ctx, paths, o, stack)
	if err != nil {
		return nil, err
	}
	r.Providers, r.RealtimeControlURL = setup.providers, setup.realtimeControlURL
	r.SafetyAlerts = filepath.Join(o.LogDir, SafetyAlertsFile)
	r.stop = append(r.stop, setup.stop)
	command := o.AgentCommand
	if len(command) == 0 {
		command = []string{"node", filepath.Join(paths.Root, "agentimage", "dist", "main.js")}
	}
	launcher := agents.NewProcessLauncher(command, setup.env, agentOutput(o.LogDir), o.Log)
	r.Agents = launcher
	// Not r.Agents: on a failed Start, r is nil by the time the stop functions run.
	r.stop = append(r.stop, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		launcher.StopAll(ctx)
	})

	env := map[string]string{
		"LIVEKIT_URL": stack.LiveKit.URL, "LIVEKIT_PUBLIC_URL": stack.LiveKit.WSURL,
		"LIVEKIT_API_KEY": stack.LiveKit.APIKey, "LIVEKIT_API_SECRET": stack.LiveKit.APISecret,
		"SESSIONS_TABLE": SessionsTable, "CATEGORIES_TABLE": CategoriesTable,
		"COGNITO_ISSUER": r.Pool.Issuer, "COGNITO_CLIENT_IDS": r.Pool.ClientID,
		"AGENT_LAUNCHER": config.LauncherProcess, "AGENT_COMMAND": strings.Join(command, " "),
		"CORS_ALLOWED_ORIGINS":       r.PlaygroundURL,
		"AGENT_JOIN_TIMEOUT_SECONDS": "120", "LOG_LEVEL": "info",
		"SESSION_SAFETY_GRACE_SECONDS": safetyGraceSeconds,
	}
	if o.AgentPoolSize > 0 {
		pool, err := localstack.StartAgentPool(localstack.AgentPoolOptions{
			Command: []string{"node", filepath.Join(paths.Root, "agentimage", "dist", "worker.js")},
			Env:     setup.env, AgentName: PoolAgentName, Size: o.AgentPoolSize,
			Output: agentOutput(o.LogDir), Log: o.Log,
		})
		if err != nil {
			return nil, err
		}
		r.AgentPool = pool
		r.stop = append(r.stop, pool.Stop)
		env["AGENT_POOL_AGENT_NAME"] = PoolAgentName
		// Ready means the first session is warm; a pool that is slow to come up only costs the cold path.
		wctx, cancel := context.WithTimeout(ctx, poolReadyWait)
		if err := pool.WaitIdle(wctx, 1); err != nil {
			o.Log.Warn("no pool worker ready yet; sessions start cold until one is", "error", err.Error())
		}
		cancel()
	}
	// The cost guards are off locally unless asked for: STUDENT_DAILY_SESSION_LIMIT=1 make dev.
	for _, k := range []string{"STUDENT_DAILY_SESSION_LIMIT", "STUDENT_DAILY_MINUTES_LIMIT", "MAX_OPEN_SESSIONS"} {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	getenv := func(k string) string { return env[k] }
	// The functions' metrics, as the Lambdas would print them (EMF lines), in their own file.
	metricsLog, err := os.OpenFile(filepath.Join(o.LogDir, "metrics.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	r.stop = append(r.stop, func() { _ = metricsLog.Close() })
	deps := app.Deps{Launcher: r.Agents, Log: o.Log, Metrics: metrics.New(metricsLog, config.DefaultStackName)}
	awsCfg, err := app.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	apiCfg, err := config.Load(config.API, getenv)
	if err != nil {
		return nil, err
	}
	apiHandler, err := app.NewAPIHandler(context.WithoutCancel(ctx), apiCfg, awsCfg, deps, nil)
	if err != nil {
		return nil, err
	}
	hookCfg, err := config.Load(config.Webhook, getenv)
	if err != nil {
		return nil, err
	}
	hook, err := app.NewWebhookHandler(hookCfg, awsCfg, deps, nil)
	if err != nil {
		return nil, err
	}
	sweepCfg, err := config.Load(config.Sweeper, getenv)
	if err != nil {
		return nil, err
	}
	sw, err := app.NewSweeper(sweepCfg, awsCfg, deps)
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.Handle("POST /livekit/webhook", hook)
	mux.Handle("/", apiHandler)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	r.stop = append(r.stop, func() { _ = srv.Close() })

	page := &http.Server{Handler: playgroundHandler(paths, r), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = page.Serve(pln) }()
	r.stop = append(r.stop, func() { _ = page.Close() })

	sweepCtx, stopSweep := context.WithCancel(context.WithoutCancel(ctx))
	go runSweeper(sweepCtx, sw, o.SweepEvery, o.Log)
	r.stop = append(r.stop, stopSweep)
	return r, nil
}

func runSweeper(ctx context.Context, sw *sweeper.Sweeper, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if rep, err := sw.Run(ctx); err != nil {
				log.Error("sweeper run failed", "error", err.Error())
			} else if len(rep.Closed) > 0 {
				log.Info("sweeper closed sessions", "closed", len(rep.Closed))
			}
		}
	}
}

// Stop tears everything down, newest first.
func (r *Running) Stop() {
	for i := len(r.stop) - 1; i >= 0; i-- {
		r.stop[i]()
	}
	r.stop = nil
}

// Token signs the local test student in, as the frontend would.
func (r *Running) Token(ctx context.Context) (localstack.Tokens, error) {
	return r.Stack.Cognito.Login(ctx, r.Pool, StudentUsername, StudentPassword)
}

func agentOutput(logDir string) *os.File {
	f, err := os.OpenFile(filepath.Join(logDir, "agents.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return os.Stderr
	}
	return f
}

// readEnvFile parses KEY=VALUE lines (comments and blanks ignored); a missing file is empty.
func readEnvFile(path string) (map[string]string, error) {
	out := map[string]string{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
	}
	return out, sc.Err()
}
