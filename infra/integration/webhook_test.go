package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"google.golang.org/protobuf/encoding/protojson"

	"counselvideo/shared/app"
	"counselvideo/shared/config"
	"counselvideo/shared/logging"
	"counselvideo/shared/sessions"
	"counselvideo/shared/sweeper"
	"counselvideo/shared/webhook"
	"counselvideo/shared/webhook/webhooktest"
)

// lifecycleEnv is the webhook/sweeper configuration as a deployment sets it, pointing at the local stack.
func lifecycleEnv() map[string]string {
	return map[string]string{
		"LIVEKIT_URL":        env.stack.LiveKit.URL,
		"LIVEKIT_API_KEY":    env.stack.LiveKit.APIKey,
		"LIVEKIT_API_SECRET": env.stack.LiveKit.APISecret,
		"SESSIONS_TABLE":     sessionsTable,
		"AGENT_LAUNCHER":     "ecs",
		"ECS_CLUSTER":        "counsel-agents",
		"LOG_LEVEL":          "debug",
	}
}

func lifecycleConfig(t *testing.T, fn config.Function) config.Config {
	t.Helper()
	e := lifecycleEnv()
	cfg, err := config.Load(fn, func(k string) string { return e[k] })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// newWebhookHandler builds the webhook handler with the same wiring as the Lambda main.
func newWebhookHandler(t *testing.T) (*webhook.Handler, *syncBuffer) {
	t.Helper()
	cfg := lifecycleConfig(t, config.Webhook)
	awsCfg, err := app.AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	logs := newSyncBuffer()
	h, err := app.NewWebhookHandler(cfg, awsCfg, app.Deps{Log: logging.New(logs, "debug")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h, logs
}

func newSweeper(t *testing.T) *sweeper.Sweeper {
	t.Helper()
	cfg := lifecycleConfig(t, config.Sweeper)
	awsCfg, err := app.AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sw, err := app.NewSweeper(cfg, awsCfg, app.Deps{Log: logging.New(io.Discard, "debug")})
	if err != nil {
		t.Fatal(err)
	}
	if sw.MaxDuration != time.Hour || sw.AgentJoinTimeout != 3*time.Minute {
		t.Fatalf("sweeper defaults: max %s agent %s", sw.MaxDuration, sw.AgentJoinTimeout)
	}
	return sw
}

// installWebhooks routes livekit-server's webhooks to h for the rest of the test.
func installWebhooks(t *testing.T, h http.Handler) {
	t.Helper()
	env.webhooks.Set(h)
	t.Cleanup(func() { env.webhooks.Set(nil) })
}

// recorder keeps every webhook body livekit-server sends (for replay) and passes it on. drop, when
// set, answers 200 without passing the event on: a webhook LiveKit considers delivered but we lost.
type recorder struct {
	next http.Handler
	drop func(*livekit.WebhookEvent) bool

	mu     sync.Mutex
	events []*livekit.WebhookEvent
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var ev livekit.WebhookEvent
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, &ev); err == nil {
		rc.mu.Lock()
		rc.events = append(rc.events, &ev)
		rc.mu.Unlock()
		if rc.drop != nil && rc.drop(&ev) {
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	rc.next.ServeHTTP(w, r)
}

func (rc *recorder) forRoom(name string) []*livekit.WebhookEvent {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []*livekit.WebhookEvent
	for _, e := range rc.events {
		if e.GetRoom().GetName() == name {
			out = append(out, e)
		}
	}
	return out
}

// eventually polls cond until it holds; the deadline only bounds a hung test, nothing is timed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func getSession(t *testing.T, id string) sessions.Session {
	t.Helper()
	s, err := sessionStore().Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func waitStatus(t *testing.T, id string, want sessions.Status) sessions.Session {
	t.Helper()
	var s sessions.Session
	eventually(t, "session "+id+" "+string(want), func() bool { s = getSession(t, id); return s.Status == want })
	return s
}

// joinRoom connects a participant over WebRTC; it leaves at the end of the test at the latest.
func joinRoom(t *testing.T, token string) *lksdk.Room {
	t.Helper()
	r, err := lksdk.ConnectToRoomWithToken(env.stack.LiveKit.WSURL, token, &lksdk.RoomCallback{}, lksdk.WithAutoSubscribe(false))
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	t.Cleanup(r.Disconnect)
	return r
}

// agentToken is what the agent task joins with: kind AGENT, identity agent-<session_id>.
func agentToken(t *testing.T, sessionID string) string {
	t.Helper()
	tok, err := auth.NewAccessToken(env.stack.LiveKit.APIKey, env.stack.LiveKit.APISecret).
		SetIdentity("agent-" + sessionID).SetKind(livekit.ParticipantInfo_AGENT).SetValidFor(10 * time.Minute).
		SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: sessions.RoomName(sessionID)}).ToJWT()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// stopsFor returns the StopTask requests the ECS double received for a task.
func stopsFor(task string) []string {
	var reasons []string
	for _, in := range env.ecs.StopTasks() {
		if aws.ToString(in.Task) == task && aws.ToString(in.Cluster) == "counsel-agents" {
			reasons = append(reasons, aws.ToString(in.Reason))
		}
	}
	return reasons
}

// startLiveSession creates a room through the API and has the student join it.
func startLiveSession(t *testing.T, api *apiServer) (student, createdRoom, *lksdk.Room) {
	t.Helper()
	st := newStudent(t)
	r, room := createRoom(t, api, st.tokens.ID, enabledCategory(t).ID)
	if r.status != http.StatusOK {
		t.Fatalf("create-room: %d %s", r.status, r.body)
	}
	return st, room, joinRoom(t, room.AccessToken)
}

// TestWebhookRealLiveKitLifecycle: livekit-server's own webhooks drive a session from starting to
// active to ended; then the recorded events, replayed three times each in shuffled orders, give the
// same final record.
func TestWebhookRealLiveKitLifecycle(t *testing.T) {
	api := startAPI(t, nil)
	h, logs := newWebhookHandler(t)
	rec := &recorder{next: h}
	installWebhooks(t, rec)

	st := newStudent(t)
	r, room := createRoom(t, api, st.tokens.ID, enabledCategory(t).ID)
	if r.status != http.StatusOK {
		t.Fatalf("create-room: %d %s", r.status, r.body)
	}
	initial := getSession(t, room.SessionID)
	if initial.Status != sessions.StatusStarting || initial.RoomSID == "" || initial.AgentTaskID == "" {
		t.Fatalf("created: %+v", initial)
	}
	rawInitial := rawSessionItem(t, room.SessionID)

	// The student joins: active.
	studentRoom := joinRoom(t, room.AccessToken)
	s := waitStatus(t, room.SessionID, sessions.StatusActive)
	if s.StudentJoinedAt.IsZero() || !s.EndedAt.IsZero() {
		t.Fatalf("active: %+v", s)
	}
	// The agent joins: agent_joined_at (time to agent).
	joinRoom(t, agentToken(t, room.SessionID))
	eventually(t, "agent_joined_at recorded", func() bool { return !getSession(t, room.SessionID).AgentJoinedAt.IsZero() })
	if s := getSession(t, room.SessionID); s.Status != sessions.StatusActive {
		t.Fatalf("agent join changed status: %s", s.Status)
	}

	// Long enough in the room for a duration of at least one second (not a timing assertion).
	time.Sleep(2500 * time.Millisecond)
	studentRoom.Disconnect()

	// The student left: the webhook deletes the room, room_finished ends the session and stops the task.
	final := waitStatus(t, room.SessionID, sessions.StatusEnded)
	if final.DurationSeconds < 1 || final.EndedAt.Before(final.StudentJoinedAt) || final.EndReason == "" {
		t.Fatalf("ended: %+v", final)
	}
	eventually(t, "room deleted", func() bool { return listRoom(t, room.RoomName) == nil })
	eventually(t, "StopTask sent", func() bool { return len(stopsFor(initial.AgentTaskID)) > 0 })
	if reason := stopsFor(initial.AgentTaskID)[0]; !strings.Contains(reason, room.SessionID) {
		t.Fatalf("StopTask reason %q", reason)
	}
	// The active-session lock is gone: a new create-room starts a new session.
	if r, next := createRoom(t, api, st.tokens.ID, enabledCategory(t).ID); r.status != http.StatusOK || next.Resumed || next.SessionID == room.SessionID {
		t.Fatalf("create-room after the end: %d %+v", r.status, next)
	} else {
		t.Cleanup(func() { _ = roomClientDelete(next.RoomName) })
	}
	out := logs.String()
	if !strings.Contains(out, `"session_id":"`+room.SessionID+`"`) || !strings.Contains(out, `"user_id":"`+st.sub+`"`) || !strings.Contains(out, `"request_id":"`) {
		t.Fatalf("webhook logs lack ids:\n%s", out)
	}

	// Replay what livekit-server sent, each event three times, in shuffled orders, on a reset record.
	recorded := rec.forRoom(room.RoomName)
	kinds := map[string]bool{}
	for _, e := range recorded {
		kinds[e.Event] = true
	}
	for _, k := range []string{webhook.EventRoomStarted, webhook.EventParticipantJoined, webhook.EventParticipantLeft, webhook.EventRoomFinished} {
		if !kinds[k] {
			t.Fatalf("livekit-server sent no %s (got %v)", k, kinds)
		}
	}
	stopsBefore := len(stopsFor(initial.AgentTaskID))
	for seed := uint64(1); seed <= 3; seed++ {
		resetSession(t, rawInitial, recorded)
		var all []*livekit.WebhookEvent
		for _, e := range recorded {
			all = append(all, e, e, e)
		}
		rand.New(rand.NewPCG(seed, 7)).Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		for _, e := range all {
			if w := sendSigned(t, h, e); w.Code != http.StatusOK {
				t.Fatalf("replay %s: %d %s", e.Event, w.Code, w.Body)
			}
		}
		if got := getSession(t, room.SessionID); !reflect.DeepEqual(got, final) {
			t.Fatalf("replay %d converged to\n%+v\nlive result\n%+v", seed, got, final)
		}
		if n := len(stopsFor(initial.AgentTaskID)); n != stopsBefore+int(seed) {
			t.Fatalf("replay %d: %d StopTask calls, want one per replay", seed, n-stopsBefore)
		}
	}
}

func roomClientDelete(name string) error {
	_, err := roomClient().DeleteRoom(context.Background(), &livekit.DeleteRoomRequest{Room: name})
	return err
}

func rawSessionItem(t *testing.T, id string) map[string]types.AttributeValue {
	t.Helper()
	out, err := env.stack.DynamoDB.Client.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(sessionsTable), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "session#" + id}}, ConsistentRead: aws.Bool(true),
	})
	if err != nil || out.Item == nil {
		t.Fatalf("raw session item: %v", err)
	}
	return out.Item
}

// resetSession puts the session record back as it was and forgets the events' dedupe claims.
func resetSession(t *testing.T, item map[string]types.AttributeValue, evs []*livekit.WebhookEvent) {
	t.Helper()
	ctx := context.Background()
	if _, err := env.stack.DynamoDB.Client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(sessionsTable), Item: item}); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if err := sessionStore().ReleaseEvent(ctx, e.Id); err != nil {
			t.Fatal(err)
		}
	}
}

func signBody(t *testing.T, secret string, body []byte) string {
	t.Helper()
	tok, err := webhooktest.Sign(env.stack.LiveKit.APIKey, secret, body)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func sendSigned(t *testing.T, h http.Handler, e *livekit.WebhookEvent) *httptest.ResponseRecorder {
	t.Helper()
	body, err := protojson.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return postWebhook(h, body, signBody(t, env.stack.LiveKit.APISecret, body))
}

var postWebhook = webhooktest.Post

// storedSession creates a `starting` session directly in DynamoDB (no room needed).
func storedSession(t *testing.T) sessions.Session {
	t.Helper()
	st := newStudent(t)
	id := newSessionID()
	s := sessions.Session{SessionID: id, UserID: st.sub, CategoryID: "c", CategoryName: "c", Mode: sessions.ModeVideo,
		RoomName: sessions.RoomName(id), Status: sessions.StatusStarting, CreatedAt: time.Now().UTC()}
	ctx := context.Background()
	if _, err := sessionStore().Create(ctx, s, sessions.Admission{LockTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := sessionStore().MarkStarted(ctx, id, sessions.Started{RoomSID: "RM_" + id[:8], AgentTaskID: "arn:aws:ecs:us-east-1:000000000000:task/counsel-agents/" + id, AgentSource: "cold", At: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	return getSession(t, id)
}

func studentJoinedEvent(s sessions.Session, id string) *livekit.WebhookEvent {
	now := time.Now()
	return &livekit.WebhookEvent{Id: id, Event: webhook.EventParticipantJoined, CreatedAt: now.Unix(),
		Room:        &livekit.Room{Sid: s.RoomSID, Name: s.RoomName},
		Participant: &livekit.ParticipantInfo{Identity: s.UserID, Kind: livekit.ParticipantInfo_STANDARD, JoinedAt: now.Unix(), JoinedAtMs: now.UnixMilli()}}
}

// TestWebhookSignatures: forged, wrongly signed, tampered, unsigned and expired requests get 401 and
// change nothing; genuine ones apply, plain or base64-encoded through the Lambda's API Gateway adapter.
func TestWebhookSignatures(t *testing.T) {
	h, _ := newWebhookHandler(t)
	s := storedSession(t)
	e := studentJoinedEvent(s, "EV_sig_"+s.SessionID)
	good, _ := protojson.Marshal(e)
	tampered := bytes.Replace(good, []byte(s.UserID), []byte("intruder-"+s.UserID[:8]), 1)
	forged := func() string { // right key id, signature by someone who does not know the secret
		tok := signBody(t, env.stack.LiveKit.APISecret, good)
		return tok[:len(tok)-4] + "AAAA"
	}()
	for _, c := range []struct {
		name  string
		body  []byte
		authz string
	}{
		{"missing header", good, ""},
		{"malformed", good, "Bearer nonsense"},
		{"forged signature", good, forged},
		{"wrong secret", good, signBody(t, "not-the-livekit-secret-at-all-0000", good)},
		{"tampered body", tampered, signBody(t, env.stack.LiveKit.APISecret, good)},
		{"base64 body not decoded", []byte(base64.StdEncoding.EncodeToString(good)), signBody(t, env.stack.LiveKit.APISecret, good)},
		{"expired", good, expiredToken(t, good)},
	} {
		if w := postWebhook(h, c.body, c.authz); w.Code != http.StatusUnauthorized {
			t.Fatalf("%s: %d, want 401", c.name, w.Code)
		}
	}
	if got := getSession(t, s.SessionID); !reflect.DeepEqual(got, s) {
		t.Fatalf("rejected requests changed the session: %+v", got)
	}

	// Through the Lambda's adapter: API Gateway HTTP API v2 event with a base64 body.
	lambdaHandler := httpadapter.NewV2(h).ProxyWithContext
	apigw := func(body string, isB64 bool, authz string) events.APIGatewayV2HTTPResponse {
		t.Helper()
		resp, err := lambdaHandler(context.Background(), events.APIGatewayV2HTTPRequest{
			Version: "2.0", RouteKey: "POST /livekit/webhook", RawPath: "/livekit/webhook",
			Headers: map[string]string{"authorization": authz, "content-type": "application/webhook+json"},
			Body:    body, IsBase64Encoded: isB64,
			RequestContext: events.APIGatewayV2HTTPRequestContext{RequestID: "apigw-req-1", Stage: "$default",
				HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: http.MethodPost, Path: "/livekit/webhook", SourceIP: "127.0.0.1"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	sig := signBody(t, env.stack.LiveKit.APISecret, good)
	if resp := apigw(base64.StdEncoding.EncodeToString(tampered), true, sig); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("tampered base64 body: %d", resp.StatusCode)
	}
	if resp := apigw(base64.StdEncoding.EncodeToString(good), true, sig); resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, "applied") {
		t.Fatalf("base64 body via the adapter: %d %s", resp.StatusCode, resp.Body)
	}
	if got := getSession(t, s.SessionID); got.Status != sessions.StatusActive {
		t.Fatalf("status %s after the base64 event", got.Status)
	}
	// The same event again (LiveKit retry): 2xx, no effect.
	if resp := apigw(base64.StdEncoding.EncodeToString(good), true, sig); resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, "duplicate") {
		t.Fatalf("duplicate: %d %s", resp.StatusCode, resp.Body)
	}
	// A plain (not base64) body through the adapter verifies too.
	fin := &livekit.WebhookEvent{Id: "EV_fin_" + s.SessionID, Event: webhook.EventRoomFinished, CreatedAt: time.Now().Unix(), Room: &livekit.Room{Sid: s.RoomSID, Name: s.RoomName}}
	plain, _ := protojson.Marshal(fin)
	if resp := apigw(string(plain), false, signBody(t, env.stack.LiveKit.APISecret, plain)); resp.StatusCode != http.StatusOK {
		t.Fatalf("plain body via the adapter: %d %s", resp.StatusCode, resp.Body)
	}
	if got := getSession(t, s.SessionID); got.Status != sessions.StatusEnded || len(stopsFor(s.AgentTaskID)) != 1 {
		t.Fatalf("after room_finished: %+v stops %v", got, stopsFor(s.AgentTaskID))
	}
	// Events of an older room with the same name and of rooms that are not ours: 2xx, ignored.
	stale := &livekit.WebhookEvent{Id: "EV_stale_" + s.SessionID, Event: webhook.EventRoomFinished, CreatedAt: time.Now().Unix(), Room: &livekit.Room{Sid: "RM_older", Name: s.RoomName}}
	foreign := &livekit.WebhookEvent{Id: "EV_foreign_" + s.SessionID, Event: webhook.EventRoomFinished, CreatedAt: time.Now().Unix(), Room: &livekit.Room{Sid: "RM_f", Name: "lobby"}}
	for _, e := range []*livekit.WebhookEvent{stale, foreign} {
		if w := sendSigned(t, h, e); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "ignored") {
			t.Fatalf("%s: %d %s", e.Id, w.Code, w.Body)
		}
	}
}

func newSessionID() string { return uuid.NewString() }

// expiredToken is a correctly signed webhook token for body that expired ten minutes ago (beyond the
// verifier's one-minute leeway).
func expiredToken(t *testing.T, body []byte) string {
	t.Helper()
	sum := sha256.Sum256(body)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": env.stack.LiveKit.APIKey, "sha256": base64.StdEncoding.EncodeToString(sum[:]),
		"nbf": time.Now().Add(-time.Hour).Unix(), "exp": time.Now().Add(-10 * time.Minute).Unix(),
	}).SignedString([]byte(env.stack.LiveKit.APISecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
