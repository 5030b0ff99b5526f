package devstack

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"counselvideo/infra/localstack"
)

// providerKeys must all be present in the env file to use the real OpenAI and Beyond Presence.
var providerKeys = []string{"OPENAI_API_KEY", "BEY_API_KEY", "BEY_AVATAR_ID"}

// agentEnvironment is what every agent process gets on top of the session's variables: the
// task-definition environment and secrets of a deployment, pointed at the local stack. Without real
// provider keys it starts the stand-ins the agent's tests use.
func agentEnvironment(ctx context.Context, paths localstack.Paths, o Options, stack *localstack.Stack) ([]string, string, func(), error) {
	env := []string{
		"LIVEKIT_URL=" + stack.LiveKit.WSURL,
		"LIVEKIT_API_KEY=" + stack.LiveKit.APIKey,
		"LIVEKIT_API_SECRET=" + stack.LiveKit.APISecret,
		"CATEGORIES_TABLE=" + CategoriesTable,
		"AWS_REGION=" + localstack.Region,
		"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local",
		"AWS_ENDPOINT_URL_DYNAMODB=" + stack.DynamoDB.Endpoint,
		"AGENT_STUDENT_JOIN_TIMEOUT_SECONDS=300",
	}
	file, err := readEnvFile(o.EnvFile)
	if err != nil {
		return nil, "", nil, err
	}
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
		return env, "real services (keys from " + o.EnvFile + ")", func() {}, nil
	}
	urls, stop, err := startStandins(ctx, paths, o.LogDir)
	if err != nil {
		return nil, "", nil, err
	}
	env = append(env,
		"OPENAI_API_KEY=standin", "OPENAI_BASE_URL="+urls.OpenAIBaseURL,
		"BEY_API_KEY=standin", "BEY_API_URL="+urls.BeyAPIURL, "BEY_AVATAR_ID=standin-avatar")
	return env, "local stand-ins (no provider keys in " + o.EnvFile + "): Realtime " + urls.OpenAIBaseURL + ", Bey " + urls.BeyAPIURL, stop, nil
}

type standinURLs struct {
	Event         string `json:"event"`
	OpenAIBaseURL string `json:"openai_base_url"`
	BeyAPIURL     string `json:"bey_api_url"`
}

// startStandins runs agentimage's stand-in Realtime and Bey servers and waits for their ready line.
func startStandins(ctx context.Context, paths localstack.Paths, logDir string) (standinURLs, func(), error) {
	entry := filepath.Join(paths.Root, "agentimage", "dist", "standins", "main.js")
	if _, err := os.Stat(entry); err != nil {
		return standinURLs{}, nil, fmt.Errorf("%s missing: run `make agent-deps`", entry)
	}
	logFile, err := os.Create(filepath.Join(logDir, "standins.log"))
	if err != nil {
		return standinURLs{}, nil, err
	}
	cmd := exec.Command("node", entry)
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
