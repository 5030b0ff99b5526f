package sessions

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"counselvideo/shared/dynamotables"
)

// DynamoAPI is the part of the DynamoDB client the store uses.
type DynamoAPI interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// DynamoStore is the production Store on the single sessions table (docs/architecture.md).
type DynamoStore struct {
	db    DynamoAPI
	table string
	now   func() time.Time
}

func NewDynamoStore(db DynamoAPI, table string) *DynamoStore {
	return &DynamoStore{db: db, table: table, now: time.Now}
}

func sessionKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{dynamotables.SessionsHashKey: str("session#" + id)}
}
func lockKey(userID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{dynamotables.SessionsHashKey: str("active#" + userID)}
}
func eventKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{dynamotables.SessionsHashKey: str("event#" + id)}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// timeLayout is fixed-width so stored timestamps sort as strings (created_at is an index sort key);
// RFC3339Nano trims trailing zeros and would not.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

func ts(t time.Time) types.AttributeValue {
	return str(t.UTC().Format(timeLayout))
}

func marshalSession(s Session) (map[string]types.AttributeValue, error) {
	return attributevalue.MarshalMapWithOptions(s, func(o *attributevalue.EncoderOptions) {
		o.EncodeTime = func(t time.Time) (types.AttributeValue, error) { return ts(t), nil }
		o.OmitEmptyTime = true
	})
}

func (d *DynamoStore) Create(ctx context.Context, s Session, lockTTL time.Duration) error {
	staleChecked := false
	for attempt := 1; ; attempt++ {
		err := d.create(ctx, s, lockTTL)
		var active *ActiveSessionError
		switch {
		case errors.Is(err, errTransactionConflict) && attempt < maxOptimisticAttempts:
			// Another transaction is writing the student's lock at this moment: almost always a
			// concurrent create-room (a double click). Once it settles, the retry either finds its
			// session (and resumes it) or, if it failed, takes the lock itself.
			if err := sleepCtx(ctx, conflictBackoff(attempt)); err != nil {
				return fmt.Errorf("create session: %w", err)
			}
		case errors.As(err, &active) && !staleChecked:
			// The lock may be stale: its session ended but the lock release failed. Clear it and retry once.
			staleChecked = true
			held, gerr := d.Get(ctx, active.SessionID)
			if gerr != nil && !errors.Is(gerr, ErrNotFound) {
				return gerr
			}
			if gerr == nil && held.Status.Open() {
				return err
			}
			d.releaseLock(ctx, s.UserID, active.SessionID)
		default:
			return err
		}
	}
}

// errTransactionConflict marks a create cancelled because another transaction held one of its items.
var errTransactionConflict = errors.New("transaction conflict")

// conflictBackoff is the jittered wait before retrying a conflicted create: 10 ms, 20 ms, 40 ms, ...
func conflictBackoff(attempt int) time.Duration {
	base := 10 * time.Millisecond << (attempt - 1)
	return base/2 + rand.N(base/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (d *DynamoStore) create(ctx context.Context, s Session, lockTTL time.Duration) error {
	item, err := marshalSession(s)
	if err != nil {
		return fmt.Errorf("marshal session: %w", err)
	}
	for k, v := range sessionKey(s.SessionID) {
		item[k] = v
	}
	item[dynamotables.SweepBucketAttr] = str(dynamotables.SweepBucketOpen)
	now := d.now()
	lock := lockKey(s.UserID)
	lock["session_id"] = str(s.SessionID)
	lock[dynamotables.SessionsTTLAttr] = num(now.Add(lockTTL).Unix())

	_, err = d.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{
				TableName:                           &d.table,
				Item:                                lock,
				ConditionExpression:                 aws.String("attribute_not_exists(pk) OR expires_at < :now"),
				ExpressionAttributeValues:           map[string]types.AttributeValue{":now": num(now.Unix())},
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}},
			{Put: &types.Put{
				TableName:           &d.table,
				Item:                item,
				ConditionExpression: aws.String("attribute_not_exists(pk)"),
			}},
		},
	})
	var canceled *types.TransactionCanceledException
	if errors.As(err, &canceled) && len(canceled.CancellationReasons) > 0 {
		reason := canceled.CancellationReasons[0] // the lock's
		if aws.ToString(reason.Code) == "ConditionalCheckFailed" {
			held := ""
			if v, ok := reason.Item["session_id"].(*types.AttributeValueMemberS); ok {
				held = v.Value
			}
			return &ActiveSessionError{SessionID: held}
		}
		for _, r := range canceled.CancellationReasons {
			if aws.ToString(r.Code) == "TransactionConflict" {
				return fmt.Errorf("create session: %w: %w", errTransactionConflict, err)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

func (d *DynamoStore) releaseLock(ctx context.Context, userID, sessionID string) {
	// Only the session that holds the lock may release it; a lost condition means nothing to do.
	_, _ = d.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &d.table,
		Key:                       lockKey(userID),
		ConditionExpression:       aws.String("session_id = :id"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":id": str(sessionID)},
	})
}

func (d *DynamoStore) Get(ctx context.Context, id string) (Session, error) {
	out, err := d.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &d.table, Key: sessionKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Session{}, fmt.Errorf("get session: %w", err)
	}
	if out.Item == nil {
		return Session{}, ErrNotFound
	}
	return decode(out.Item)
}

func decode(item map[string]types.AttributeValue) (Session, error) {
	var s Session
	if err := attributevalue.UnmarshalMap(item, &s); err != nil {
		return Session{}, fmt.Errorf("decode session: %w", err)
	}
	return s, nil
}

func (d *DynamoStore) query(ctx context.Context, in *dynamodb.QueryInput) ([]Session, error) {
	out, err := d.db.Query(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("query sessions: %w", err)
	}
	list := make([]Session, 0, len(out.Items))
	for _, it := range out.Items {
		s, err := decode(it)
		if err != nil {
			return nil, err
		}
		list = append(list, s)
	}
	return list, nil
}

func (d *DynamoStore) ListByUser(ctx context.Context, userID string, limit int32) ([]Session, error) {
	return d.query(ctx, &dynamodb.QueryInput{
		TableName:                 &d.table,
		IndexName:                 aws.String(dynamotables.UserSessionsIndex),
		KeyConditionExpression:    aws.String("user_id = :u"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":u": str(userID)},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(limit),
	})
}

func (d *DynamoStore) ListOpen(ctx context.Context, createdBefore time.Time, limit int32) ([]Session, error) {
	list, _, err := d.ListOpenPage(ctx, createdBefore, SweepCursor{}, limit)
	return list, err
}

// update runs a conditional update on a session item and maps a lost condition to ErrConflict.
func (d *DynamoStore) update(ctx context.Context, id, set, cond string, vals map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	var names map[string]string
	if strings.Contains(set+cond, "#s") { // "status" is a reserved word; DynamoDB rejects unused names
		names = map[string]string{"#s": "status"}
	}
	out, err := d.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &d.table,
		Key:                       sessionKey(id),
		UpdateExpression:          aws.String(set),
		ConditionExpression:       aws.String("attribute_exists(pk) AND " + cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: vals,
		ReturnValues:              types.ReturnValueAllNew,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil, ErrConflict
	}
	if err != nil {
		return nil, fmt.Errorf("update session: %w", err)
	}
	return out.Attributes, nil
}

func (d *DynamoStore) MarkStarted(ctx context.Context, id, roomSID, taskID string, at time.Time) error {
	_, err := d.update(ctx, id,
		"SET started_at = :at, agent_task_id = :task, room_sid = if_not_exists(room_sid, :sid)",
		"#s IN (:starting, :active)",
		map[string]types.AttributeValue{":at": ts(at), ":task": str(taskID), ":sid": str(roomSID),
			":starting": str(string(StatusStarting)), ":active": str(string(StatusActive))})
	return err
}

func (d *DynamoStore) RecordRoomSID(ctx context.Context, id, roomSID string) error {
	_, err := d.update(ctx, id, "SET room_sid = :sid", "attribute_not_exists(room_sid)",
		map[string]types.AttributeValue{":sid": str(roomSID)})
	return err
}

func (d *DynamoStore) End(ctx context.Context, id string, e Ending) (Session, error) {
	if !e.Status.Terminal() {
		return Session{}, fmt.Errorf("end: %q is not a terminal status", e.Status)
	}
	for attempt := 0; ; attempt++ {
		raw, cur, err := d.getRaw(ctx, id)
		if err != nil {
			return Session{}, err
		}
		if !CanTransition(cur.Status, e.Status) {
			return cur, ErrConflict
		}
		// The condition pins the status and join time read above, so the duration is computed from the
		// state it applies to. A concurrent join changes them: read again and retry.
		vals := map[string]types.AttributeValue{
			":to": str(string(e.Status)), ":from": str(string(cur.Status)), ":at": ts(e.At),
			":reason": str(e.Reason), ":dur": num(durationSeconds(cur, e.At)),
		}
		attrs, err := d.update(ctx, id,
			"SET #s = :to, ended_at = :at, end_reason = :reason, duration_seconds = :dur REMOVE sweep_bucket",
			"#s = :from AND "+pin("student_joined_at", raw, vals, ":sj"), vals)
		if errors.Is(err, ErrConflict) && attempt < maxOptimisticAttempts {
			continue
		}
		if err != nil {
			return cur, err
		}
		d.releaseLock(ctx, cur.UserID, id)
		return decode(attrs)
	}
}

// durationSeconds is how long the student was in the session (0 if they never joined).
func durationSeconds(s Session, end time.Time) int64 {
	if s.StudentJoinedAt.IsZero() || end.Before(s.StudentJoinedAt) {
		return 0
	}
	return int64(end.Sub(s.StudentJoinedAt).Round(time.Second) / time.Second)
}

func (d *DynamoStore) ClaimEvent(ctx context.Context, eventID string, ttl time.Duration) error {
	item := eventKey(eventID)
	item[dynamotables.SessionsTTLAttr] = num(d.now().Add(ttl).Unix())
	_, err := d.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &d.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ErrDuplicateEvent
	}
	if err != nil {
		return fmt.Errorf("claim event: %w", err)
	}
	return nil
}

func (d *DynamoStore) ReleaseEvent(ctx context.Context, eventID string) error {
	_, err := d.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &d.table, Key: eventKey(eventID)})
	if err != nil {
		return fmt.Errorf("release event: %w", err)
	}
	return nil
}
