package webhook

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"

	"counselvideo/shared/agents"
	"counselvideo/shared/metrics"
	"counselvideo/shared/rooms"
	"counselvideo/shared/sessions"
)

// An agent lost mid-session (its worker or task crashed, ran out of memory, was reclaimed) leaves the
// student in a silent room: LiveKit re-dispatches nothing. When the session's agent leaves an open
// session while the room and the student are still there, the webhook starts one replacement
// (docs/architecture.md, "Session states"); a second loss fails the session.

// End reasons of a lost agent.
const (
	EndReasonAgentLost         = "agent lost"
	EndReasonReplacementFailed = "agent lost; starting a replacement failed"
)

// Time budget of the replacement path, the longest a webhook request takes: the checks, the
// conditional write and the launch (the API's launcher, under the deadline the API gives it), a
// launcher's own cleanup after a failed launch, failing the session and cleaning up, and the reserve
// for releasing the event claim and answering. The webhook Lambda's timeout must hold TimeBudget.
const (
	// ReplacementTimeout bounds everything up to the replacement's recorded task: the checks, the lost
	// agent's stop (LostAgentStopTimeout) and the launch (the API gives the same launcher 6 s,
	// service.RequestTimeout, plus the pool's longest wait for a worker and taking its dispatch back).
	ReplacementTimeout = 8*time.Second + agents.PoolJoinTimeoutMax + agents.DispatchDeleteTimeout
	// LostAgentStopTimeout bounds stopping the lost agent's task before the replacement starts.
	LostAgentStopTimeout = 2 * time.Second
	// ReplacementCleanupTimeout bounds failing the session, deleting the room and stopping the tasks;
	// it runs on its own context, so a launch that used up its deadline is still undone.
	ReplacementCleanupTimeout = 3 * time.Second
	// budgetMargin is left for the runtime, the adapter and writing the answer.
	budgetMargin = 2 * time.Second
)

// TimeBudget is the longest one webhook request can take (the replacement of a lost agent).
func TimeBudget() time.Duration {
	return ReplacementTimeout + agents.LaunchCleanupTimeout + ReplacementCleanupTimeout + releaseReserve + budgetMargin
}

// minReplacementDuration is the least a replacement is given to run: the sweeper still ends the
// session at its own maximum, counted from the first agent's join.
const minReplacementDuration = time.Minute

// deliberateDeparture reports whether the agent left by a decision (its own, the server's, ours) rather
// than by dying: such a departure is not a loss. The agent leaves on its own only after deleting the
// room (agentimage/src/agent.ts); a removal (DeleteDispatch, RemoveParticipant), a newer connection of
// the same identity, and a room deleted or closed all have their own reasons.
func deliberateDeparture(r livekit.DisconnectReason) bool {
	switch r {
	case livekit.DisconnectReason_CLIENT_INITIATED, livekit.DisconnectReason_DUPLICATE_IDENTITY,
		livekit.DisconnectReason_PARTICIPANT_REMOVED, livekit.DisconnectReason_ROOM_DELETED,
		livekit.DisconnectReason_ROOM_CLOSED, livekit.DisconnectReason_SERVER_SHUTDOWN:
		return true
	}
	return false
}

// agentLeft handles the departure of the session's agent at `at`.
func (h *Handler) agentLeft(ctx context.Context, log *slog.Logger, sess sessions.Session, p *livekit.ParticipantInfo, at time.Time) (Result, error) {
	log = log.With("agent", true, "agent_replaced", sess.Replaced())
	switch {
	case !sess.Status.Open():
		log.Info("agent left a closed session")
		return ResultIgnored, nil
	case deliberateDeparture(p.GetDisconnectReason()):
		log.Info("agent left")
		return ResultIgnored, nil
	case sess.Replaced() && sess.AgentLostSID == p.GetSid():
		log.Info("agent loss already handled")
		return ResultIgnored, nil
	}
	ctx, cancel := context.WithTimeout(ctx, ReplacementTimeout)
	defer cancel()
	people, err := h.Rooms.Participants(ctx, sess.RoomName)
	if errors.Is(err, rooms.ErrRoomNotFound) {
		log.Info("agent left a room that is gone; its room_finished ends the session")
		return ResultIgnored, nil
	}
	if err != nil {
		return "", err
	}
	studentIn, agentIn := false, false
	for _, q := range people {
		studentIn = studentIn || (!q.IsAgent && q.Identity == sess.UserID)
		agentIn = agentIn || (q.IsAgent && q.Identity == rooms.AgentIdentity(sess.SessionID))
	}
	switch {
	case agentIn:
		log.Info("agent left but a connection of it is in the room")
		return ResultIgnored, nil
	case !studentIn:
		log.Info("agent lost while the student is away; the room closes after the departure timeout unless they return")
		return ResultIgnored, nil
	case sess.Replaced():
		log.Warn("replacement agent lost; failing the session")
		return h.failLostAgent(ctx, log, sess, at, EndReasonAgentLost, metrics.ReasonAgentLost, "")
	}

	replaced, err := h.Sessions.MarkAgentReplaced(ctx, sess.SessionID, sessions.AgentLoss{ParticipantSID: p.GetSid(), At: at})
	if errors.Is(err, sessions.ErrConflict) {
		// A concurrent webhook (a duplicate with its own event id) or a closer got there first.
		switch {
		case !replaced.Status.Open():
			log.Info("session closed while its agent loss was handled", "status", replaced.Status)
			return ResultIgnored, nil
		case replaced.AgentLostSID == p.GetSid():
			log.Info("agent loss already handled")
			return ResultIgnored, nil
		}
		log.Warn("replacement agent lost; failing the session")
		return h.failLostAgent(ctx, log, replaced, at, EndReasonAgentLost, metrics.ReasonAgentLost, "")
	}
	if err != nil {
		return "", err
	}
	return h.replaceAgent(ctx, log, replaced, at)
}

// studentReturned handles the student coming back (a reload, a network switch) to a session whose
// agent had joined: an agent that died while the student was away was not replaced then (nobody was
// waiting), so if no agent is in the room now, its replacement starts here, once, as for a loss seen
// with the student in the room. The lost agent's participant sid is not known here ("unknown").
func (h *Handler) studentReturned(ctx context.Context, log *slog.Logger, sess sessions.Session, at time.Time) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, ReplacementTimeout)
	defer cancel()
	people, err := h.Rooms.Participants(ctx, sess.RoomName)
	if errors.Is(err, rooms.ErrRoomNotFound) {
		log.Info("student joined a room that is gone; its room_finished ends the session")
		return ResultApplied, nil
	}
	if err != nil {
		return "", err
	}
	for _, q := range people {
		if q.IsAgent && q.Identity == rooms.AgentIdentity(sess.SessionID) {
			return ResultApplied, nil // the agent is there: an ordinary return
		}
	}
	log.Warn("student returned to a room without its agent (lost while they were away); starting a replacement")
	replaced, err := h.Sessions.MarkAgentReplaced(ctx, sess.SessionID, sessions.AgentLoss{ParticipantSID: "unknown", At: at})
	if errors.Is(err, sessions.ErrConflict) {
		log.Info("session closed or its agent replaced meanwhile", "status", replaced.Status)
		return ResultIgnored, nil
	}
	if err != nil {
		return "", err
	}
	return h.replaceAgent(ctx, log, replaced, at)
}

// replaceAgent starts the replacement of the session's lost agent (its record is written). The lost
// agent's task is stopped first: its process may linger, and stopping it (a pool job's dispatch
// deleted, say) must not reach the replacement that joins with the same identity.
func (h *Handler) replaceAgent(ctx context.Context, log *slog.Logger, sess sessions.Session, at time.Time) (Result, error) {
	lost := sess.AgentTaskID
	if lost != "" {
		sctx, cancel := context.WithTimeout(ctx, LostAgentStopTimeout)
		if err := h.Agents.Stop(sctx, lost, "session "+sess.SessionID+": agent lost, replaced"); err != nil {
			log.Error("stopping the lost agent's task failed; starting the replacement anyway", "agent_task_id", lost, "error", err.Error())
		}
		cancel()
	}
	task, err := h.Agents.Launch(ctx, agents.Session{
		SessionID: sess.SessionID, RoomName: sess.RoomName, CategoryID: sess.CategoryID,
		MaxDuration: h.replacementDuration(sess, at), Replacement: true,
	})
	if err != nil {
		log.Error("starting a replacement agent failed; failing the session", "error", err.Error())
		return h.failLostAgent(ctx, log, sess, at, EndReasonReplacementFailed, metrics.ReasonAgentReplacementFailed, "")
	}
	log = log.With("agent_task_id", task, "lost_agent_task_id", lost)
	if err := h.Sessions.RecordAgentTask(ctx, sess.SessionID, task); err != nil {
		if errors.Is(err, sessions.ErrConflict) {
			// Closed meanwhile (the student ended it, the room finished): its closer knew only the lost task.
			log.Info("session closed while its replacement started; stopping the replacement")
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ReplacementCleanupTimeout)
			defer cancel()
			return ResultApplied, h.Agents.Stop(sctx, task, "session "+sess.SessionID+": closed")
		}
		log.Error("recording the replacement agent's task failed; failing the session", "error", err.Error())
		return h.failLostAgent(ctx, log, sess, at, EndReasonReplacementFailed, metrics.ReasonAgentReplacementFailed, task)
	}
	h.Metrics.AgentReplaced(sess.SessionID)
	log.Info("agent lost mid-session; replacement started", "lost_at", at)
	return ResultApplied, nil
}

// replacementDuration is what is left of the session's maximum, counted from the first agent's join
// as the agent and the sweeper count it (at least minReplacementDuration).
func (h *Handler) replacementDuration(sess sessions.Session, at time.Time) time.Duration {
	limit := sess.MaxDuration()
	if limit <= 0 {
		limit = h.MaxDuration
	}
	left := limit
	if !sess.AgentJoinedAt.IsZero() {
		left -= at.Sub(sess.AgentJoinedAt)
	}
	return max(left.Truncate(time.Second), minReplacementDuration)
}

// failLostAgent ends the session failed first (so the reason is ours, not the room_finished our delete
// causes), then deletes the room and stops the session's task and, if given, a replacement's. It runs
// on its own deadline: the request's may be what just passed.
func (h *Handler) failLostAgent(ctx context.Context, log *slog.Logger, sess sessions.Session, at time.Time, reason string, code metrics.Reason, replacementTask string) (Result, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ReplacementCleanupTimeout)
	defer cancel()
	ended, err := h.Sessions.End(ctx, sess.SessionID, sessions.Ending{Status: sessions.StatusFailed, At: at, Reason: reason})
	switch {
	case err == nil:
		log.Info("session failed", "end_reason", reason, "duration_seconds", ended.DurationSeconds)
		h.Metrics.SessionClosed(ended, code)
	case errors.Is(err, sessions.ErrConflict):
		log.Info("session closed meanwhile", "status", ended.Status)
	default:
		return "", err
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	record := func(err error) {
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	}
	wg.Go(func() { record(h.Rooms.DeleteRoom(ctx, sess.RoomName)) })
	for _, task := range []string{sess.AgentTaskID, replacementTask} {
		if task != "" {
			wg.Go(func() { record(h.Agents.Stop(ctx, task, "session "+sess.SessionID+": "+reason)) })
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		log.Error("cleanup after failing the session failed", "error", err.Error())
		return ResultApplied, err
	}
	log.Info("room deleted and agent task stopped", "agent_task_id", sess.AgentTaskID)
	return ResultApplied, nil
}
