package sessions

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// scriptedDynamo answers TransactWriteItems from a script and GetItem from a map; the other calls
// are not expected in these tests.
type scriptedDynamo struct {
	DynamoAPI // nil: an unexpected call panics

	mu        sync.Mutex
	transacts []error // one per TransactWriteItems call, in order; nil = success
	calls     int
	inputs    []*dynamodb.TransactWriteItemsInput
	items     map[string]map[string]types.AttributeValue // by pk
	// afterTransact, if set, runs after each TransactWriteItems call (a concurrent writer's change).
	afterTransact func(call int)
}

func (f *scriptedDynamo) TransactWriteItems(_ context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.inputs = append(f.inputs, in)
	if f.afterTransact != nil {
		defer f.afterTransact(f.calls)
	}
	if len(f.transacts) == 0 {
		return nil, errors.New("unexpected TransactWriteItems")
	}
	err := f.transacts[0]
	f.transacts = f.transacts[1:]
	if err != nil {
		return nil, err
	}
	return &dynamodb.TransactWriteItemsOutput{}, nil
}

func (f *scriptedDynamo) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pk := in.Key["pk"].(*types.AttributeValueMemberS).Value
	return &dynamodb.GetItemOutput{Item: f.items[pk]}, nil
}

// DeleteItem accepts the lock release End makes.
func (f *scriptedDynamo) DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return &dynamodb.DeleteItemOutput{}, nil
}

// canceled is the exception DynamoDB returns for a cancelled transaction; reasons follow the order of
// the transaction's items (Create writes the lock first, then the session).
func canceled(reasons ...types.CancellationReason) error {
	return &types.TransactionCanceledException{Message: aws.String("Transaction cancelled"), CancellationReasons: reasons}
}

func reason(code string) types.CancellationReason {
	return types.CancellationReason{Code: aws.String(code)}
}

func heldBy(sessionID string) types.CancellationReason {
	return types.CancellationReason{Code: aws.String("ConditionalCheckFailed"),
		Item: map[string]types.AttributeValue{"session_id": str(sessionID)}}
}

func openSessionItem(t *testing.T, id string) map[string]types.AttributeValue {
	t.Helper()
	item, err := marshalSession(newSession(id, "u1"))
	if err != nil {
		t.Fatal(err)
	}
	return item
}

// TestCreateTransactionConflictResumes: a concurrent create holds the student's lock while ours runs
// (TransactionConflict); the retry finds that session and reports it as the open one, not an error.
func TestCreateTransactionConflictResumes(t *testing.T) {
	db := &scriptedDynamo{
		transacts: []error{
			canceled(reason("TransactionConflict"), reason("None")),
			canceled(heldBy("s-first"), reason("None")),
		},
		items: map[string]map[string]types.AttributeValue{"session#s-first": openSessionItem(t, "s-first")},
	}
	_, err := NewDynamoStore(db, "sessions").Create(context.Background(), newSession("s-second", "u1"), Admission{LockTTL: time.Hour})
	var active *ActiveSessionError
	if !errors.As(err, &active) || active.SessionID != "s-first" {
		t.Fatalf("Create = %v, want the concurrent session s-first as the open one", err)
	}
	if db.calls != 2 {
		t.Errorf("%d TransactWriteItems calls, want 2 (conflict, then retry)", db.calls)
	}
}

// TestCreateTransactionConflictThenFree: the conflicting transaction failed; the retry takes the lock.
func TestCreateTransactionConflictThenFree(t *testing.T) {
	db := &scriptedDynamo{transacts: []error{canceled(reason("TransactionConflict"), reason("None")), nil}}
	if _, err := NewDynamoStore(db, "sessions").Create(context.Background(), newSession("s1", "u1"), Admission{LockTTL: time.Hour}); err != nil {
		t.Fatalf("Create after a conflict that went away: %v", err)
	}
}

// TestCreateTransactionConflictBounded: a conflict that never clears ends in an error, not a loop.
func TestCreateTransactionConflictBounded(t *testing.T) {
	var script []error
	for range 20 {
		script = append(script, canceled(reason("None"), reason("TransactionConflict")))
	}
	db := &scriptedDynamo{transacts: script}
	_, err := NewDynamoStore(db, "sessions").Create(context.Background(), newSession("s1", "u1"), Admission{LockTTL: time.Hour})
	var active *ActiveSessionError
	if err == nil || errors.As(err, &active) {
		t.Fatalf("Create = %v, want an error", err)
	}
	if db.calls != maxTransactAttempts {
		t.Errorf("%d attempts, want %d", db.calls, maxTransactAttempts)
	}
}
