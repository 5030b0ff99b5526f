// Package agents starts and stops the avatar agent that serves one session: an ECS Fargate task in
// AWS, a local process in the dev stack.
package agents

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// Session carries the per-session values an agent receives. None of them is secret: on ECS they are
// container overrides, which DescribeTasks shows to anyone with read access.
type Session struct {
	SessionID  string
	RoomName   string
	CategoryID string
	// MaxDuration is the session's own maximum (the configured one, cut to the minutes the student
	// has left that day): the agent says goodbye and ends the session at it, counted from its join.
	MaxDuration time.Duration
	// Replacement: the session's agent was lost mid-session (its worker or task died) and this one
	// takes over; it greets the waiting student with an acknowledgement of the interruption.
	Replacement bool
}

// Env is the per-session environment of the agent process.
func (s Session) Env() map[string]string {
	return map[string]string{
		"SESSION_ID": s.SessionID, "ROOM_NAME": s.RoomName, "CATEGORY_ID": s.CategoryID,
		"AGENT_MAX_DURATION_SECONDS": strconv.FormatInt(int64(s.MaxDuration/time.Second), 10),
		"AGENT_REPLACEMENT":          strconv.FormatBool(s.Replacement),
	}
}

// Where a session's agent came from (the session record's agent_source, the metrics' AgentSource).
const (
	SourcePool = "pool" // a warm pool worker took the session's dispatch
	SourceCold = "cold" // a task or process started for the session
)

// SourceOf tells from a launch's task id how the agent came.
func SourceOf(taskID string) string {
	if strings.HasPrefix(taskID, poolTaskPrefix) {
		return SourcePool
	}
	return SourceCold
}

// LaunchKey names one launch of a session: the session id for its first agent, the session id with
// a suffix for a replacement, so an idempotent launcher (RunTask's client token) does not answer a
// replacement with the agent that was lost.
func (s Session) LaunchKey() string {
	if s.Replacement {
		return s.SessionID + "-replacement"
	}
	return s.SessionID
}

// Launcher starts one agent per session.
type Launcher interface {
	// Launch starts the session's agent and returns its task id. Retrying with the same session must not
	// start a second agent; a Replacement is a launch of its own (see LaunchKey).
	Launch(ctx context.Context, s Session) (taskID string, err error)
	// Stop ends an agent; stopping one that already ended is not an error.
	Stop(ctx context.Context, taskID, reason string) error
}
