package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"counselvideo/infra/localstack"
	"counselvideo/shared/app"
	"counselvideo/shared/config"
	"counselvideo/shared/httpapi"
	"counselvideo/shared/logging"
	"counselvideo/shared/sessions"
)

// apiEnv is the configuration contract as a deployment would set it, pointing at the local stack.
func apiEnv(overrides map[string]string) map[string]string {
	e := map[string]string{
		"LIVEKIT_URL":            env.stack.LiveKit.URL,
		"LIVEKIT_PUBLIC_URL":     env.stack.LiveKit.WSURL,
		"LIVEKIT_API_KEY":        env.stack.LiveKit.APIKey,
		"LIVEKIT_API_SECRET":     env.stack.LiveKit.APISecret,
		"SESSIONS_TABLE":         sessionsTable,
		"CATEGORIES_TABLE":       categoriesTable,
		"COGNITO_ISSUER":         env.pool.Issuer,
		"COGNITO_CLIENT_IDS":     env.pool.ClientID,
		"AGENT_LAUNCHER":         "ecs",
		"ECS_CLUSTER":            "counsel-agents",
		"AGENT_TASK_DEFINITION":  "counsel-agent:7",
		"AGENT_CONTAINER_NAME":   "agent",
		"AGENT_SUBNETS":          "subnet-aaa,subnet-bbb",
		"AGENT_SECURITY_GROUPS":  "sg-123",
		"AGENT_ASSIGN_PUBLIC_IP": "ENABLED",
		"LOG_LEVEL":              "debug",
	}
	for k, v := range overrides {
		if v == "" {
			delete(e, k)
		} else {
			e[k] = v
		}
	}
	return e
}

// syncBuffer collects the API's JSON logs so tests can check what was (not) logged.
type syncBuffer struct {
	ch chan struct{}
	b  bytes.Buffer
}

func newSyncBuffer() *syncBuffer {
	s := &syncBuffer{ch: make(chan struct{}, 1)}
	s.ch <- struct{}{}
	return s
}
func (s *syncBuffer) Write(p []byte) (int, error) {
	<-s.ch
	defer func() { s.ch <- struct{}{} }()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string {
	<-s.ch
	defer func() { s.ch <- struct{}{} }()
	return s.b.String()
}

type apiServer struct {
	*httptest.Server
	logs *syncBuffer
}

// startAPI serves the real API handler, built by the same wiring as the Lambda, on a loopback port.
func startAPI(t *testing.T, overrides map[string]string) *apiServer {
	t.Helper()
	return startAPIWith(t, overrides, app.Deps{})
}

// startAPIWith is startAPI with components replaced (deps.Log is always the test's buffer).
func startAPIWith(t *testing.T, overrides map[string]string, deps app.Deps) *apiServer {
	t.Helper()
	e := apiEnv(overrides)
	cfg, err := config.Load(config.API, func(k string) string { return e[k] })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	awsCfg, err := app.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	logs := newSyncBuffer()
	deps.Log = logging.New(logs, "debug")
	h, err := app.NewAPIHandler(ctx, cfg, awsCfg, deps, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &apiServer{Server: srv, logs: logs}
}

// student is a signed-up cognito-local user.
type student struct {
	name, sub string
	tokens    localstack.Tokens
}

var studentSeq atomic.Int64

func newStudent(t testing.TB) student {
	t.Helper()
	name := fmt.Sprintf("student-%d-%d@example.edu", studentSeq.Add(1), time.Now().UnixNano())
	ctx := context.Background()
	sub, err := env.stack.Cognito.CreateUser(ctx, env.pool, name, password)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := env.stack.Cognito.Login(ctx, env.pool, name, password)
	if err != nil {
		t.Fatal(err)
	}
	return student{name: name, sub: sub, tokens: tok}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response %d is not JSON: %v: %s", r.status, err, r.body)
	}
}

// errorBody decodes and checks the one error shape.
func (r response) errorBody(t testing.TB) httpapi.ErrorDetail {
	t.Helper()
	var b httpapi.ErrorBody
	r.json(t, &b)
	if b.Error.Code == "" || b.Error.Message == "" || b.Error.RequestID == "" {
		t.Fatalf("error shape incomplete: %s", r.body)
	}
	return b.Error
}

func do(t testing.TB, method, url, token, contentType string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

type createdRoom struct {
	RoomURL     string `json:"room_url"`
	AccessToken string `json:"access_token"`
	RoomName    string `json:"room_name"`
	SessionID   string `json:"session_id"`
	Status      string `json:"status"`
	Resumed     bool   `json:"resumed"`
}

func createRoom(t testing.TB, api *apiServer, token, categoryID string) (response, createdRoom) {
	t.Helper()
	r := do(t, http.MethodPost, api.URL+"/api/v1/video/create-room", token, "application/json",
		strings.NewReader(fmt.Sprintf(`{"counselor_category": %q}`, categoryID)))
	var c createdRoom
	if r.status == http.StatusOK {
		r.json(t, &c)
	}
	return r, c
}

func sessionStore() *sessions.DynamoStore {
	return sessions.NewDynamoStore(env.stack.DynamoDB.Client, sessionsTable)
}
