// Package sessions owns the session record and its lifecycle. The allowed transitions are written
// once, as data, and every write is a conditional update so concurrent API calls, duplicate webhooks
// and the sweeper cannot move a session backwards.
package sessions

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
)

// Status is a session's lifecycle state.
type Status string

const (
	StatusStarting Status = "starting" // record written, room and agent being set up
	StatusActive   Status = "active"   // the student joined the room
	StatusEnded    Status = "ended"    // room finished or closed; terminal
	StatusFailed   Status = "failed"   // setup failed or the agent never joined; terminal
)

// transitions lists, for each target status, the statuses it may be reached from.
var transitions = map[Status][]Status{
	StatusActive: {StatusStarting},
	StatusEnded:  {StatusStarting, StatusActive},
	StatusFailed: {StatusStarting, StatusActive},
}

// AllowedFrom returns the statuses from which to may be reached.
func AllowedFrom(to Status) []Status { return transitions[to] }

// CanTransition reports whether from → to is allowed.
func CanTransition(from, to Status) bool { return slices.Contains(transitions[to], from) }

// Terminal reports whether no transition leaves s.
func (s Status) Terminal() bool { return s == StatusEnded || s == StatusFailed }

// Open reports whether the session still holds a room or an agent.
func (s Status) Open() bool { return s == StatusStarting || s == StatusActive }

// ModeVideo is the only mode this backend serves.
const ModeVideo = "video"

// RoomPrefix starts every room name this backend creates.
const RoomPrefix = "video-"

// RoomName derives the LiveKit room of a session.
func RoomName(sessionID string) string { return RoomPrefix + sessionID }

// SessionIDFromRoom is the inverse of RoomName; ok is false for rooms that are not ours.
func SessionIDFromRoom(room string) (string, bool) {
	id, ok := strings.CutPrefix(room, RoomPrefix)
	return id, ok && id != ""
}

// Session is one counseling session.
type Session struct {
	SessionID       string    `dynamodbav:"session_id" json:"session_id"`
	UserID          string    `dynamodbav:"user_id" json:"-"`
	CategoryID      string    `dynamodbav:"category_id" json:"category_id"`
	CategoryName    string    `dynamodbav:"category_name" json:"category_name"`
	Mode            string    `dynamodbav:"mode" json:"mode"`
	RoomName        string    `dynamodbav:"room_name" json:"room_name"`
	RoomSID         string    `dynamodbav:"room_sid,omitempty" json:"-"`
	Status          Status    `dynamodbav:"status" json:"status"`
	CreatedAt       time.Time `dynamodbav:"created_at" json:"created_at"`
	StartedAt       time.Time `dynamodbav:"started_at,omitempty" json:"started_at,omitzero"`
	StudentJoinedAt time.Time `dynamodbav:"student_joined_at,omitempty" json:"student_joined_at,omitzero"`
	AgentJoinedAt   time.Time `dynamodbav:"agent_joined_at,omitempty" json:"agent_joined_at,omitzero"`
	EndedAt         time.Time `dynamodbav:"ended_at,omitempty" json:"ended_at,omitzero"`
	DurationSeconds int64     `dynamodbav:"duration_seconds,omitempty" json:"duration_seconds,omitempty"`
	EndReason       string    `dynamodbav:"end_reason,omitempty" json:"end_reason,omitempty"`
	AgentTaskID     string    `dynamodbav:"agent_task_id,omitempty" json:"-"`
	// AgentSource is how the agent came: "pool" (a warm worker took the dispatch) or "cold" (a task
	// started for the session). Written at creation with the launcher's first try, then by MarkStarted.
	AgentSource string `dynamodbav:"agent_source,omitempty" json:"agent_source,omitempty"`
	// TimeToAgentMS is agent_joined_at - created_at in milliseconds, written with the earliest agent join.
	TimeToAgentMS int64 `dynamodbav:"time_to_agent_ms,omitempty" json:"time_to_agent_ms,omitempty"`
	// AgentReplacedAt is when the webhook started a replacement for the session's agent, lost
	// mid-session; AgentLostSID is the LiveKit participant sid of the agent it replaced. A session
	// gets one replacement (replacement.go).
	AgentReplacedAt time.Time `dynamodbav:"agent_replaced_at,omitempty" json:"-"`
	AgentLostSID    string    `dynamodbav:"agent_lost_sid,omitempty" json:"-"`
	// MaxDurationSeconds is this session's own maximum: the configured one, cut to the minutes the
	// student had left that day. The agent ends the session at it; the sweeper a little later.
	MaxDurationSeconds int64 `dynamodbav:"max_duration_seconds,omitempty" json:"max_duration_seconds,omitempty"`
	// CountedOpen: the session holds a slot of the open-session counter (MaxOpenSessions); End gives it back.
	CountedOpen bool `dynamodbav:"counted_open,omitempty" json:"-"`
	// CountedUsage: the session has an entry in the student's usage item (daily limits); End records
	// its duration there, or removes it for a failed session.
	CountedUsage bool `dynamodbav:"counted_usage,omitempty" json:"-"`
	// SafetyFlag and SafetyFlagCount are written by the agent (agentimage/src/safety-aws.ts), never
	// by this package: the first safety concern raised in the session, and how many were raised.
	// Staff-only: not shown to the student (the student sees the crisis resources in the room).
	SafetyFlag      *SafetyFlag `dynamodbav:"safety_flag,omitempty" json:"-"`
	SafetyFlagCount int64       `dynamodbav:"safety_flag_count,omitempty" json:"-"`
}

// MaxDuration is the session's own maximum duration (0 for sessions recorded before it existed).
func (s Session) MaxDuration() time.Duration {
	return time.Duration(s.MaxDurationSeconds) * time.Second
}

// SafetyFlag is the first safety concern of a session: what the student is at risk of (kind:
// self_harm, harm_to_others, abuse, medical_emergency), how acute (severity: concern, urgent,
// imminent), who raised it (source: model, phrase_list) and when. It holds no transcript text.
type SafetyFlag struct {
	ID       string    `dynamodbav:"id"`
	Kind     string    `dynamodbav:"kind"`
	Severity string    `dynamodbav:"severity"`
	Source   string    `dynamodbav:"source"`
	At       time.Time `dynamodbav:"at"`
}

// Flagged reports whether a safety concern was raised in the session.
func (s Session) Flagged() bool { return s.SafetyFlag != nil }

// Errors returned by stores.
var (
	ErrNotFound = errors.New("session not found")
	// ErrConflict means a conditional write lost: the session was not in an allowed state.
	ErrConflict = errors.New("session state changed concurrently")
	// ErrDuplicateEvent means a webhook event id was already applied.
	ErrDuplicateEvent = errors.New("event already processed")
)

// ActiveSessionError is returned by Create when the student already has an open session.
type ActiveSessionError struct{ SessionID string }

func (e *ActiveSessionError) Error() string { return "student already has open session " + e.SessionID }

// Ending describes how a session closes.
type Ending struct {
	Status Status // StatusEnded or StatusFailed
	At     time.Time
	Reason string
}

// Started is what create-room records about a session once its room and agent are up.
type Started struct {
	RoomSID     string
	AgentTaskID string
	AgentSource string // agents.SourcePool or agents.SourceCold
	At          time.Time
}

// Store persists sessions. The DynamoDB implementation is the production one; MemoryStore serves unit tests.
type Store interface {
	// Create writes a new `starting` session and the student's active-session lock atomically, and
	// in the same transaction admits it under a's limits (limits.go): it returns the session as
	// written, with its own maximum duration. If the student already holds an open session (also one
	// being created concurrently) it returns *ActiveSessionError, whatever the limits say; a student
	// over a daily limit gets *StudentLimitError, a full house *CapacityError.
	Create(ctx context.Context, s Session, a Admission) (Session, error)
	Get(ctx context.Context, sessionID string) (Session, error)
	// ListByUser returns a student's sessions, newest first.
	ListByUser(ctx context.Context, userID string, limit int32) ([]Session, error)
	// ListOpen returns sessions that are not terminal and were created before the given time.
	ListOpen(ctx context.Context, createdBefore time.Time, limit int32) ([]Session, error)
	// MarkStarted records the room sid, agent task and start time of an open session (the student
	// may already have joined through a second create-room). ErrConflict if the session was closed
	// meanwhile (ended by the student, failed by the sweeper).
	MarkStarted(ctx context.Context, sessionID string, st Started) error
	// RecordRoomSID sets the room sid if none is recorded yet (room_started may come first).
	RecordRoomSID(ctx context.Context, sessionID, roomSID string) error
	// RecordStudentJoin moves starting → active and keeps the earliest student join time; on a
	// terminal session it only corrects the join time and duration (see joins.go).
	RecordStudentJoin(ctx context.Context, sessionID string, at time.Time) error
	// RecordAgentJoin keeps the earliest agent (or avatar) join time.
	RecordAgentJoin(ctx context.Context, sessionID string, at time.Time) error
	// MarkAgentReplaced records, once per session, that its agent was lost and a replacement is
	// being started (agent_replaced_at, agent_lost_sid), on an open session that has no replacement
	// yet, and returns the session as it now is. ErrConflict, with the session as it is, when the
	// session is closed or already had its replacement: only one caller starts a replacement.
	MarkAgentReplaced(ctx context.Context, sessionID string, loss AgentLoss) (Session, error)
	// RecordAgentTask records the task of the session's replacement agent on an open session;
	// ErrConflict when the session was closed meanwhile (the caller stops the task).
	RecordAgentTask(ctx context.Context, sessionID, taskID string) error
	// End moves an open session to a terminal status, releases the student's lock and, in the same
	// write as the status, what the session holds under the limits (its open-session slot, its usage
	// entry), and returns the session as it now is. ErrConflict if it was already terminal.
	End(ctx context.Context, sessionID string, e Ending) (Session, error)
	// ClaimEvent records a webhook event id once; ErrDuplicateEvent if seen before.
	ClaimEvent(ctx context.Context, eventID string, ttl time.Duration) error
	// ReleaseEvent forgets a claimed event so a retry can apply it after a failure.
	ReleaseEvent(ctx context.Context, eventID string) error
}
