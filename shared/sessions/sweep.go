package sessions

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"counselvideo/shared/dynamotables"
)

// The sweeper reads the open sessions in pages, oldest first, and keeps where it stopped in a cursor
// item, so a run cut off by its deadline is resumed by the next one and every open session is
// eventually examined however many there are.

// SweepCursor is a position in the list of open sessions (oldest first): the last session handed
// out. The zero cursor is the start of the list.
type SweepCursor struct {
	CreatedAt time.Time `dynamodbav:"cursor_created_at" json:"created_at"`
	SessionID string    `dynamodbav:"cursor_session_id" json:"session_id"`
}

// CursorAt is the position just after s.
func CursorAt(s Session) SweepCursor {
	return SweepCursor{CreatedAt: s.CreatedAt, SessionID: s.SessionID}
}

func (c SweepCursor) IsZero() bool { return c.SessionID == "" }

// sweepCursorTTL makes a cursor that no run updates any more (the sweeper was removed) disappear.
const sweepCursorTTL = 7 * 24 * time.Hour

func sweepCursorKey() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{dynamotables.SessionsHashKey: str("sweep#cursor")}
}

// ListOpenPage returns up to limit open sessions created before createdBefore and after the cursor,
// oldest first; more reports whether the list may go on past the page.
func (d *DynamoStore) ListOpenPage(ctx context.Context, createdBefore time.Time, after SweepCursor, limit int32) ([]Session, bool, error) {
	in := &dynamodb.QueryInput{
		TableName:                &d.table,
		IndexName:                aws.String(dynamotables.OpenSessionsIndex),
		KeyConditionExpression:   aws.String("#b = :open AND created_at < :before"),
		ExpressionAttributeNames: map[string]string{"#b": dynamotables.SweepBucketAttr},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":open": str(dynamotables.SweepBucketOpen), ":before": ts(createdBefore),
		},
		Limit: aws.Int32(limit),
	}
	if !after.IsZero() {
		if !after.CreatedAt.Before(createdBefore) {
			// DynamoDB refuses a start key outside the key condition; nothing is left in that range.
			return nil, false, nil
		}
		// A position in the index, not necessarily a live item: the session may have ended since.
		in.ExclusiveStartKey = map[string]types.AttributeValue{
			dynamotables.SessionsHashKey: sessionKey(after.SessionID)[dynamotables.SessionsHashKey],
			dynamotables.SweepBucketAttr: str(dynamotables.SweepBucketOpen),
			"created_at":                 ts(after.CreatedAt),
		}
	}
	out, err := d.db.Query(ctx, in)
	if err != nil {
		return nil, false, fmt.Errorf("query open sessions: %w", err)
	}
	list := make([]Session, 0, len(out.Items))
	for _, it := range out.Items {
		s, err := decode(it)
		if err != nil {
			return nil, false, err
		}
		list = append(list, s)
	}
	return list, len(out.LastEvaluatedKey) > 0, nil
}

// LoadSweepCursor returns where the last sweep stopped (zero if it went through the whole list).
func (d *DynamoStore) LoadSweepCursor(ctx context.Context) (SweepCursor, error) {
	out, err := d.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &d.table, Key: sweepCursorKey(), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return SweepCursor{}, fmt.Errorf("get sweep cursor: %w", err)
	}
	var c SweepCursor
	if out.Item == nil {
		return c, nil
	}
	if err := attributevalue.UnmarshalMap(out.Item, &c); err != nil {
		return SweepCursor{}, fmt.Errorf("decode sweep cursor: %w", err)
	}
	return c, nil
}

// SaveSweepCursor records where the next sweep starts; the zero cursor removes the item (start over).
// Overlapping runs may overwrite each other's cursor: both positions are valid.
func (d *DynamoStore) SaveSweepCursor(ctx context.Context, c SweepCursor) error {
	if c.IsZero() {
		if _, err := d.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &d.table, Key: sweepCursorKey()}); err != nil {
			return fmt.Errorf("delete sweep cursor: %w", err)
		}
		return nil
	}
	item := sweepCursorKey()
	item["cursor_created_at"] = ts(c.CreatedAt)
	item["cursor_session_id"] = str(c.SessionID)
	item["updated_at"] = ts(d.now())
	item[dynamotables.SessionsTTLAttr] = num(d.now().Add(sweepCursorTTL).Unix())
	if _, err := d.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &d.table, Item: item}); err != nil {
		return fmt.Errorf("put sweep cursor: %w", err)
	}
	return nil
}

// cursorOrder is the memory store's order of the open list: creation time, then session id.
func cursorOrder(a, b SweepCursor) int {
	return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.SessionID, b.SessionID))
}

// ListOpenPage: see DynamoStore.ListOpenPage.
func (m *MemoryStore) ListOpenPage(_ context.Context, createdBefore time.Time, after SweepCursor, limit int32) ([]Session, bool, error) {
	all := m.list(func(s Session) bool {
		return s.Status.Open() && s.CreatedAt.Before(createdBefore) && (after.IsZero() || cursorOrder(CursorAt(s), after) > 0)
	}, func(a, b Session) int { return cursorOrder(CursorAt(a), CursorAt(b)) }, 0)
	if limit > 0 && len(all) > int(limit) {
		return all[:limit], true, nil
	}
	return all, false, nil
}

func (m *MemoryStore) LoadSweepCursor(context.Context) (SweepCursor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sweepCursor, nil
}

func (m *MemoryStore) SaveSweepCursor(_ context.Context, c SweepCursor) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepCursor = c
	return nil
}
