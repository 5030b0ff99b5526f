// Command dev runs the whole system locally (`make dev`): real livekit-server, DynamoDB Local and
// cognito-local on loopback, the API, webhook and sweeper, and an agent process per session.
// Ctrl-C stops everything it started.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"counselvideo/infra/devstack"
	"counselvideo/shared/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	poolSize, err := poolSizeFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "make dev:", err)
		os.Exit(1)
	}
	r, err := devstack.Start(ctx, devstack.Options{
		APIAddr: os.Getenv("DEV_API_ADDR"), PlaygroundAddr: os.Getenv("DEV_PLAYGROUND_ADDR"), LogDir: os.Getenv("DEV_LOG_DIR"),
		AgentPoolSize: poolSize, Log: logging.New(os.Stderr, "info"),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "make dev:", err)
		os.Exit(1)
	}
	defer r.Stop()
	tok, err := r.Token(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "make dev: sign in the test student:", err)
		os.Exit(1)
	}
	printWelcome(r, tok.ID)
	// Tests and scripts that start `make dev` read the addresses from here instead of the text above.
	if path := os.Getenv("DEV_READY_FILE"); path != "" {
		raw, _ := json.Marshal(map[string]string{
			"api_url": r.APIURL, "playground_url": r.PlaygroundURL, "livekit_url": r.Stack.LiveKit.URL,
			"dynamodb_endpoint": r.Stack.DynamoDB.Endpoint, "sessions_table": devstack.SessionsTable,
			"safety_alerts_file": r.SafetyAlerts, "realtime_control_url": r.RealtimeControlURL,
		})
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "make dev: write DEV_READY_FILE:", err)
		}
	}
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "\nstopping: agents, API, livekit-server, DynamoDB Local, cognito-local")
}

// defaultPoolSize: the playground shows the warm path by default; two workers keep one ready while
// the other is replaced after its session.
const defaultPoolSize = 2

// poolSizeFromEnv reads DEV_AGENT_POOL_SIZE (0 = no pool: an agent process per session).
func poolSizeFromEnv() (int, error) {
	v := strings.TrimSpace(os.Getenv("DEV_AGENT_POOL_SIZE"))
	if v == "" {
		return defaultPoolSize, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 8 {
		return 0, fmt.Errorf("DEV_AGENT_POOL_SIZE must be a whole number from 0 (no pool) to 8")
	}
	return n, nil
}

func agentsLine(r *devstack.Running) string {
	if r.AgentPool == nil {
		return "an agent process per session (DEV_AGENT_POOL_SIZE=0)"
	}
	return fmt.Sprintf("warm pool of %d workers (%s; DEV_AGENT_POOL_SIZE), an agent process per session when none is free", r.AgentPool.Size(), devstack.PoolAgentName)
}

func printWelcome(r *devstack.Running, idToken string) {
	fmt.Printf(`
Local stack is up.
  Playground      %[14]s   (sign in, pick a counselor, talk)
  API + webhook   %[1]s   (POST /api/v1/video/create-room, GET /api/v1/counselor-categories, ...)
  LiveKit         %[2]s   (API key devkey, secret "secret")
  DynamoDB Local  %[3]s   (tables %[4]s, %[5]s)
  cognito-local   %[6]s   (pool %[7]s, client %[8]s)
  Agent providers %[9]s
  Agents          %[16]s
  Logs            %[10]s
  Safety alerts   %[15]s   (what the counseling staff's SNS topic would receive)

Test student: %[11]s / %[12]s

Get a fresh ID token (valid 24 h):
  TOKEN=$(curl -s %[6]s/ -H 'Content-Type: application/x-amz-json-1.1' \
    -H 'X-Amz-Target: AWSCognitoIdentityProviderService.InitiateAuth' \
    -d '{"AuthFlow":"USER_PASSWORD_AUTH","ClientId":"%[8]s","AuthParameters":{"USERNAME":"%[11]s","PASSWORD":"%[12]s"}}' \
    | sed -E 's/.*"IdToken":"([^"]+)".*/\1/')

List categories and create a room:
  curl -s %[1]s/api/v1/counselor-categories -H "Authorization: Bearer $TOKEN"
  curl -s -X POST %[1]s/api/v1/video/create-room -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -d '{"counselor_category":"3f6c2a1e-8b4d-4c7a-9e21-5d0f7b3a6c11"}'

(A token for right now: TOKEN=%[13]s)

Ctrl-C stops everything.
`, r.APIURL, r.Stack.LiveKit.WSURL, r.Stack.DynamoDB.Endpoint, devstack.SessionsTable, devstack.CategoriesTable,
		r.Stack.Cognito.Endpoint, r.Pool.PoolID, r.Pool.ClientID, r.Providers, r.Stack.LogDir,
		devstack.StudentUsername, devstack.StudentPassword, idToken, r.PlaygroundURL, r.SafetyAlerts, agentsLine(r))
}
