package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/encoding/protojson"

	"counselvideo/infra/localstack"
	"counselvideo/shared/metrics/emftest"
	"counselvideo/shared/sessions"
	"counselvideo/shared/sweeper"
	"counselvideo/shared/webhook/webhooktest"
)

// startUnderRIE builds ./functions/<name> as Lambda does, for this machine, and runs the real
// bootstrap under aws-lambda-rie with only its configuration (and what the SDK needs to find AWS).
func startUnderRIE(t *testing.T, name string, env map[string]string) *localstack.Lambda {
	t.Helper()
	bin, err := localstack.BuildBootstrap(env_stackPaths(), name, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	vars := []string{"PATH=" + os.Getenv("PATH")}
	for _, k := range []string{"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_ECS", "AWS_EC2_METADATA_DISABLED"} {
		vars = append(vars, k+"="+os.Getenv(k))
	}
	for k, v := range env {
		vars = append(vars, k+"="+v)
	}
	fn, err := localstack.StartLambda(env_stackPaths(), bin, vars)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fn.Stop)
	return fn
}

func env_stackPaths() localstack.Paths { return env.stack.Paths }

func invoke(t *testing.T, fn *localstack.Lambda, ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	var out events.APIGatewayV2HTTPResponse
	if err := fn.Invoke(ev, &out); err != nil || out.StatusCode == 0 {
		t.Fatalf("invocation: %v %+v; function output:\n%s", err, out, fn.Output())
	}
	return out
}

func httpEvent(method, path, requestID string, headers map[string]string, body string, base64Body bool) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default", RawPath: path, Headers: headers, Body: body, IsBase64Encoded: base64Body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: requestID, Stage: "$default", DomainName: "api.example.test",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path, Protocol: "HTTP/1.1", SourceIP: "203.0.113.9"},
		},
	}
}

// TestAPILambdaUnderRIE runs the real API bootstrap with an HTTP API v2 event.
func TestAPILambdaUnderRIE(t *testing.T) {
	fn := startUnderRIE(t, "api", apiEnv(nil))
	st := newStudent(t)
	cat := enabledCategory(t)

	res := invoke(t, fn, httpEvent("POST", "/api/v1/video/create-room", "apigw-req-1",
		map[string]string{"authorization": "Bearer " + st.tokens.ID, "content-type": "application/json"},
		`{"counselor_category":"`+cat.ID+`"}`, false))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("create-room under RIE: %d %s\n%s", res.StatusCode, res.Body, fn.Output())
	}
	var room createdRoom
	if err := json.Unmarshal([]byte(res.Body), &room); err != nil || room.SessionID == "" || room.AccessToken == "" {
		t.Fatalf("body %s", res.Body)
	}
	if got := headerValue(res.Headers, "X-Request-Id"); got != "apigw-req-1" {
		t.Fatalf("request id %q, want API Gateway's", got)
	}
	if listRoom(t, room.RoomName) == nil {
		t.Fatal("room not created")
	}
	if !strings.Contains(fn.Output(), `"request_id":"apigw-req-1"`) {
		t.Fatalf("logs lack the API Gateway request id:\n%s", fn.Output())
	}

	res = invoke(t, fn, httpEvent("POST", "/api/v1/video/create-room", "apigw-req-2",
		map[string]string{"content-type": "application/json"}, `{}`, false))
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(res.Body, `"request_id":"apigw-req-2"`) {
		t.Fatalf("unauthenticated under RIE: %d %s", res.StatusCode, res.Body)
	}
}

// TestWebhookLambdaUnderRIE: the webhook bootstrap verifies a base64-encoded body, as API Gateway
// delivers application/webhook+json, and refuses a forged one.
func TestWebhookLambdaUnderRIE(t *testing.T) {
	fn := startUnderRIE(t, "webhook", map[string]string{
		"LIVEKIT_URL": env.stack.LiveKit.URL, "LIVEKIT_API_KEY": env.stack.LiveKit.APIKey, "LIVEKIT_API_SECRET": env.stack.LiveKit.APISecret,
		"SESSIONS_TABLE": sessionsTable, "AGENT_LAUNCHER": "ecs", "ECS_CLUSTER": "counsel-agents",
	})
	ev := &livekit.WebhookEvent{Event: "room_started", Id: fmt.Sprintf("EV_rie_%d", time.Now().UnixNano()),
		Room: &livekit.Room{Name: "not-ours-room", Sid: "RM_x"}, CreatedAt: time.Now().Unix()}
	body, _ := protojson.Marshal(ev)
	signed, _ := webhooktest.Sign(env.stack.LiveKit.APIKey, env.stack.LiveKit.APISecret, body)
	forged, _ := webhooktest.Sign(env.stack.LiveKit.APIKey, "wrong-secret-wrong-secret-wrong-secret", body)

	for _, c := range []struct {
		name, token string
		want        int
	}{{"signed", signed, http.StatusOK}, {"forged", forged, http.StatusUnauthorized}} {
		res := invoke(t, fn, httpEvent("POST", "/livekit/webhook", "apigw-hook-"+c.name,
			map[string]string{"authorization": c.token, "content-type": "application/webhook+json"},
			base64.StdEncoding.EncodeToString(body), true))
		if res.StatusCode/100 != c.want/100 || (c.want == 401 && res.StatusCode != 401) {
			t.Fatalf("%s webhook under RIE: %d %s\n%s", c.name, res.StatusCode, res.Body, fn.Output())
		}
	}
	_ = context.Background
}

// TestSweeperLambdaUnderRIE: with LiveKit failing, the real sweeper bootstrap still answers its
// scheduled invocation with a report that counts the failures, not with an error (a failed
// invocation is retried by the scheduler, overlapping the next run).
func TestSweeperLambdaUnderRIE(t *testing.T) {
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	}))
	t.Cleanup(unavailable.Close)
	vars := lifecycleEnv()
	vars["LIVEKIT_URL"] = unavailable.URL
	vars["STACK_NAME"] = metricsStack
	fn := startUnderRIE(t, "sweeper", vars)

	// An open session old enough to be examined; its room cannot be checked.
	st := newStudent(t)
	id := newSessionID()
	s := sessions.Session{SessionID: id, UserID: st.sub, CategoryID: "c", CategoryName: "c", Mode: sessions.ModeVideo,
		RoomName: sessions.RoomName(id), Status: sessions.StatusActive, CreatedAt: time.Now().UTC().Add(-5 * time.Minute)}
	if _, err := sessionStore().Create(context.Background(), s, sessions.Admission{LockTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = sessionStore().End(context.Background(), id, sessions.Ending{Status: sessions.StatusEnded, At: time.Now(), Reason: "test cleanup"})
	})

	var out struct {
		sweeper.Report
		ErrorMessage string `json:"errorMessage"`
	}
	scheduled := map[string]any{"version": "0", "id": "rie-sweep-1", "detail-type": "Scheduled Event", "source": "aws.events", "detail": map[string]any{}}
	if err := fn.Invoke(scheduled, &out); err != nil {
		t.Fatalf("invocation: %v\n%s", err, fn.Output())
	}
	if out.ErrorMessage != "" || out.Examined == 0 || out.Errors == 0 || len(out.Failures) == 0 {
		t.Fatalf("report %+v\n%s", out, fn.Output())
	}
	if !strings.Contains(fn.Output(), `"msg":"session check failed"`) || !strings.Contains(fn.Output(), id) {
		t.Fatalf("the failure is not logged with the session id:\n%s", fn.Output())
	}
	if got := getSession(t, id); got.Status != sessions.StatusActive {
		t.Fatalf("a session that could not be checked was closed: %+v", got)
	}
	// The run's metric line: it ran (what the not-running alarm watches) and it failed (what the
	// failures alarm watches; Lambda's Errors stays 0).
	ms := emitted(t, "sweeper", fn)
	if emftest.Sum(metricsOf(ms, "SweepRuns")) != 1 || emftest.Sum(metricsOf(ms, "SweepErrors")) != float64(out.Errors) ||
		emftest.Sum(metricsOf(ms, "SweepExamined")) != float64(out.Examined) {
		t.Fatalf("sweeper metrics %+v for report %+v", ms, out.Report)
	}
}

func headerValue(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}
