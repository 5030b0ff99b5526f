package sessions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Join recording that does not depend on the order webhooks arrive in. LiveKit does not guarantee
// ordering, so a participant_joined may be applied after room_finished. The status never moves
// backwards (a terminal session stays terminal), but the join times are facts about the session: the
// earliest one wins whenever it arrives, and a terminal session's duration is recomputed from it. This
// way every order of the same events converges to the same record.

// planStudentJoin returns the session as a student join at `at` leaves it; ok is false when the join
// changes nothing (an earlier or equal join is already recorded).
func planStudentJoin(s Session, at time.Time) (Session, bool) {
	if !s.StudentJoinedAt.IsZero() && !at.Before(s.StudentJoinedAt) {
		return s, false
	}
	switch {
	case s.Status == StatusStarting:
		s.Status = StatusActive
	case s.Status == StatusActive:
	case s.Status.Terminal():
		s.StudentJoinedAt = at
		s.DurationSeconds = durationSeconds(s, s.EndedAt)
	default:
		return s, false
	}
	s.StudentJoinedAt = at
	return s, true
}

// planAgentJoin returns the session as an agent join at `at` leaves it; ok is false when nothing changes.
func planAgentJoin(s Session, at time.Time) (Session, bool) {
	if !s.AgentJoinedAt.IsZero() && !at.Before(s.AgentJoinedAt) {
		return s, false
	}
	s.AgentJoinedAt = at
	s.TimeToAgentMS = max(at.Sub(s.CreatedAt).Milliseconds(), 1) // 1: a join recorded is never "absent"
	return s, true
}

// maxOptimisticAttempts bounds the read-plan-conditional-write loops.
const maxOptimisticAttempts = 5

func (d *DynamoStore) getRaw(ctx context.Context, id string) (map[string]types.AttributeValue, Session, error) {
	out, err := d.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &d.table, Key: sessionKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, Session{}, fmt.Errorf("get session: %w", err)
	}
	if out.Item == nil {
		return nil, Session{}, ErrNotFound
	}
	s, err := decode(out.Item)
	return out.Item, s, err
}

// pin returns a condition that holds only while attr still has the value read in raw (or is still absent).
func pin(attr string, raw map[string]types.AttributeValue, vals map[string]types.AttributeValue, name string) string {
	if v, ok := raw[attr]; ok {
		vals[name] = v
		return attr + " = " + name
	}
	return "attribute_not_exists(" + attr + ")"
}

// RecordStudentJoin records a student's join: starting → active with student_joined_at; on an active
// session an earlier join time replaces a later one; on a terminal session the status stays and only
// student_joined_at and duration_seconds are filled in (a late participant_joined). Never reopens.
// A corrected duration of an ended session counted under the daily limits is written to its usage
// entry in the same transaction, so the minutes used stay the sum of the sessions' durations.
func (d *DynamoStore) RecordStudentJoin(ctx context.Context, id string, at time.Time) error {
	var gone releases // the usage entry turned out to be gone
	for attempt := 1; attempt <= maxTransactAttempts; attempt++ {
		raw, cur, err := d.getRaw(ctx, id)
		if err != nil {
			return err
		}
		next, ok := planStudentJoin(cur, at)
		if !ok {
			return nil
		}
		vals := map[string]types.AttributeValue{":to": str(string(next.Status)), ":from": str(string(cur.Status)), ":at": ts(at)}
		set := "SET #s = :to, student_joined_at = :at"
		cond := "#s = :from AND " + pin("student_joined_at", raw, vals, ":oldsj")
		if cur.Status.Terminal() {
			set += ", duration_seconds = :dur"
			vals[":dur"] = num(next.DurationSeconds)
			cond += " AND " + pin("ended_at", raw, vals, ":oldend")
		}
		update := d.sessionUpdate(id, set, cond, vals)
		if cur.Status.Terminal() && cur.CountedUsage && !gone.usage {
			record, err := d.usageRecord(next)
			if err != nil {
				return err
			}
			retry, err := d.commitWith(ctx, update, releases{items: []types.TransactWriteItem{record}, counterAt: -1, usageAt: 1}, &gone, attempt)
			if !retry {
				return err
			}
			continue
		}
		_, err = d.runUpdate(ctx, update)
		if !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return ErrConflict
}

// RecordAgentJoin records the earliest agent (or avatar) join time, whatever the status: it is the
// time-to-agent figure and never changes the status.
func (d *DynamoStore) RecordAgentJoin(ctx context.Context, id string, at time.Time) error {
	for range maxOptimisticAttempts {
		raw, cur, err := d.getRaw(ctx, id)
		if err != nil {
			return err
		}
		next, ok := planAgentJoin(cur, at)
		if !ok {
			return nil
		}
		vals := map[string]types.AttributeValue{":at": ts(at), ":tta": num(next.TimeToAgentMS)}
		_, err = d.update(ctx, id, "SET agent_joined_at = :at, time_to_agent_ms = :tta",
			"attribute_exists(#s) AND "+pin("agent_joined_at", raw, vals, ":old"), vals)
		if !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return ErrConflict
}
