package integration

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"counselvideo/shared/sessions"
)

// recordFlagAsTheAgentDoes is the agent's write (agentimage/src/safety-aws.ts SessionFlagRecorder), the
// contract of docs/architecture.md: the first flag wins, every flag is counted, the item must exist.
func recordFlagAsTheAgentDoes(ctx context.Context, sessionID, flagID, kind, severity, source, at string) (*dynamodb.UpdateItemOutput, error) {
	return env.stack.DynamoDB.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(sessionsTable),
		Key:                 map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "session#" + sessionID}},
		UpdateExpression:    aws.String("SET safety_flag = if_not_exists(safety_flag, :flag) ADD safety_flag_count :one"),
		ConditionExpression: aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":flag": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				"id": &types.AttributeValueMemberS{Value: flagID}, "kind": &types.AttributeValueMemberS{Value: kind},
				"severity": &types.AttributeValueMemberS{Value: severity}, "source": &types.AttributeValueMemberS{Value: source},
				"at": &types.AttributeValueMemberS{Value: at},
			}},
			":one": &types.AttributeValueMemberN{Value: "1"},
		},
		ReturnValues: types.ReturnValueUpdatedNew,
	})
}

// TestSafetyFlagOnDynamoDB: the agent's flag on a session item is read back by the Go store (Get and
// the sweeper's open-sessions index), survives every lifecycle write, and the second flag only counts.
func TestSafetyFlagOnDynamoDB(t *testing.T) {
	ctx := context.Background()
	st := sessionStore()
	id := fmt.Sprintf("flag-%d", time.Now().UnixNano())
	created := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Millisecond)
	if _, err := st.Create(ctx, sessions.Session{SessionID: id, UserID: "flag-user-" + id, CategoryID: "c", CategoryName: "C",
		Mode: sessions.ModeVideo, RoomName: sessions.RoomName(id), Status: sessions.StatusStarting, CreatedAt: created}, sessions.Admission{LockTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	at := "2026-12-01T10:11:12.345000000Z"
	first, err := recordFlagAsTheAgentDoes(ctx, id, "flag-1", "abuse", "urgent", "phrase_list", at)
	if err != nil {
		t.Fatal(err)
	}
	if v := first.Attributes["safety_flag_count"].(*types.AttributeValueMemberN).Value; v != "1" {
		t.Errorf("first count %s", v)
	}
	second, err := recordFlagAsTheAgentDoes(ctx, id, "flag-2", "self_harm", "imminent", "model", "2026-12-01T10:12:00.000000000Z")
	if err != nil {
		t.Fatal(err)
	}
	won := second.Attributes["safety_flag"].(*types.AttributeValueMemberM).Value["id"].(*types.AttributeValueMemberS).Value
	if won != "flag-1" {
		t.Errorf("a later flag replaced the first: %s", won)
	}

	want := sessions.SafetyFlag{ID: "flag-1", Kind: "abuse", Severity: "urgent", Source: "phrase_list",
		At: time.Date(2026, 12, 1, 10, 11, 12, 345000000, time.UTC)}
	check := func(what string, s sessions.Session) {
		t.Helper()
		if s.SafetyFlag == nil || *s.SafetyFlag != want || s.SafetyFlagCount != 2 || !s.Flagged() {
			t.Errorf("%s: flag %+v count %d", what, s.SafetyFlag, s.SafetyFlagCount)
		}
	}
	s, err := st.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	check("Get", s)
	page, _, err := st.ListOpenPage(ctx, created.Add(time.Millisecond), sessions.SweepCursor{CreatedAt: created.Add(-time.Millisecond), SessionID: "0"}, 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range page {
		if p.SessionID == id {
			found = true
			check("open sessions index", p)
		}
	}
	if !found {
		t.Fatalf("flagged session not in the open sessions index")
	}

	_ = st.RecordRoomSID(ctx, id, "RM_flag")
	if err := st.MarkStarted(ctx, id, sessions.Started{RoomSID: "RM_flag", AgentTaskID: "task-flag", AgentSource: "cold", At: created.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordAgentJoin(ctx, id, created.Add(20*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordStudentJoin(ctx, id, created.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	ended, err := st.End(ctx, id, sessions.Ending{Status: sessions.StatusEnded, At: created.Add(time.Hour), Reason: "room finished"})
	if err != nil {
		t.Fatal(err)
	}
	check("End's answer", ended)
	s, _ = st.Get(ctx, id)
	check("after the lifecycle", s)

	// The agent never creates an item: a flag for a session that has none is refused.
	_, err = recordFlagAsTheAgentDoes(ctx, "no-such-"+id, "flag-3", "abuse", "urgent", "model", at)
	var failed *types.ConditionalCheckFailedException
	if !errors.As(err, &failed) {
		t.Errorf("flag on a missing session: %v", err)
	}
}
