package devstack

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"counselvideo/infra/localstack"
)

// providerKeys must all be present in the env file to use the real OpenAI and Beyond Presence.
var providerKeys = []string{"OPENAI_API_KEY", "BEY_API_KEY", "BEY_AVATAR_ID"}

// SafetyAlertTopicARN is the local stand-in of the stack's safety topic (any well-formed ARN: the
// SNS stand-in keeps every message).
const SafetyAlertTopicARN = "arn:aws:sns:" + localstack.Region + ":000000000000:dev-safety-alerts"

// SafetyAlertsFile is where, under the log directory, the SNS stand-in appends each safety alert.
const SafetyAlertsFile = "safety-alerts.jsonl"

// agentSetup is what the dev stack gives every agent process and what it reports about it.
type agentSetup struct {
	env       []string
	providers string
	// realtimeControlURL scripts the stand-in Realtime server (empty with real provider keys).
	realtimeControlURL string
	stop               func()
}

// agentEnvironment is what every agent process gets on top of the session's variables: the
// task-definition environment and secrets of a deployment, pointed at the local stack. It always
// starts the stand-ins (their SNS double receives the safety alerts); without real provider keys the
// agent also talks to their Realtime and Bey stand-ins.
func agentEnvironment(ctx context.Context, paths localstack.Paths, o Options, stack *localstack.Stack) (agentSetup, error) {
	return agentEnvironmentFor(ctx, paths, o, stack, SessionsTable, CategoriesTable)
}

// StandinAgentEnvironment is the static environment of a local agent process or pool worker on
// stack's tables, always with the stand-ins (integration tests); stop ends the stand-ins.
func StandinAgentEnvironment(ctx context.Context, stack *localstack.Stack, sessionsTable, categoriesTable, logDir string, log *slog.Logger) (env []string, stop func(), err error) {
	o := Options{LogDir: logDir, EnvFile: os.DevNull, Log: log}
	setup, err := agentEnvironmentFor(ctx, stack.Paths, o, stack, sessionsTable, categoriesTable)
	if err != nil {
		return nil, nil, err
	}
	return setup.env, setup.stop, nil
}

func agentEnvironmentFor(ctx context.Context, paths localstack.Paths, o Options, stack *localstack.Stack, sessionsTable, categoriesTable string) (agentSetup, error) {
	env := []string{
		"LIVEKIT_URL=" + stack.LiveKit.WSURL,
		"LIVEKIT_API_KEY=" + stack.LiveKit.APIKey,
		"LIVEKIT_API_SECRET=" + stack.LiveKit.APISecret,
		"CATEGORIES_TABLE=" + categoriesTable,
		"AWS_REGION=" + localstack.Region,
		"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local",
		"AWS_ENDPOINT_URL_DYNAMODB=" + stack.DynamoDB.Endpoint,
		"AGENT_STUDENT_JOIN_TIMEOUT_SECONDS=300",
		"SESSIONS_TABLE=" + sessionsTable,
		"SAFETY_ALERT_TOPIC_ARN=" + SafetyAlertTopicARN,
		"AGENT_SAFETY_GRACE_SECONDS=" + safetyGraceSeconds,
	}
	file, err := readEnvFile(o.EnvFile)
	if err != nil {
		return agentSetup{}, err
	}
	urls, stop, err := startStandins(ctx, paths, o.LogDir, o.Log)
	if err != nil {
		return agentSetup{}, err
	}
	env = append(env, "AWS_ENDPOINT_URL_SNS="+urls.SNSURL)
	real := true
	for _, k := range providerKeys {
		if file[k] == "" {
			real = false
		}
	}
	if real {
		for k, v := range file {
			env = append(env, k+"="+v)
		}
		return agentSetup{env: env, providers: "real services (keys from " + o.EnvFile + ")", stop: stop}, nil
	}
	env = append(env,
		"OPENAI_API_KEY=standin", "OPENAI_BASE_URL="+urls.OpenAIBaseURL,
		"BEY_API_KEY=standin", "BEY_API_URL="+urls.BeyAPIURL, "BEY_AVATAR_ID=standin-avatar")
	return agentSetup{
		env:                env,
		providers:          "local stand-ins (no provider keys in " + o.EnvFile + "): Realtime " + urls.OpenAIBaseURL + ", Bey " + urls.BeyAPIURL,
		realtimeControlURL: strings.TrimSuffix(urls.OpenAIBaseURL, "/v1") + "/control/student-speech",
		stop:               stop,
	}, nil
}

type standinURLs struct {
	Event         string `json:"event"`
	OpenAIBaseURL string `json:"openai_base_url"`
	BeyAPIURL     string `json:"bey_api_url"`
	SNSURL        string `json:"sns_url"`
}

// standinLine is the part of a stand-ins log line the dev stack reacts to.
type standinLine struct {
	Msg       string `json:"msg"`
	Subject   string `json:"subject"`
	MessageID string `json:"message_id"`
}

// startStandins runs agentimage's stand-in Realtime, Bey and SNS servers and waits for their ready
// line. Each safety alert the SNS stand-in receives is appended to SafetyAlertsFile and announced on
// the dev stack's own log.
func startStandins(ctx context.Context, paths localstack.Paths, logDir string, log *slog.Logger) (standinURLs, func(), error) {
	entry := filepath.Join(paths.Root, "agentimage", "dist", "standins", "main.js")
	if _, err := os.Stat(entry); err != nil {
		return standinURLs{}, nil, fmt.Errorf("%s missing: run `make agent-deps`", entry)
	}
	logFile, err := os.Create(filepath.Join(logDir, "standins.log"))
	if err != nil {
		return standinURLs{}, nil, err
	}
	alerts := filepath.Join(logDir, SafetyAlertsFile)
	cmd := exec.Command("node", entry, "--safety-alert-file", alerts)
	cmd.Dir = filepath.Join(paths.Root, "agentimage")
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return standinURLs{}, nil, err
	}
	if err := cmd.Start(); err != nil {
		return standinURLs{}, nil, fmt.Errorf("start stand-ins: %w", err)
	}
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(6 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		logFile.Close()
	}
	ready := make(chan standinURLs, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			line := sc.Bytes()
			fmt.Fprintln(logFile, string(line))
			var u standinURLs
			if !sent && json.Unmarshal(line, &u) == nil && u.Event == "standins_ready" {
				ready <- u
				sent = true
			}
			var l standinLine
			if json.Unmarshal(line, &l) == nil && l.Msg == "sns publish" {
				log.Warn("SAFETY ALERT to the counseling staff (local SNS stand-in)", "subject", l.Subject, "message_id", l.MessageID, "file", alerts)
			}
		}
		_, _ = io.Copy(logFile, stdout)
	}()
	select {
	case u := <-ready:
		return u, stop, nil
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	stop()
	return standinURLs{}, nil, fmt.Errorf("stand-ins not ready within 30 s; see %s", logFile.Name())
}
