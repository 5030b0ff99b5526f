package sessions

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The cancellation reasons DynamoDB Local does not produce on demand (it serialises transactions,
// so it never reports a TransactionConflict), scripted. The same paths on DynamoDB Local are in
// infra/integration/limits_test.go.

func usageItemWith(t *testing.T, version int64, entries map[string]UsageEntry) map[string]types.AttributeValue {
	t.Helper()
	item, err := marshal(usageItem{Version: version, Sessions: entries})
	if err != nil {
		t.Fatal(err)
	}
	return item
}

// TestCreateCapacityFull: the counter's condition failed: a *CapacityError, no retry.
func TestCreateCapacityFull(t *testing.T) {
	db := &scriptedDynamo{transacts: []error{canceled(reason("None"), reason("None"), reason("ConditionalCheckFailed"))}}
	_, err := NewDynamoStore(db, "sessions").Create(context.Background(), newSession("s1", "u1"),
		Admission{LockTTL: time.Hour, MaxDuration: time.Hour, Limits: Limits{MaxOpenSessions: 5}})
	var capErr *CapacityError
	if !errors.As(err, &capErr) || capErr.Max != 5 || capErr.RetryAfter != CapacityRetryAfter {
		t.Fatalf("Create = %v, want a *CapacityError for 5", err)
	}
	if db.calls != 1 {
		t.Errorf("%d transactions, want 1", db.calls)
	}
	items := db.inputs[0].TransactItems
	if len(items) != 3 || items[2].Update == nil || aws.ToString(items[2].Update.ConditionExpression) != "attribute_not_exists(open_sessions) OR open_sessions < :max" {
		t.Fatalf("transaction %+v, want lock, session and the counter's conditional update", items)
	}
}

// TestCreateLockWinsOverCapacity: the student's lock and the counter both refused: the student has an
// open session and resumes it; a full house never refuses a resume.
func TestCreateLockWinsOverCapacity(t *testing.T) {
	db := &scriptedDynamo{
		transacts: []error{canceled(heldBy("s-open"), reason("None"), reason("ConditionalCheckFailed"))},
		items:     map[string]map[string]types.AttributeValue{"session#s-open": openSessionItem(t, "s-open")},
	}
	_, err := NewDynamoStore(db, "sessions").Create(context.Background(), newSession("s2", "u1"),
		Admission{LockTTL: time.Hour, MaxDuration: time.Hour, Limits: Limits{MaxOpenSessions: 5}})
	var active *ActiveSessionError
	if !errors.As(err, &active) || active.SessionID != "s-open" {
		t.Fatalf("Create = %v, want the open session s-open", err)
	}
}

// TestCreateCounterConflictRetried: the counter was in another transaction (another student's create
// or end): retried after a backoff, then written.
func TestCreateCounterConflictRetried(t *testing.T) {
	db := &scriptedDynamo{transacts: []error{
		canceled(reason("None"), reason("None"), reason("TransactionConflict")),
		canceled(reason("None"), reason("None"), reason("TransactionConflict")),
		nil,
	}}
	created, err := NewDynamoStore(db, "sessions").Create(context.Background(), newSession("s1", "u1"),
		Admission{LockTTL: time.Hour, MaxDuration: time.Hour, Limits: Limits{MaxOpenSessions: 5}})
	if err != nil || !created.CountedOpen || db.calls != 3 {
		t.Fatalf("Create = %+v, %v after %d calls; want the session, counted, on the third", created, err, db.calls)
	}
}

// TestCreateUsageChangedDecidesAgain: the usage item changed between the read and the write (a
// concurrent create of the same student took the last session of the day): the retry reads it again
// and refuses, instead of overshooting the limit.
func TestCreateUsageChangedDecidesAgain(t *testing.T) {
	oneUsed := map[string]UsageEntry{"s0": {CreatedAt: t0.Add(-time.Hour), ReservedSeconds: 3600, Ended: true, UsedSeconds: 60}}
	db := &scriptedDynamo{
		transacts: []error{canceled(reason("None"), reason("None"), reason("ConditionalCheckFailed"))},
		items:     map[string]map[string]types.AttributeValue{"usage#u1": usageItemWith(t, 1, oneUsed)},
	}
	db.afterTransact = func(int) {
		both := map[string]UsageEntry{"s0": oneUsed["s0"], "s-other": {CreatedAt: t0, ReservedSeconds: 3600, Ended: true, UsedSeconds: 0}}
		db.items["usage#u1"] = usageItemWith(t, 2, both)
	}
	store := NewDynamoStore(db, "sessions")
	store.now = func() time.Time { return t0 }
	_, err := store.Create(context.Background(), newSession("s1", "u1"),
		Admission{LockTTL: time.Hour, MaxDuration: time.Hour, Limits: Limits{DailySessions: 2}})
	var le *StudentLimitError
	if !errors.As(err, &le) || le.Kind != LimitDailySessions {
		t.Fatalf("Create = %v, want the daily limit after reading again", err)
	}
	put := db.inputs[0].TransactItems[2].Put
	if put == nil || aws.ToString(put.ConditionExpression) != "version = :v" {
		t.Fatalf("usage write %+v, want a put conditioned on the version read", db.inputs[0].TransactItems[2])
	}
}

// TestEndConflictOnTheCounterRetried: End met another transaction on the counter: it reads again
// and ends the session once, giving back the slot in the same transaction.
func TestEndConflictOnTheCounterRetried(t *testing.T) {
	s := newSession("s1", "u1")
	s.CountedOpen = true
	item, err := marshalSession(s)
	if err != nil {
		t.Fatal(err)
	}
	db := &scriptedDynamo{
		transacts: []error{canceled(reason("None"), reason("TransactionConflict")), nil},
		items:     map[string]map[string]types.AttributeValue{"session#s1": item},
	}
	got, err := NewDynamoStore(db, "sessions").End(context.Background(), "s1", Ending{Status: StatusEnded, At: t0.Add(time.Minute), Reason: "r"})
	if err != nil || got.Status != StatusEnded || got.CountedOpen {
		t.Fatalf("End = %+v, %v", got, err)
	}
	if db.calls != 2 {
		t.Fatalf("%d transactions, want 2", db.calls)
	}
	last := db.inputs[1].TransactItems
	if len(last) != 2 || aws.ToString(last[1].Update.UpdateExpression) != "ADD open_sessions :minus" ||
		aws.ToString(last[1].Update.ConditionExpression) != "open_sessions > :zero" {
		t.Fatalf("end transaction %+v, want the session's update and the counter's decrement, never below zero", last)
	}
}
