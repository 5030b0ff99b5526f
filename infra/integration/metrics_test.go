package integration

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"counselvideo/infra/localstack"
	"counselvideo/shared/metrics"
	"counselvideo/shared/metrics/emftest"
	"counselvideo/shared/sessions"
)

const metricsStack = "it-metrics"

// viaWebhookLambda hands livekit-server's webhooks to the webhook bootstrap under RIE as API Gateway
// delivers them (base64 body), one at a time (the emulator runs one invocation at a time).
func viaWebhookLambda(fn *localstack.Lambda) http.Handler {
	var mu sync.Mutex
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		headers := map[string]string{}
		for k := range r.Header {
			headers[strings.ToLower(k)] = r.Header.Get(k)
		}
		ev := httpEvent(http.MethodPost, "/livekit/webhook", fmt.Sprintf("apigw-hook-%d", n.Add(1)), headers,
			base64.StdEncoding.EncodeToString(body), true)
		mu.Lock()
		var out events.APIGatewayV2HTTPResponse
		err := fn.Invoke(ev, &out)
		mu.Unlock()
		if err != nil || out.StatusCode == 0 {
			http.Error(w, "invocation failed", http.StatusBadGateway)
			return
		}
		w.WriteHeader(out.StatusCode)
		_, _ = io.WriteString(w, out.Body)
	})
}

// emitted validates every EMF line of a bootstrap's output and checks they all carry the stack name.
func emitted(t *testing.T, name string, fn *localstack.Lambda) []emftest.Metric {
	t.Helper()
	ms, problems := emftest.Lines(fn.Output())
	for _, p := range problems {
		t.Errorf("%s: %s", name, p)
	}
	for _, m := range ms {
		if m.Namespace != metrics.Namespace || m.Dimensions[metrics.DimStack] != metricsStack {
			t.Errorf("%s: %s in %s with Stack %q", name, m.Name, m.Namespace, m.Dimensions[metrics.DimStack])
		}
	}
	return ms
}

func metricsOf(ms []emftest.Metric, name string, dims ...string) []emftest.Metric {
	return emftest.Find(ms, name, emftest.Dims(metricsStack, dims...))
}

// TestMetricsOfARealFlowUnderRIE runs a session through the real API and webhook bootstraps under
// the Lambda emulator, with livekit-server's own webhooks: create-room, the student and the agent join
// over WebRTC, the student ends the session, room_finished follows. What the bootstraps printed is
// read back as CloudWatch would: every EMF line valid, on a line of its own, and the session's story
// in the metrics (created once, agent and student joined once, ended once by the student).
func TestMetricsOfARealFlowUnderRIE(t *testing.T) {
	api := startUnderRIE(t, "api", apiEnv(map[string]string{"STACK_NAME": metricsStack}))
	hookEnv := lifecycleEnv()
	hookEnv["STACK_NAME"] = metricsStack
	hook := startUnderRIE(t, "webhook", hookEnv)
	installWebhooks(t, viaWebhookLambda(hook))

	st := newStudent(t)
	res := invoke(t, api, httpEvent(http.MethodPost, "/api/v1/video/create-room", "apigw-metrics-1",
		map[string]string{"authorization": "Bearer " + st.tokens.ID, "content-type": "application/json"},
		`{"counselor_category":"`+enabledCategory(t).ID+`"}`, false))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("create-room: %d %s\n%s", res.StatusCode, res.Body, api.Output())
	}
	var room createdRoom
	if err := json.Unmarshal([]byte(res.Body), &room); err != nil {
		t.Fatal(err)
	}
	joinRoom(t, room.AccessToken)
	joinRoom(t, agentToken(t, room.SessionID))
	eventually(t, "both joins recorded", func() bool {
		s := getSession(t, room.SessionID)
		return s.Status == sessions.StatusActive && !s.AgentJoinedAt.IsZero()
	})
	time.Sleep(1500 * time.Millisecond) // a duration of at least a second (not a timing assertion)

	res = invoke(t, api, httpEvent(http.MethodPost, "/api/v1/video/sessions/"+room.SessionID+"/end", "apigw-metrics-2",
		map[string]string{"authorization": "Bearer " + st.tokens.ID}, "", false))
	if res.StatusCode/100 != 2 {
		t.Fatalf("end: %d %s", res.StatusCode, res.Body)
	}
	eventually(t, "room_finished handled by the webhook bootstrap", func() bool {
		return strings.Contains(hook.Output(), `"msg":"room finished for a session already closed"`)
	})

	apiMetrics, hookMetrics := emitted(t, "api", api), emitted(t, "webhook", hook)
	check := func(what string, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("%s\napi: %+v\nwebhook: %+v", what, apiMetrics, hookMetrics)
		}
	}
	created := metricsOf(apiMetrics, "SessionsCreated")
	check("one SessionsCreated with the session id", len(created) == 1 && created[0].Doc["session_id"] == room.SessionID)
	check("create-room's latency, outcome created", len(metricsOf(apiMetrics, "CreateRoomLatency", metrics.DimOutcome, "created")) == 1)
	check("ended once, by the student", len(metricsOf(apiMetrics, "SessionsEnded", metrics.DimReason, "ended_by_student")) == 1 &&
		len(metricsOf(hookMetrics, "SessionsEnded")) == 0)
	d := metricsOf(apiMetrics, "SessionDuration")
	check("a session duration of at least a second", len(d) == 1 && d[0].Values[0] >= 1)
	agent := metricsOf(hookMetrics, "TimeToAgent", metrics.DimAgentSource, "cold")
	check("time to agent once, positive", len(agent) == 1 && agent[0].Values[0] > 0 && agent[0].Doc["session_id"] == room.SessionID)
	check("time to student once", len(metricsOf(hookMetrics, "TimeToStudent")) == 1)
	applied := emftest.Sum(metricsOf(hookMetrics, "WebhookEvents", metrics.DimResult, "applied"))
	check("the joins and room_finished applied", applied >= 3)
	check("nothing rejected or failed", len(metricsOf(hookMetrics, "WebhookEvents", metrics.DimResult, "rejected"))+
		len(metricsOf(hookMetrics, "WebhookEvents", metrics.DimResult, "failed")) == 0)
	check("no failure", len(metricsOf(apiMetrics, "SessionsFailed"))+len(metricsOf(hookMetrics, "SessionsFailed")) == 0)
}
