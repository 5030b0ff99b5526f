// Package sweeper closes sessions that LiveKit's webhooks left open: LiveKit may drop events, so on a
// schedule the sweeper looks at open sessions past their limits, asks LiveKit whether the room still
// exists and who is in it, and closes what is over (room deleted, agent task stopped, session ended).
package sweeper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"counselvideo/shared/agents"
	"counselvideo/shared/logging"
	"counselvideo/shared/rooms"
	"counselvideo/shared/sessions"
)

// Defaults.
const (
	// DefaultMinAge leaves sessions alone while the API may still be setting up their room.
	DefaultMinAge = time.Minute
	// DefaultBatch is how many open sessions one run examines (oldest first).
	DefaultBatch = 500
)

// Store is the part of the session store the sweeper uses.
type Store interface {
	ListOpen(ctx context.Context, createdBefore time.Time, limit int32) ([]sessions.Session, error)
	End(ctx context.Context, sessionID string, e sessions.Ending) (sessions.Session, error)
}

// Rooms is the part of the LiveKit room API the sweeper uses (rooms.Client).
type Rooms interface {
	DeleteRoom(ctx context.Context, name string) error
	Participants(ctx context.Context, name string) ([]rooms.Participant, error)
}

type Sweeper struct {
	Sessions Store
	Rooms    Rooms
	Agents   agents.Launcher
	Log      *slog.Logger
	// MaxDuration ends sessions older than this (counted from creation).
	MaxDuration time.Duration
	// AgentJoinTimeout fails sessions whose agent has not joined this long after creation.
	AgentJoinTimeout time.Duration
	// MinAge: younger sessions are not examined (DefaultMinAge when zero; negative means none).
	MinAge time.Duration
	// Batch bounds the sessions examined per run (DefaultBatch when zero).
	Batch int32
	Now   func() time.Time
}

// Closed is one session the run closed.
type Closed struct {
	SessionID string          `json:"session_id"`
	Status    sessions.Status `json:"status"`
	Reason    string          `json:"end_reason"`
}

// Report summarises a run.
type Report struct {
	Examined int      `json:"examined"`
	Closed   []Closed `json:"closed"`
	Errors   int      `json:"errors"`
}

// Reasons written to end_reason.
const (
	ReasonRoomGone = "room closed without a room_finished webhook (closed by sweeper)"
)

func ReasonMaxDuration(d time.Duration) string {
	return fmt.Sprintf("maximum session duration of %s reached (closed by sweeper)", d)
}
func ReasonAgentTimeout(d time.Duration) string {
	return fmt.Sprintf("agent did not join within %s (closed by sweeper)", d)
}

func (s *Sweeper) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Run examines the open sessions once. The error joins every per-session failure (the report counts
// them); a failed session is retried on the next run.
func (s *Sweeper) Run(ctx context.Context) (Report, error) {
	now := s.now().UTC()
	minAge := s.MinAge
	if minAge == 0 {
		minAge = DefaultMinAge
	}
	if minAge < 0 {
		minAge = 0
	}
	for _, limit := range []time.Duration{s.MaxDuration, s.AgentJoinTimeout} {
		if limit > 0 {
			minAge = min(minAge, limit)
		}
	}
	batch := s.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	open, err := s.Sessions.ListOpen(ctx, now.Add(-minAge), batch)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Examined: len(open), Closed: []Closed{}}
	var errs []error
	for _, sess := range open {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		c, err := s.sweep(ctx, sess, now)
		if err != nil {
			rep.Errors++
			errs = append(errs, fmt.Errorf("session %s: %w", sess.SessionID, err))
		}
		if c != nil {
			rep.Closed = append(rep.Closed, *c)
		}
	}
	logging.From(ctx, s.Log).Info("sweep done", "examined", rep.Examined, "closed", len(rep.Closed), "errors", rep.Errors)
	return rep, errors.Join(errs...)
}

func (s *Sweeper) sweep(ctx context.Context, sess sessions.Session, now time.Time) (*Closed, error) {
	ctx = logging.With(ctx, s.Log, "session_id", sess.SessionID, "user_id", sess.UserID)
	age := now.Sub(sess.CreatedAt)
	if s.MaxDuration > 0 && age >= s.MaxDuration {
		return s.close(ctx, sess, sessions.StatusEnded, ReasonMaxDuration(s.MaxDuration), now)
	}
	people, err := s.Rooms.Participants(ctx, sess.RoomName)
	if errors.Is(err, rooms.ErrRoomNotFound) {
		return s.close(ctx, sess, sessions.StatusEnded, ReasonRoomGone, now)
	}
	if err != nil {
		return nil, err
	}
	agentIn := false
	for _, p := range people {
		agentIn = agentIn || p.IsAgent
	}
	if s.AgentJoinTimeout > 0 && age >= s.AgentJoinTimeout && sess.AgentJoinedAt.IsZero() && !agentIn {
		return s.close(ctx, sess, sessions.StatusFailed, ReasonAgentTimeout(s.AgentJoinTimeout), now)
	}
	return nil, nil
}

// close records the end first (so the reason is ours, not the room_finished our delete triggers), then
// deletes the room and stops the task. If the webhook closed the session meanwhile, it did the rest.
func (s *Sweeper) close(ctx context.Context, sess sessions.Session, status sessions.Status, reason string, now time.Time) (*Closed, error) {
	log := logging.From(ctx, s.Log)
	ended, err := s.Sessions.End(ctx, sess.SessionID, sessions.Ending{Status: status, At: now, Reason: reason})
	if errors.Is(err, sessions.ErrConflict) {
		log.Info("session closed meanwhile", "status", ended.Status)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	log.Info("session closed by sweeper", "status", status, "end_reason", reason, "duration_seconds", ended.DurationSeconds)
	var errs []error
	if err := s.Rooms.DeleteRoom(ctx, sess.RoomName); err != nil {
		errs = append(errs, err)
	}
	if sess.AgentTaskID != "" {
		if err := s.Agents.Stop(ctx, sess.AgentTaskID, "session "+sess.SessionID+": "+reason); err != nil {
			errs = append(errs, err)
		} else {
			log.Info("agent task stopped", "agent_task_id", sess.AgentTaskID)
		}
	}
	if err := errors.Join(errs...); err != nil {
		// The session is closed; the room_finished webhook our delete causes (or the room's own empty
		// timeout) stops the task again.
		log.Error("cleanup after closing failed", "error", err.Error())
		return &Closed{SessionID: sess.SessionID, Status: status, Reason: reason}, err
	}
	return &Closed{SessionID: sess.SessionID, Status: status, Reason: reason}, nil
}
