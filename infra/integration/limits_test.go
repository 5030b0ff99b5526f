package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/livekit/protocol/livekit"

	"counselvideo/infra/localstack"
	"counselvideo/shared/httpapi"
	"counselvideo/shared/sessions"
	"counselvideo/shared/sweeper"
)

// The cost guards on the real stack: the per-student daily limits and the global open-session cap,
// under concurrency, through every ending and after failed setups. The open-session counter is one
// item of the shared table: every test here leaves it where it found it (zero), and the cap test
// refuses to start on a counter something else left behind.

func openCount(t *testing.T) int64 {
	t.Helper()
	n, err := sessionStore().OpenSessionCount(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func usageOf(t *testing.T, userID string) sessions.Usage {
	t.Helper()
	u, err := sessionStore().StudentUsage(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// endSession ends a session through the API, as the student's hang-up does.
func endSession(t *testing.T, api *apiServer, st student, sessionID string) {
	t.Helper()
	r := do(t, http.MethodPost, api.URL+"/api/v1/video/sessions/"+sessionID+"/end", st.tokens.ID, "", nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("end %s: %d %s", sessionID, r.status, r.body)
	}
}

// endOnCleanup ends whatever sessions a test left open, so the counter is back where it was.
func endOnCleanup(t *testing.T, ids func() []string) {
	t.Cleanup(func() {
		for _, id := range ids() {
			_, _ = sessionStore().End(context.Background(), id, sessions.Ending{Status: sessions.StatusEnded, At: time.Now(), Reason: "test cleanup"})
		}
	})
}

// refused checks a cost-guard refusal: status, the one error shape with code, a Retry-After within
// [lo, hi] seconds, and no internals in the message.
func refused(t *testing.T, r response, status int, code string, lo, hi int) httpapi.ErrorDetail {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	e := r.errorBody(t)
	if e.Code != code {
		t.Fatalf("code %q, want %q", e.Code, code)
	}
	retry, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || retry < lo || retry > hi {
		t.Fatalf("Retry-After %q, want %d-%d", r.header.Get("Retry-After"), lo, hi)
	}
	for _, leak := range []string{"dynamodb", "transaction", "counter", "capacity#", "usage#"} {
		if strings.Contains(strings.ToLower(e.Message), leak) {
			t.Fatalf("message leaks %q: %s", leak, e.Message)
		}
	}
	return e
}

type createAnswer struct {
	response
	room createdRoom
}

// createMany runs n create-room calls at once; call i uses tokens[i % len(tokens)].
func createMany(t *testing.T, api *apiServer, n int, tokens []string, cat string) []createAnswer {
	t.Helper()
	out := make([]createAnswer, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			r, c := createRoom(t, api, tokens[i%len(tokens)], cat)
			out[i] = createAnswer{r, c}
		})
	}
	close(start)
	wg.Wait()
	return out
}

// TestDailySessionLimitExactlyAtN: a student with N-1 sessions of the day sends 20 create-rooms at
// once: exactly one new session starts (the others get it back), the N-th; after it ends, every
// further create-room is refused with 429 until the oldest leaves the rolling day.
func TestDailySessionLimitExactlyAtN(t *testing.T) {
	const n = 3
	api := startAPI(t, map[string]string{"STUDENT_DAILY_SESSION_LIMIT": strconv.Itoa(n)})
	st := newStudent(t)
	cat := enabledCategory(t).ID
	firstAt := time.Now()
	for range n - 1 {
		r, room := createRoom(t, api, st.tokens.ID, cat)
		if r.status != http.StatusOK || room.Resumed {
			t.Fatalf("session of the day: %d %s", r.status, r.body)
		}
		endSession(t, api, st, room.SessionID)
	}
	tasksBefore := len(env.ecs.RunTasks())

	answers := createMany(t, api, 20, []string{st.tokens.ID}, cat)
	started := map[string]bool{}
	var last string
	for i, a := range answers {
		if a.status != http.StatusOK {
			t.Fatalf("call %d at N-1: %d %s", i, a.status, a.body)
		}
		if !a.room.Resumed {
			started[a.room.SessionID] = true
		}
		last = a.room.SessionID
	}
	if len(started) != 1 || !started[last] {
		t.Fatalf("20 concurrent calls at N-1 started %v, want exactly one session that all the others resumed", started)
	}
	if got := len(env.ecs.RunTasks()) - tasksBefore; got != 1 {
		t.Fatalf("%d RunTask calls, want 1", got)
	}
	if u := usageOf(t, st.sub); len(u.Sessions) != n {
		t.Fatalf("usage holds %d sessions, want %d", len(u.Sessions), n)
	}
	// At the limit with the N-th session open: the student gets it back (never refused).
	if r, c := createRoom(t, api, st.tokens.ID, cat); r.status != http.StatusOK || !c.Resumed || c.SessionID != last {
		t.Fatalf("resume at the limit: %d %s", r.status, r.body)
	}
	endSession(t, api, st, last)

	answers = createMany(t, api, 20, []string{st.tokens.ID}, cat)
	day := int(sessions.UsageWindow / time.Second)
	elapsed := int(time.Since(firstAt)/time.Second) + 1
	for _, a := range answers {
		e := refused(t, a.response, http.StatusTooManyRequests, httpapi.CodeStudentLimitReached, day-elapsed, day)
		if !strings.Contains(e.Message, "limit of 3 sessions in 24 hours") {
			t.Fatalf("message %q", e.Message)
		}
	}
	if list, _ := sessionStore().ListByUser(context.Background(), st.sub, 50); len(list) != n {
		t.Fatalf("%d session records, want %d: a refused call wrote one", len(list), n)
	}
	if got := len(env.ecs.RunTasks()) - tasksBefore; got != 1 {
		t.Fatalf("%d RunTask calls after the refusals, want still 1", got)
	}
}

// TestDailyMinutesCutTheAgentsMaximum: each session's maximum is what the student has left of the
// day's minutes (the agent gets it as its AGENT_MAX_DURATION_SECONDS override, the record keeps it for
// the sweeper), minutes used are the ended sessions' durations, and under a minute left is a 429.
func TestDailyMinutesCutTheAgentsMaximum(t *testing.T) {
	api := startAPI(t, map[string]string{"STUDENT_DAILY_MINUTES_LIMIT": "10"})
	st := newStudent(t)
	cat := enabledCategory(t).ID
	// talk starts a session, checks the maximum it was given (within 2 s of want) and has the
	// student talk for d: joined d ago (as the webhook records it), then hangs up.
	talk := func(want int64, d time.Duration) {
		t.Helper()
		r, room := createRoom(t, api, st.tokens.ID, cat)
		if r.status != http.StatusOK {
			t.Fatalf("create-room: %d %s", r.status, r.body)
		}
		var answer struct {
			MaxDurationSeconds int64 `json:"max_duration_seconds"`
		}
		r.json(t, &answer)
		rec := getSession(t, room.SessionID)
		override := ""
		for _, in := range env.ecs.RunTasks() {
			if aws.ToString(in.StartedBy) == room.SessionID {
				for _, kv := range in.Overrides.ContainerOverrides[0].Environment {
					if aws.ToString(kv.Name) == "AGENT_MAX_DURATION_SECONDS" {
						override = aws.ToString(kv.Value)
					}
				}
			}
		}
		if answer.MaxDurationSeconds < want-2 || answer.MaxDurationSeconds > want || rec.MaxDurationSeconds != answer.MaxDurationSeconds ||
			override != strconv.FormatInt(answer.MaxDurationSeconds, 10) {
			t.Fatalf("maximum: answer %d, record %d, agent override %q; want %d", answer.MaxDurationSeconds, rec.MaxDurationSeconds, override, want)
		}
		if err := sessionStore().RecordStudentJoin(context.Background(), room.SessionID, time.Now().Add(-d)); err != nil {
			t.Fatal(err)
		}
		endSession(t, api, st, room.SessionID)
	}
	firstAt := time.Now()
	talk(600, 7*time.Minute)
	talk(180, 2*time.Minute+30*time.Second) // about 30 s left: no session
	used := int64(0)
	for _, e := range usageOf(t, st.sub).Sessions {
		used += e.Seconds()
	}
	if used < 568 || used > 572 {
		t.Fatalf("usage counts %d s, want the two durations (about 570 s)", used)
	}
	r, _ := createRoom(t, api, st.tokens.ID, cat)
	day := int(sessions.UsageWindow / time.Second)
	e := refused(t, r, http.StatusTooManyRequests, httpapi.CodeStudentLimitReached, day-int(time.Since(firstAt)/time.Second)-1, day)
	if !strings.Contains(e.Message, "10 minutes") {
		t.Fatalf("message %q", e.Message)
	}
}

// TestGlobalCapUnderConcurrency: 50 students at once against a cap of 10, through a DynamoDB that
// makes every other transaction meet a TransactionConflict (as concurrent writes of the one counter
// item do on DynamoDB; DynamoDB Local serialises them): exactly 10 sessions, 40 clean 503s; ending
// sessions lets new ones start; the counter follows exactly.
func TestGlobalCapUnderConcurrency(t *testing.T) {
	if n := openCount(t); n != 0 {
		t.Fatalf("the open-session counter is %d before the test: an earlier test left slots taken", n)
	}
	ddb := newFaultProxy(t, env.stack.DynamoDB.Endpoint)
	var conflicts atomic.Int64
	var seen sync.Map // first item's key → a transaction on it was already conflicted
	ddb.setRule(func(w http.ResponseWriter, r *http.Request, forward func()) {
		if r.Header.Get("X-Amz-Target") != "DynamoDB_20120810.TransactWriteItems" {
			forward()
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		// The first try of each create (keyed by the student's lock) and each end (by the session)
		// meets a conflict; its retry goes through.
		if _, again := seen.LoadOrStore(firstItemKey(t, body), true); again {
			forward()
			return
		}
		conflicts.Add(1)
		transactionConflictOnLast(t, w, body)
	})
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", ddb.URL)
	api := startAPI(t, map[string]string{"MAX_OPEN_SESSIONS": "10"})
	cat := enabledCategory(t).ID
	students := make([]student, 50)
	tokens := make([]string, 50)
	for i := range students {
		students[i] = newStudent(t)
		tokens[i] = students[i].tokens.ID
	}
	var mu sync.Mutex
	var open []string
	endOnCleanup(t, func() []string { mu.Lock(); defer mu.Unlock(); return open })

	answers := createMany(t, api, 50, tokens, cat)
	var admitted, turnedAway []int
	for i, a := range answers {
		switch a.status {
		case http.StatusOK:
			admitted = append(admitted, i)
			mu.Lock()
			open = append(open, a.room.SessionID)
			mu.Unlock()
		default:
			e := refused(t, a.response, http.StatusServiceUnavailable, httpapi.CodeCapacityReached, 30, 30)
			if e.Message != "All counselors are busy right now. Please try again in 30 seconds." {
				t.Fatalf("message %q", e.Message)
			}
			turnedAway = append(turnedAway, i)
		}
	}
	if len(admitted) != 10 || len(turnedAway) != 40 {
		t.Fatalf("%d sessions and %d refusals, want 10 and 40", len(admitted), len(turnedAway))
	}
	if conflicts.Load() == 0 {
		t.Fatal("no transaction met a conflict: the retry path was not exercised")
	}
	if n := openCount(t); n != 10 {
		t.Fatalf("counter %d with 10 open sessions", n)
	}
	for _, i := range admitted {
		if runTasksFor(answers[i].room.SessionID) != 1 {
			t.Fatalf("session %s has %d tasks", answers[i].room.SessionID, runTasksFor(answers[i].room.SessionID))
		}
	}
	for _, i := range turnedAway {
		if list, _ := sessionStore().ListByUser(context.Background(), students[i].sub, 5); len(list) != 0 {
			t.Fatalf("a refused student has session records: %+v", list)
		}
	}
	// Full house: a student with an open session still gets it back.
	if r, c := createRoom(t, api, tokens[admitted[0]], cat); r.status != http.StatusOK || !c.Resumed {
		t.Fatalf("resume while full: %d %s", r.status, r.body)
	}

	// Three sessions end; three of the students turned away get in, a fourth does not.
	for _, i := range admitted[:3] {
		endSession(t, api, students[i], answers[i].room.SessionID)
	}
	if n := openCount(t); n != 7 {
		t.Fatalf("counter %d after three ends, want 7", n)
	}
	for _, i := range turnedAway[:3] {
		r, c := createRoom(t, api, tokens[i], cat)
		if r.status != http.StatusOK {
			t.Fatalf("after sessions ended: %d %s", r.status, r.body)
		}
		mu.Lock()
		open = append(open, c.SessionID)
		mu.Unlock()
	}
	r, _ := createRoom(t, api, tokens[turnedAway[3]], cat)
	refused(t, r, http.StatusServiceUnavailable, httpapi.CodeCapacityReached, 30, 30)

	// Everyone hangs up: the counter is back to zero, never below.
	for _, i := range append(admitted[3:], turnedAway[:3]...) {
		latest := latestSession(t, students[i].sub)
		endSession(t, api, students[i], latest.SessionID)
	}
	if n := openCount(t); n != 0 {
		t.Fatalf("counter %d after every session ended, want 0", n)
	}
}

// firstItemKey is the key of a TransactWriteItems request's first item.
func firstItemKey(t *testing.T, body []byte) string {
	type key struct {
		PK struct{ S string } `json:"pk"`
	}
	var in struct {
		TransactItems []struct {
			Put    *struct{ Item key }
			Update *struct{ Key key }
		}
	}
	if err := json.Unmarshal(body, &in); err != nil || len(in.TransactItems) == 0 {
		t.Errorf("decoding a transaction: %v", err)
		return ""
	}
	switch first := in.TransactItems[0]; {
	case first.Put != nil:
		return first.Put.Item.PK.S
	case first.Update != nil:
		return first.Update.Key.PK.S
	}
	return ""
}

// transactionConflictOnLast answers a TransactWriteItems as DynamoDB does when another transaction
// holds its last item (the counter, in a create or an end).
func transactionConflictOnLast(t *testing.T, w http.ResponseWriter, body []byte) {
	var in struct{ TransactItems []json.RawMessage }
	if err := json.Unmarshal(body, &in); err != nil {
		t.Errorf("decoding a transaction: %v", err)
	}
	reasons := make([]string, len(in.TransactItems))
	for i := range reasons {
		reasons[i] = `{"Code":"None"}`
	}
	reasons[len(reasons)-1] = `{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"}`
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled","CancellationReasons":[%s]}`,
		strings.Join(reasons, ","))
}

// requireNoSlotsTaken fails a test that would start on a counter something else left behind.
func requireNoSlotsTaken(t *testing.T) {
	t.Helper()
	if n := openCount(t); n != 0 {
		t.Fatalf("the open-session counter is %d before the test: an earlier test left slots taken", n)
	}
}

// TestLimitsAfterFailedSetups: setups that fail (LiveKit down, ECS refusing or failing the task)
// take no slot and cost the student none of the day's sessions.
func TestLimitsAfterFailedSetups(t *testing.T) {
	requireNoSlotsTaken(t)
	limits := map[string]string{"MAX_OPEN_SESSIONS": "5", "STUDENT_DAILY_SESSION_LIMIT": "2"}
	st := newStudent(t)
	cat := enabledCategory(t).ID
	nothingHeld := func(after string) {
		t.Helper()
		if n := openCount(t); n != 0 {
			t.Fatalf("after %s: counter %d, want 0", after, n)
		}
		if u := usageOf(t, st.sub); len(u.Sessions) != 0 {
			t.Fatalf("after %s: the day's usage holds %+v, want nothing", after, u.Sessions)
		}
		if s := latestSession(t, st.sub); s.Status != sessions.StatusFailed || s.CountedOpen || s.CountedUsage {
			t.Fatalf("after %s: session %+v", after, s)
		}
	}

	port, _ := localstack.FreePort()
	down := map[string]string{"LIVEKIT_URL": "http://127.0.0.1:" + strconv.Itoa(port)}
	for k, v := range limits {
		down[k] = v
	}
	r, _ := createRoom(t, startAPI(t, down), st.tokens.ID, cat)
	assertInternalError(t, r)
	nothingHeld("LiveKit down")

	api := startAPI(t, limits)
	for _, mode := range []string{"failure", "error"} {
		env.ecs.FailRunTask(mode)
		assertLaunchFailedCleanly(t, api, st)
		env.ecs.FailRunTask("")
		nothingHeld("ECS " + mode)
	}

	// Three failures later the student still has both sessions of the day, and no third.
	for range 2 {
		r, room := createRoom(t, api, st.tokens.ID, cat)
		if r.status != http.StatusOK || room.Resumed {
			t.Fatalf("session after the failures: %d %s", r.status, r.body)
		}
		endSession(t, api, st, room.SessionID)
	}
	r, _ = createRoom(t, api, st.tokens.ID, cat)
	refused(t, r, http.StatusTooManyRequests, httpapi.CodeStudentLimitReached, 1, int(sessions.UsageWindow/time.Second))
	if n := openCount(t); n != 0 {
		t.Fatalf("counter %d at the end, want 0", n)
	}
}

// TestLimitsReleasedByEveryEnding: the webhook's room_finished and the sweeper give back the slot
// and record the duration in the day's usage, like /end (above); the sweeper cuts a session at its
// own maximum (the daily minutes left), after the agent's goodbye grace.
func TestLimitsReleasedByEveryEnding(t *testing.T) {
	requireNoSlotsTaken(t)
	api := startAPI(t, map[string]string{"MAX_OPEN_SESSIONS": "5", "STUDENT_DAILY_MINUTES_LIMIT": "10"})
	h, _ := newWebhookHandler(t)
	installWebhooks(t, h)

	// room_finished: the agent deletes the room at its end; LiveKit tells the webhook.
	st, room, _ := startLiveSession(t, api)
	waitStatus(t, room.SessionID, sessions.StatusActive)
	if n := openCount(t); n != 1 {
		t.Fatalf("counter %d with one session open", n)
	}
	if _, err := roomClient().DeleteRoom(context.Background(), &livekit.DeleteRoomRequest{Room: room.RoomName}); err != nil {
		t.Fatal(err)
	}
	ended := waitStatus(t, room.SessionID, sessions.StatusEnded)
	if n := openCount(t); n != 0 {
		t.Fatalf("counter %d after room_finished, want 0", n)
	}
	if e := usageOf(t, st.sub).Sessions[room.SessionID]; !e.Ended || e.UsedSeconds != ended.DurationSeconds {
		t.Fatalf("usage entry %+v, want the session's duration %d s", e, ended.DurationSeconds)
	}

	// The sweeper: the session's maximum is the minutes left (10 min minus the first session); the
	// agent joined; past that maximum plus the goodbye grace the sweeper ends it.
	r, second := createRoom(t, api, st.tokens.ID, enabledCategory(t).ID)
	if r.status != http.StatusOK {
		t.Fatalf("second session: %d %s", r.status, r.body)
	}
	joinRoom(t, agentToken(t, second.SessionID))
	eventually(t, "agent joined", func() bool { return !getSession(t, second.SessionID).AgentJoinedAt.IsZero() })
	s := getSession(t, second.SessionID)
	if s.MaxDurationSeconds != 600-ended.DurationSeconds || !s.CountedOpen {
		t.Fatalf("second session %+v, want a maximum of %d s", s, 600-ended.DurationSeconds)
	}
	sw := newSweeper(t)
	deadline := s.AgentJoinedAt.Add(s.MaxDuration() + sweeper.GoodbyeGrace)
	sw.Now = func() time.Time { return deadline.Add(-time.Second) }
	rep, err := sw.Run(context.Background())
	if _, closed := closedIn(rep, second.SessionID); err != nil || closed {
		t.Fatalf("the sweeper ended the session before the agent's goodbye grace was over: %v %+v", err, rep)
	}
	sw.Now = func() time.Time { return deadline }
	rep, err = sw.Run(context.Background())
	sweepOK(t, err, rep, second.SessionID)
	if c, _ := closedIn(rep, second.SessionID); c.Reason != sweeper.ReasonMaxDuration(s.MaxDuration()) {
		t.Fatalf("swept with %q", c.Reason)
	}
	if n := openCount(t); n != 0 {
		t.Fatalf("counter %d after the sweeper, want 0", n)
	}
	if e := usageOf(t, st.sub).Sessions[second.SessionID]; !e.Ended {
		t.Fatalf("usage entry %+v after the sweeper", e)
	}
}

// startingSession is a new session record as create-room writes it.
func startingSession(id, user string) sessions.Session {
	return sessions.Session{SessionID: id, UserID: user, Status: sessions.StatusStarting, RoomName: sessions.RoomName(id), CreatedAt: time.Now().UTC()}
}

// TestEndReleasesExactlyOnce: ten closers race for one session (webhook, sweeper, /end, retries):
// one wins, the slot comes back once, and the day's usage records the winner's ending.
func TestEndReleasesExactlyOnce(t *testing.T) {
	requireNoSlotsTaken(t)
	ctx := context.Background()
	store := sessionStore()
	user := fmt.Sprintf("once-%d", time.Now().UnixNano())
	a := sessions.Admission{LockTTL: time.Hour, MaxDuration: time.Hour, Limits: sessions.Limits{MaxOpenSessions: 3, DailySessions: 5}}
	for round, status := range []sessions.Status{sessions.StatusEnded, sessions.StatusFailed} {
		id := fmt.Sprintf("%s-%d", user, round)
		created, err := store.Create(ctx, startingSession(id, user), a)
		if err != nil || !created.CountedOpen || !created.CountedUsage || openCount(t) != 1 {
			t.Fatalf("create: %+v %v (counter %d)", created, err, openCount(t))
		}
		var wins atomic.Int64
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Go(func() {
				e := sessions.Ending{Status: status, At: time.Now(), Reason: fmt.Sprint("closer ", i)}
				switch _, err := store.End(ctx, id, e); {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, sessions.ErrConflict):
					t.Errorf("closer %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || openCount(t) != 0 {
			t.Fatalf("%s: %d closers won, counter %d; want one and 0", status, wins.Load(), openCount(t))
		}
		got := getSession(t, id)
		_, inUsage := usageOf(t, user).Sessions[id]
		if got.CountedOpen || inUsage != (status == sessions.StatusEnded) {
			t.Fatalf("%s: session %+v, in the day's usage: %v", status, got, inUsage)
		}
	}
}

// TestEndWithNothingLeftToRelease: a counter already at zero (never below) or a usage item that
// expired do not keep a session from ending.
func TestEndWithNothingLeftToRelease(t *testing.T) {
	requireNoSlotsTaken(t)
	ctx := context.Background()
	store := sessionStore()
	user := fmt.Sprintf("drift-%d", time.Now().UnixNano())
	a := sessions.Admission{LockTTL: time.Hour, MaxDuration: time.Hour, Limits: sessions.Limits{MaxOpenSessions: 3, DailyMinutes: 30}}
	id := user + "-1"
	if _, err := store.Create(ctx, startingSession(id, user), a); err != nil {
		t.Fatal(err)
	}
	// Someone reset the counter, and the usage item expired.
	db := env.stack.DynamoDB.Client
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(sessionsTable), Item: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "capacity#open_sessions"}, "open_sessions": &types.AttributeValueMemberN{Value: "0"},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(sessionsTable), Key: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "usage#" + user},
	}}); err != nil {
		t.Fatal(err)
	}
	got, err := store.End(ctx, id, sessions.Ending{Status: sessions.StatusEnded, At: time.Now(), Reason: "r"})
	if err != nil || got.Status != sessions.StatusEnded || got.CountedOpen {
		t.Fatalf("End = %+v, %v", got, err)
	}
	if n := openCount(t); n != 0 {
		t.Fatalf("counter %d, want 0 (never below)", n)
	}
	if s := getSession(t, id); s.Status != sessions.StatusEnded || s.CountedOpen {
		t.Fatalf("stored %+v", s)
	}
}

// usageRacer is DynamoDB with a concurrent writer: before the first transaction it lets race change
// the student's usage item, as another create-room of the same student would between our read and
// our write.
type usageRacer struct {
	sessions.DynamoAPI
	once sync.Once
	race func()
}

func (u *usageRacer) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	u.once.Do(u.race)
	return u.DynamoAPI.TransactWriteItems(ctx, in, opts...)
}

// TestCreateDecidesAgainWhenUsageChanged: the usage item changed between Create's read and its
// transaction: DynamoDB refuses the version condition, and Create reads again and decides on what is
// there now: the student's day is used up, so no session is written.
func TestCreateDecidesAgainWhenUsageChanged(t *testing.T) {
	ctx := context.Background()
	user := fmt.Sprintf("race-%d", time.Now().UnixNano())
	limits := sessions.Admission{LockTTL: time.Hour, MaxDuration: time.Hour, Limits: sessions.Limits{DailySessions: 2}}
	mk := func(id string) sessions.Session { return startingSession(id, user) }
	plain := sessionStore()
	if _, err := plain.Create(ctx, mk(user+"-1"), limits); err != nil {
		t.Fatal(err)
	}
	if _, err := plain.End(ctx, user+"-1", sessions.Ending{Status: sessions.StatusEnded, At: time.Now(), Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	racer := &usageRacer{DynamoAPI: env.stack.DynamoDB.Client}
	racer.race = func() {
		// The concurrent create takes the day's second session and ends it.
		if _, err := plain.Create(ctx, mk(user+"-2"), limits); err != nil {
			t.Errorf("concurrent create: %v", err)
		}
		if _, err := plain.End(ctx, user+"-2", sessions.Ending{Status: sessions.StatusEnded, At: time.Now(), Reason: "r"}); err != nil {
			t.Errorf("concurrent end: %v", err)
		}
	}
	_, err := sessions.NewDynamoStore(racer, sessionsTable).Create(ctx, mk(user+"-3"), limits)
	var le *sessions.StudentLimitError
	if !errors.As(err, &le) || le.Kind != sessions.LimitDailySessions {
		t.Fatalf("Create = %v, want the daily limit decided on the changed usage", err)
	}
	if _, err := plain.Get(ctx, user+"-3"); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("the refused session was written: %v", err)
	}
	if u := usageOf(t, user); len(u.Sessions) != 2 {
		t.Fatalf("usage %+v, want the two sessions", u.Sessions)
	}
}
