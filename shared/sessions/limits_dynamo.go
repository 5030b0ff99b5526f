package sessions

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"counselvideo/shared/dynamotables"
)

// The limits' items on the sessions table (docs/architecture.md):
//   - usage#<user_id>: version (N), sessions (M: session id → {created_at, reserved_seconds, ended,
//     used_seconds}), expires_at: the student's counted sessions of the rolling day;
//   - capacity#open_sessions: open_sessions (N): the sessions holding a slot of MaxOpenSessions.

func usageKey(userID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{dynamotables.SessionsHashKey: str("usage#" + userID)}
}

func capacityKey() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{dynamotables.SessionsHashKey: str("capacity#open_sessions")}
}

// errUsageChanged: the student's usage item changed between Create's read and its write (another
// create, an end recording a duration): Create reads again and decides again.
var errUsageChanged = errors.New("student usage changed concurrently")

type usageItem struct {
	Version  int64                 `dynamodbav:"version"`
	Sessions map[string]UsageEntry `dynamodbav:"sessions"`
}

// StudentUsage reads a student's usage item (the zero Usage if there is none).
func (d *DynamoStore) StudentUsage(ctx context.Context, userID string) (Usage, error) {
	out, err := d.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &d.table, Key: usageKey(userID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Usage{}, fmt.Errorf("get student usage: %w", err)
	}
	var u usageItem
	if err := attributevalue.UnmarshalMap(out.Item, &u); err != nil {
		return Usage{}, fmt.Errorf("decode student usage: %w", err)
	}
	return Usage(u), nil
}

// usagePut writes next in place of read, on the condition that nobody wrote it since read.
func (d *DynamoStore) usagePut(userID string, read, next Usage, expires time.Time) (*types.TransactWriteItem, error) {
	item, err := marshal(usageItem(next))
	if err != nil {
		return nil, fmt.Errorf("marshal student usage: %w", err)
	}
	for k, v := range usageKey(userID) {
		item[k] = v
	}
	item[dynamotables.SessionsTTLAttr] = num(expires.Unix())
	put := &types.Put{TableName: &d.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")}
	if read.Version > 0 {
		put.ConditionExpression = aws.String("version = :v")
		put.ExpressionAttributeValues = map[string]types.AttributeValue{":v": num(read.Version)}
	}
	return &types.TransactWriteItem{Put: put}, nil
}

// usageRecord writes a counted session's entry as the session now is (usageEntryOf: its duration, or
// removed for a failed one), on the condition that the entry is still there; the version moves so a
// create deciding on an older read retries.
func (d *DynamoStore) usageRecord(s Session) (types.TransactWriteItem, error) {
	u := &types.Update{
		TableName:                &d.table,
		Key:                      usageKey(s.UserID),
		ConditionExpression:      aws.String("attribute_exists(sessions.#id)"),
		ExpressionAttributeNames: map[string]string{"#id": s.SessionID},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":one": num(1),
		},
	}
	e, keep := usageEntryOf(s)
	if !keep {
		u.UpdateExpression = aws.String("REMOVE sessions.#id ADD version :one")
		return types.TransactWriteItem{Update: u}, nil
	}
	av, err := marshal(e)
	if err != nil {
		return types.TransactWriteItem{}, fmt.Errorf("marshal usage entry: %w", err)
	}
	u.UpdateExpression = aws.String("SET sessions.#id = :e ADD version :one")
	u.ExpressionAttributeValues[":e"] = &types.AttributeValueMemberM{Value: av}
	return types.TransactWriteItem{Update: u}, nil
}

// takeSlot counts one more open session, on the condition that fewer than max are open.
func (d *DynamoStore) takeSlot(max int) types.TransactWriteItem {
	return types.TransactWriteItem{Update: &types.Update{
		TableName:                 &d.table,
		Key:                       capacityKey(),
		UpdateExpression:          aws.String("ADD open_sessions :one"),
		ConditionExpression:       aws.String("attribute_not_exists(open_sessions) OR open_sessions < :max"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1), ":max": num(int64(max))},
	}}
}

// giveSlot counts one open session less, never below zero.
func (d *DynamoStore) giveSlot() types.TransactWriteItem {
	return types.TransactWriteItem{Update: &types.Update{
		TableName:                 &d.table,
		Key:                       capacityKey(),
		UpdateExpression:          aws.String("ADD open_sessions :minus"),
		ConditionExpression:       aws.String("open_sessions > :zero"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":minus": num(-1), ":zero": num(0)},
	}}
}

// releases are the writes that give back what a session held, with their places in the transaction
// (after the session's own update, at 0); the flags of the type mark releases found to have nothing
// left (the counter at zero, the usage entry gone), which End then leaves out.
type releases struct {
	items              []types.TransactWriteItem
	counterAt, usageAt int
	counter, usage     bool
}

// releaseWrites are the releases of cur as it becomes next, minus those in gone.
func (d *DynamoStore) releaseWrites(cur, next Session, gone releases) (releases, error) {
	r := releases{counterAt: -1, usageAt: -1}
	if cur.CountedOpen && !gone.counter {
		r.counterAt = 1 + len(r.items)
		r.items = append(r.items, d.giveSlot())
	}
	if cur.CountedUsage && !gone.usage {
		w, err := d.usageRecord(next)
		if err != nil {
			return r, err
		}
		r.usageAt = 1 + len(r.items)
		r.items = append(r.items, w)
	}
	return r, nil
}

// commitWith writes a session's conditional update and the writes w in one transaction. retry reports
// a cancellation worth reading again for: the session changed (ErrConflict), a TransactionConflict
// (after a backoff), or a release with nothing left, marked in gone so the next attempt leaves it out.
func (d *DynamoStore) commitWith(ctx context.Context, update types.Update, w releases, gone *releases, attempt int) (retry bool, err error) {
	_, err = d.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: append([]types.TransactWriteItem{{Update: &update}}, w.items...),
	})
	var canceled *types.TransactionCanceledException
	if !errors.As(err, &canceled) {
		if err != nil {
			return false, fmt.Errorf("write session: %w", err)
		}
		return false, nil
	}
	failed := cancelled(canceled)
	switch {
	case failed(0) == conditionFailed:
		return true, ErrConflict
	case failed(anyItem) == transactionConflict:
		if err := sleepCtx(ctx, conflictBackoff(attempt)); err != nil {
			return false, fmt.Errorf("write session: %w", err)
		}
		return true, fmt.Errorf("write session: %w: %w", errTransactionConflict, err)
	case failed(w.counterAt) == conditionFailed || failed(w.usageAt) == conditionFailed:
		// The counter is at zero (it never goes below) or the usage entry is gone (its item expired):
		// the session is written without that release.
		gone.counter = gone.counter || failed(w.counterAt) == conditionFailed
		gone.usage = gone.usage || failed(w.usageAt) == conditionFailed
		return true, fmt.Errorf("write session: %w", err)
	}
	return false, fmt.Errorf("write session: %w", err)
}

// removeReleased is the session update's REMOVE of the marks of what it no longer holds.
func removeReleased(cur, next Session) string {
	out := ""
	if cur.CountedOpen && !next.CountedOpen {
		out += ", counted_open"
	}
	if cur.CountedUsage && !next.CountedUsage {
		out += ", counted_usage"
	}
	return out
}

// OpenSessionCount is the open-session counter (sessions holding a slot of MaxOpenSessions).
func (d *DynamoStore) OpenSessionCount(ctx context.Context) (int64, error) {
	out, err := d.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &d.table, Key: capacityKey(), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, fmt.Errorf("get open-session counter: %w", err)
	}
	n, ok := out.Item["open_sessions"].(*types.AttributeValueMemberN)
	if !ok {
		return 0, nil
	}
	return strconv.ParseInt(n.Value, 10, 64)
}
