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
	// Replacement: the agent replaces one that left mid-session (a pool worker greets the waiting
	// student with an acknowledgement of the interruption).
	Replacement bool
}

// Env is the per-session environment of the agent process.
func (s Session) Env() map[string]string {
	return map[string]string{
		"SESSION_ID": s.SessionID, "ROOM_NAME": s.RoomName, "CATEGORY_ID": s.CategoryID,
		"AGENT_MAX_DURATION_SECONDS": strconv.FormatInt(int64(s.MaxDuration/time.Second), 10),
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

// Launcher starts one agent per session.
type Launcher interface {
	// Launch starts the session's agent and returns its task id. Retrying with the same session must not
	// start a second agent.
	Launch(ctx context.Context, s Session) (taskID string, err error)
	// Stop ends an agent; stopping one that already ended is not an error.
	Stop(ctx context.Context, taskID, reason string) error
}
