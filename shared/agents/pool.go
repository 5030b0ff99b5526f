package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"counselvideo/shared/config"
)

// Dispatcher is the LiveKit side of the warm pool (rooms.Client implements it).
type Dispatcher interface {
	// CreateDispatch sends agent agentName to room with metadata and returns the dispatch id.
	CreateDispatch(ctx context.Context, room, agentName, metadata string) (dispatchID string, err error)
	// DeleteDispatch ends the dispatch's job and removes its agent from the room; a dispatch already
	// gone is not an error.
	DeleteDispatch(ctx context.Context, room, dispatchID string) error
	// ParticipantPresent reports whether identity is in room.
	ParticipantPresent(ctx context.Context, room, identity string) (bool, error)
}

// Bounds of the pool's wait for a worker; the API's time budget (shared/service) counts the longest.
const (
	PoolJoinTimeoutMax     = config.MaxPoolJoinTimeout
	DefaultPoolJoinTimeout = config.DefaultPoolJoinTimeout
	// DispatchDeleteTimeout bounds taking back a dispatch no worker took, before the cold fallback.
	DispatchDeleteTimeout = 2 * time.Second
	// presencePollInterval: a worker's agent joins ~260 ms after the dispatch; checking often keeps
	// the answer (and with it the student's own connect) close to that: ~20 cheap GetParticipant
	// calls per warm session, 150 on a miss.
	presencePollInterval = 20 * time.Millisecond
)

// poolTaskPrefix starts the task id of an agent that came from the pool: "pool:<room>:<dispatch id>".
const poolTaskPrefix = "pool:"

// AgentIdentity is the agent's participant identity in its session's room, on both paths.
func AgentIdentity(sessionID string) string { return "agent-" + sessionID }

// Pool launches a session's agent from the warm pool: it dispatches the pool's agent to the room
// through LiveKit and waits a short while for the agent to join; when none does, it takes the
// dispatch back and falls back to the cold launcher. Never two agents: the dispatch is deleted
// (which also removes a worker that joined late) before the cold launch, and a failed delete fails
// the launch instead of falling back.
//
// With no agent name every Launch is cold; Stop still ends pool agents, so the webhook and the
// sweeper can stop what the API's pool started.
type Pool struct {
	dispatcher  Dispatcher
	cold        Launcher
	agentName   string
	joinTimeout time.Duration
	log         *slog.Logger
}

// NewPool wraps cold. joinTimeout is cut to PoolJoinTimeoutMax (0: DefaultPoolJoinTimeout).
func NewPool(dispatcher Dispatcher, cold Launcher, agentName string, joinTimeout time.Duration, log *slog.Logger) *Pool {
	if joinTimeout <= 0 {
		joinTimeout = DefaultPoolJoinTimeout
	}
	if log == nil {
		log = slog.Default()
	}
	return &Pool{dispatcher: dispatcher, cold: cold, agentName: agentName, joinTimeout: min(joinTimeout, PoolJoinTimeoutMax), log: log}
}

// FirstSource is where l tries first to get an agent: the session record names it from its birth,
// since a pool agent can join (and its webhook read the record) before Launch returns.
func FirstSource(l Launcher) string {
	if p, ok := l.(*Pool); ok && p.agentName != "" {
		return SourcePool
	}
	return SourceCold
}

// dispatchMetadata is the dispatch contract of agentimage/src/dispatch.ts.
type dispatchMetadata struct {
	SessionID          string `json:"session_id"`
	CategoryID         string `json:"category_id"`
	MaxDurationSeconds int64  `json:"max_duration_seconds,omitempty"`
	Replacement        bool   `json:"replacement,omitempty"`
}

func (p *Pool) Launch(ctx context.Context, s Session) (string, error) {
	if p.agentName == "" {
		return p.cold.Launch(ctx, s)
	}
	log := p.log.With("session_id", s.SessionID, "room_name", s.RoomName)
	md, err := json.Marshal(dispatchMetadata{
		SessionID: s.SessionID, CategoryID: s.CategoryID,
		MaxDurationSeconds: int64(s.MaxDuration / time.Second), Replacement: s.Replacement,
	})
	if err != nil {
		return "", fmt.Errorf("pool dispatch metadata: %w", err)
	}
	began := time.Now()
	// A failed call may still have created the dispatch (a lost answer): failing the launch lets the
	// setup delete the room, which ends any job in it, instead of risking a second agent.
	dispatchID, err := p.dispatcher.CreateDispatch(ctx, s.RoomName, p.agentName, string(md))
	if err != nil {
		return "", fmt.Errorf("pool dispatch: %w", err)
	}
	if p.waitForAgent(ctx, s) {
		taskID := poolTaskPrefix + s.RoomName + ":" + dispatchID
		log.Info("pool agent joined", "agent_source", SourcePool, "dispatch_id", dispatchID, "wait_ms", time.Since(began).Milliseconds())
		return taskID, nil
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DispatchDeleteTimeout)
	err = p.dispatcher.DeleteDispatch(dctx, s.RoomName, dispatchID)
	cancel()
	if err != nil {
		return "", fmt.Errorf("pool: no agent joined within %s, and taking back the dispatch failed (no cold start: it could make two agents): %w", p.joinTimeout, err)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("pool: waiting for a worker: %w", err)
	}
	log.Warn("no pool agent joined in time; starting one cold", "dispatch_id", dispatchID, "join_timeout_ms", p.joinTimeout.Milliseconds())
	return p.cold.Launch(ctx, s)
}

// waitForAgent polls the room until the session's agent is in it, the join timeout passes or ctx
// ends. A failing check counts as "not yet": the timeout bounds it.
func (p *Pool) waitForAgent(ctx context.Context, s Session) bool {
	ctx, cancel := context.WithTimeout(ctx, p.joinTimeout)
	defer cancel()
	identity := AgentIdentity(s.SessionID)
	tick := time.NewTicker(presencePollInterval)
	defer tick.Stop()
	for {
		present, err := p.dispatcher.ParticipantPresent(ctx, s.RoomName, identity)
		if err == nil && present {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// Stop ends a pool agent by deleting its dispatch (never through the cold launcher: a pool id is
// no ECS task), any other through the cold launcher.
func (p *Pool) Stop(ctx context.Context, taskID, reason string) error {
	if !strings.HasPrefix(taskID, poolTaskPrefix) {
		return p.cold.Stop(ctx, taskID, reason)
	}
	room, dispatchID, ok := strings.Cut(strings.TrimPrefix(taskID, poolTaskPrefix), ":")
	if !ok || room == "" || dispatchID == "" {
		return errors.New("pool: malformed task id " + taskID)
	}
	ctx, cancel := context.WithTimeout(ctx, DispatchDeleteTimeout)
	defer cancel()
	if err := p.dispatcher.DeleteDispatch(ctx, room, dispatchID); err != nil {
		return fmt.Errorf("pool stop: %w", err)
	}
	p.log.Info("pool agent stopped", "room_name", room, "dispatch_id", dispatchID, "reason", reason)
	return nil
}
