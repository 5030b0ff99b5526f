package sessions

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// A session's agent may be lost mid-session (its worker or task crashed, ran out of memory, was
// reclaimed): the webhook starts one replacement and records it here first, with a conditional
// write, so duplicate or concurrent webhooks start only one. A second loss fails the session.

// AgentLoss is a lost agent: its LiveKit participant sid and when it left.
type AgentLoss struct {
	ParticipantSID string
	At             time.Time
}

// Replaced reports whether the session already had its replacement agent.
func (s Session) Replaced() bool { return !s.AgentReplacedAt.IsZero() }

// planAgentReplaced returns the session with the replacement recorded; ok is false when the session
// is closed or already had one.
func planAgentReplaced(s Session, loss AgentLoss) (Session, bool) {
	if !s.Status.Open() || s.Replaced() {
		return s, false
	}
	s.AgentReplacedAt, s.AgentLostSID = loss.At.UTC(), loss.ParticipantSID
	return s, true
}

// MarkAgentReplaced: see Store.MarkAgentReplaced.
func (d *DynamoStore) MarkAgentReplaced(ctx context.Context, id string, loss AgentLoss) (Session, error) {
	attrs, err := d.update(ctx, id, "SET agent_replaced_at = :at, agent_lost_sid = :sid",
		"#s IN (:starting, :active) AND attribute_not_exists(agent_replaced_at)",
		map[string]types.AttributeValue{":at": ts(loss.At), ":sid": str(loss.ParticipantSID),
			":starting": str(string(StatusStarting)), ":active": str(string(StatusActive))})
	if errors.Is(err, ErrConflict) {
		cur, gerr := d.Get(ctx, id)
		if gerr != nil {
			return Session{}, gerr
		}
		return cur, ErrConflict
	}
	if err != nil {
		return Session{}, err
	}
	return decode(attrs)
}

// RecordAgentTask: see Store.RecordAgentTask.
func (d *DynamoStore) RecordAgentTask(ctx context.Context, id, taskID string) error {
	_, err := d.update(ctx, id, "SET agent_task_id = :task", "#s IN (:starting, :active)",
		map[string]types.AttributeValue{":task": str(taskID),
			":starting": str(string(StatusStarting)), ":active": str(string(StatusActive))})
	return err
}

// MarkAgentReplaced: see Store.MarkAgentReplaced.
func (m *MemoryStore) MarkAgentReplaced(ctx context.Context, id string, loss AgentLoss) (Session, error) {
	if _, err := m.Get(ctx, id); err != nil {
		return Session{}, err
	}
	return m.apply(id, func(s *Session) error {
		next, ok := planAgentReplaced(*s, loss)
		if !ok {
			return ErrConflict
		}
		*s = next
		return nil
	})
}

// RecordAgentTask: see Store.RecordAgentTask.
func (m *MemoryStore) RecordAgentTask(_ context.Context, id, taskID string) error {
	_, err := m.apply(id, func(s *Session) error {
		if !s.Status.Open() {
			return ErrConflict
		}
		s.AgentTaskID = taskID
		return nil
	})
	return err
}
