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

func marshalSession(s Session) (map[string]types.AttributeValue, error) { return marshal(s) }

// marshal encodes with the fixed-width time layout.
func marshal(v any) (map[string]types.AttributeValue, error) {
	return attributevalue.MarshalMapWithOptions(v, func(o *attributevalue.EncoderOptions) {
		o.EncodeTime = func(t time.Time) (types.AttributeValue, error) { return ts(t), nil }
		o.OmitEmptyTime = true
	})
}

// maxTransactAttempts bounds the retries of Create's and End's transactions. The open-session
// counter is one item every create and end writes, so concurrent ones meet in TransactionConflicts
// that a jittered retry resolves.
const maxTransactAttempts = 8

func (d *DynamoStore) Create(ctx context.Context, s Session, a Admission) (Session, error) {
	staleChecked := false
	for attempt := 1; ; attempt++ {
		created, err := d.create(ctx, s, a)
		var active *ActiveSessionError
		switch {
		case (errors.Is(err, errTransactionConflict) || errors.Is(err, errUsageChanged)) && attempt < maxTransactAttempts:
			// Another transaction is writing the student's lock or usage, or the counter, at this
			// moment: a concurrent create-room (a double click), another student's create or end, or
			// this student's session ending. Once it settles, the retry reads again and decides again:
			// it finds the concurrent session (and resumes it), or takes the lock itself.
			if err := sleepCtx(ctx, conflictBackoff(attempt)); err != nil {
				return Session{}, fmt.Errorf("create session: %w", err)
			}
		case errors.As(err, &active) && !staleChecked:
			// The lock may be stale: its session ended but the lock release failed. Clear it and retry once.
			staleChecked = true
			held, gerr := d.Get(ctx, active.SessionID)
			if gerr != nil && !errors.Is(gerr, ErrNotFound) {
				return Session{}, gerr
			}
			if gerr == nil && held.Status.Open() {
				return Session{}, err
			}
			d.releaseLock(ctx, s.UserID, active.SessionID)
		default:
			return created, err
		}
	}
}

// errTransactionConflict marks a transaction cancelled because another transaction held one of its items.
var errTransactionConflict = errors.New("transaction conflict")

// conflictBackoff is the jittered wait before retrying a conflicted transaction: 10 ms, 20 ms, 40 ms,
// ... up to 160 ms.
func conflictBackoff(attempt int) time.Duration {
	base := 10 * time.Millisecond << min(attempt-1, 4)
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

// create is one attempt: read the student's usage (when a daily limit is set) and decide, then write
// lock, session, usage (conditioned on the version read) and the open-session counter (conditioned on
// the cap) in one transaction.
func (d *DynamoStore) create(ctx context.Context, s Session, a Admission) (Session, error) {
	now := d.now()
	s.MaxDurationSeconds = int64(a.MaxDuration / time.Second)
	var usageWrite *types.TransactWriteItem
	if a.Limits.Student() {
		usage, err := d.StudentUsage(ctx, s.UserID)
		if err != nil {
			return Session{}, err
		}
		granted, refusal := a.Limits.Admit(usage, s.CreatedAt, a.MaxDuration)
		if refusal != nil {
			// Resuming is never refused: a student over the limit who holds an open session gets it back.
			held, err := d.lockHolder(ctx, s.UserID, now)
			switch {
			case err != nil:
				return Session{}, err
			case held != "":
				return Session{}, &ActiveSessionError{SessionID: held}
			}
			return Session{}, refusal
		}
		s.MaxDurationSeconds, s.CountedUsage = int64(granted/time.Second), true
		if usageWrite, err = d.usagePut(s.UserID, usage, usage.withSession(s, granted, s.CreatedAt), now.Add(UsageWindow+a.MaxDuration+time.Hour)); err != nil {
			return Session{}, err
		}
	}
	s.CountedOpen = a.Limits.MaxOpenSessions > 0

	item, err := marshalSession(s)
	if err != nil {
		return Session{}, fmt.Errorf("marshal session: %w", err)
	}
	for k, v := range sessionKey(s.SessionID) {
		item[k] = v
	}
	item[dynamotables.SweepBucketAttr] = str(dynamotables.SweepBucketOpen)
	lock := lockKey(s.UserID)
	lock["session_id"] = str(s.SessionID)
	lock[dynamotables.SessionsTTLAttr] = num(now.Add(a.LockTTL).Unix())

	writes := []types.TransactWriteItem{
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
	}
	usageAt, counterAt := -1, -1
	if usageWrite != nil {
		usageAt, writes = len(writes), append(writes, *usageWrite)
	}
	if s.CountedOpen {
		counterAt, writes = len(writes), append(writes, d.takeSlot(a.Limits.MaxOpenSessions))
	}
	_, err = d.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: writes})
	var canceled *types.TransactionCanceledException
	if errors.As(err, &canceled) {
		failed := cancelled(canceled)
		// The lock first: a student with an open session resumes it, whatever else refused.
		if failed(0) == conditionFailed {
			held := ""
			if v, ok := canceled.CancellationReasons[0].Item["session_id"].(*types.AttributeValueMemberS); ok {
				held = v.Value
			}
			return Session{}, &ActiveSessionError{SessionID: held}
		}
		switch {
		case failed(anyItem) == transactionConflict:
			return Session{}, fmt.Errorf("create session: %w: %w", errTransactionConflict, err)
		case failed(usageAt) == conditionFailed:
			return Session{}, fmt.Errorf("create session: %w", errUsageChanged)
		case failed(counterAt) == conditionFailed:
			return Session{}, &CapacityError{Max: a.Limits.MaxOpenSessions, RetryAfter: CapacityRetryAfter}
		}
	}
	if err != nil {
		return Session{}, fmt.Errorf("create session: %w", err)
	}
	return s, nil
}

// Cancellation reason codes of a cancelled transaction.
const (
	conditionFailed     = "ConditionalCheckFailed"
	transactionConflict = "TransactionConflict"
	// anyItem asks cancelled whether any item was in a TransactionConflict.
	anyItem = -2
)

// cancelled returns the reason code of the i-th item of a cancelled transaction ("" when unknown);
// for anyItem, transactionConflict if any item met one.
func cancelled(c *types.TransactionCanceledException) func(i int) string {
	return func(i int) string {
		if i == anyItem {
			for _, r := range c.CancellationReasons {
				if aws.ToString(r.Code) == transactionConflict {
					return transactionConflict
				}
			}
			return ""
		}
		if i < 0 || i >= len(c.CancellationReasons) {
			return ""
		}
		return aws.ToString(c.CancellationReasons[i].Code)
	}
}

// lockHolder returns the session holding the student's unexpired lock ("" if none).
func (d *DynamoStore) lockHolder(ctx context.Context, userID string, now time.Time) (string, error) {
	out, err := d.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &d.table, Key: lockKey(userID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("get session lock: %w", err)
	}
	var lock struct {
		SessionID string `dynamodbav:"session_id"`
		ExpiresAt int64  `dynamodbav:"expires_at"`
	}
	if out.Item == nil {
		return "", nil
	}
	if err := attributevalue.UnmarshalMap(out.Item, &lock); err != nil {
		return "", fmt.Errorf("decode session lock: %w", err)
	}
	if lock.ExpiresAt < now.Unix() {
		return "", nil
	}
	return lock.SessionID, nil
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
	return d.runUpdate(ctx, d.sessionUpdate(id, set, cond, vals))
}

// sessionUpdate is a conditional update of a session item, alone or within a transaction.
func (d *DynamoStore) sessionUpdate(id, set, cond string, vals map[string]types.AttributeValue) types.Update {
	var names map[string]string
	if strings.Contains(set+cond, "#s") { // "status" is a reserved word; DynamoDB rejects unused names
		names = map[string]string{"#s": "status"}
	}
	return types.Update{
		TableName:                 &d.table,
		Key:                       sessionKey(id),
		UpdateExpression:          aws.String(set),
		ConditionExpression:       aws.String("attribute_exists(pk) AND " + cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: vals,
	}
}

func (d *DynamoStore) runUpdate(ctx context.Context, u types.Update) (map[string]types.AttributeValue, error) {
	out, err := d.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: u.TableName, Key: u.Key, UpdateExpression: u.UpdateExpression,
		ConditionExpression: u.ConditionExpression, ExpressionAttributeNames: u.ExpressionAttributeNames,
		ExpressionAttributeValues: u.ExpressionAttributeValues, ReturnValues: types.ReturnValueAllNew,
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

func (d *DynamoStore) MarkStarted(ctx context.Context, id string, st Started) error {
	_, err := d.update(ctx, id,
		"SET started_at = :at, agent_task_id = :task, agent_source = :src, room_sid = if_not_exists(room_sid, :sid)",
		"#s IN (:starting, :active)",
		map[string]types.AttributeValue{":at": ts(st.At), ":task": str(st.AgentTaskID), ":src": str(st.AgentSource), ":sid": str(st.RoomSID),
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
	var gone releases // what turned out to have nothing left to release
	for attempt := 1; ; attempt++ {
		raw, cur, err := d.getRaw(ctx, id)
		if err != nil {
			return Session{}, err
		}
		if !CanTransition(cur.Status, e.Status) {
			return cur, ErrConflict
		}
		next := ended(cur, e)
		// The condition pins the status and join time read above, so the duration is computed from the
		// state it applies to. A concurrent join changes them: read again and retry.
		vals := map[string]types.AttributeValue{
			":to": str(string(e.Status)), ":from": str(string(cur.Status)), ":at": ts(e.At),
			":reason": str(e.Reason), ":dur": num(next.DurationSeconds),
		}
		update := d.sessionUpdate(id,
			"SET #s = :to, ended_at = :at, end_reason = :reason, duration_seconds = :dur REMOVE sweep_bucket"+removeReleased(cur, next),
			"#s = :from AND "+pin("student_joined_at", raw, vals, ":sj"), vals)
		writes, err := d.releaseWrites(cur, next, gone)
		if err != nil {
			return cur, err
		}
		if len(writes.items) == 0 {
			attrs, err := d.runUpdate(ctx, update)
			if errors.Is(err, ErrConflict) && attempt < maxTransactAttempts {
				continue
			}
			if err != nil {
				return cur, err
			}
			d.releaseLock(ctx, cur.UserID, id)
			return decode(attrs)
		}
		// The session's terminal write and its releases commit together or not at all: a retried End
		// finds the session terminal and releases nothing twice.
		retry, err := d.commitWith(ctx, update, writes, &gone, attempt)
		if retry && attempt < maxTransactAttempts {
			continue
		}
		if err != nil {
			return cur, err
		}
		d.releaseLock(ctx, cur.UserID, id)
		return next, nil
	}
}

// ended is s as End(e) leaves it.
func ended(s Session, e Ending) Session {
	s.Status, s.EndedAt, s.EndReason = e.Status, e.At.UTC(), e.Reason
	s.DurationSeconds = durationSeconds(s, e.At)
	s.CountedOpen = false
	s.CountedUsage = s.CountedUsage && e.Status != StatusFailed
	return s
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
