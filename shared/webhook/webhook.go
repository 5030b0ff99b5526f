// Package webhook receives LiveKit's room lifecycle webhooks and applies them to sessions. LiveKit's
// signature is the authentication; each event id takes effect at most once; the effects are
// conditional writes, so duplicates and any arrival order converge to the same session record.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	lkwebhook "github.com/livekit/protocol/webhook"

	"counselvideo/shared/agents"
	"counselvideo/shared/httpapi"
	"counselvideo/shared/logging"
	"counselvideo/shared/metrics"
	"counselvideo/shared/rooms"
	"counselvideo/shared/sessions"
)

// LiveKit event names this handler acts on.
const (
	EventRoomStarted       = "room_started"
	EventRoomFinished      = "room_finished"
	EventParticipantJoined = "participant_joined"
	EventParticipantLeft   = "participant_left"
	EventParticipantAbort  = "participant_connection_aborted"
)

// Defaults.
const (
	// DefaultDedupeTTL keeps event claims well past LiveKit's retry window.
	DefaultDedupeTTL = 24 * time.Hour
	// MaxBodyBytes bounds what is read from a request; LiveKit's events are a few KB.
	MaxBodyBytes = 1 << 20
	// cleanupTimeout bounds the room delete and task stop done inline (LiveKit gives up after 30 s;
	// the Lambda's timeout is 10 s).
	cleanupTimeout = 8 * time.Second
	// releaseReserve is kept from the request's deadline (the Lambda's) to release the event claim
	// after a failure: a claim left behind by a timed-out invocation would turn LiveKit's retry into
	// a duplicate (the sweeper would still close the session).
	releaseReserve = 2 * time.Second
)

// Store is the part of the session store the handler uses (sessions.DynamoStore and
// sessions.MemoryStore implement it).
type Store interface {
	Get(ctx context.Context, sessionID string) (sessions.Session, error)
	RecordRoomSID(ctx context.Context, sessionID, roomSID string) error
	RecordStudentJoin(ctx context.Context, sessionID string, at time.Time) error
	RecordAgentJoin(ctx context.Context, sessionID string, at time.Time) error
	End(ctx context.Context, sessionID string, e sessions.Ending) (sessions.Session, error)
	MarkAgentReplaced(ctx context.Context, sessionID string, loss sessions.AgentLoss) (sessions.Session, error)
	RecordAgentTask(ctx context.Context, sessionID, taskID string) error
	ClaimEvent(ctx context.Context, eventID string, ttl time.Duration) error
	ReleaseEvent(ctx context.Context, eventID string) error
}

// Rooms is the part of the LiveKit room API the handler uses (rooms.Client): deleting a room
// (a missing room is not an error) and, when the agent is lost, who is still in it.
type Rooms interface {
	DeleteRoom(ctx context.Context, name string) error
	Participants(ctx context.Context, name string) ([]rooms.Participant, error)
}

// Handler is the http.Handler of POST /livekit/webhook.
type Handler struct {
	Keys     auth.KeyProvider
	Sessions Store
	Rooms    Rooms
	// Agents stops a closed session's agent and starts the replacement of one lost mid-session (in
	// production the API's launcher: the pool first, then a cold task).
	Agents agents.Launcher
	Log    *slog.Logger
	// Metrics records what became of each request and the sessions' joins and ends (nil: none).
	Metrics *metrics.Recorder
	// MaxDuration is the configured session maximum, for sessions recorded without their own (a
	// replacement agent gets what is left of it).
	MaxDuration time.Duration
	// DedupeTTL is how long an event id is remembered (DefaultDedupeTTL when zero).
	DedupeTTL time.Duration
	// Now is the clock used when an event carries no time (time.Now when nil).
	Now func() time.Time
	// RequestIDFrom extracts the platform request id (API Gateway's); a random id when nil or empty.
	RequestIDFrom func(*http.Request) string
}

// New builds a handler that verifies signatures with the API key and secret LiveKit signs with.
func New(apiKey, apiSecret string, store Store, rooms Rooms, launcher agents.Launcher, log *slog.Logger) *Handler {
	return &Handler{
		Keys: auth.NewSimpleKeyProvider(apiKey, apiSecret), Sessions: store, Rooms: rooms, Agents: launcher, Log: log,
	}
}

// Result says what the handler did with a verified event (returned for tests and logged).
type Result string

const (
	ResultApplied   Result = "applied"
	ResultDuplicate Result = "duplicate"
	ResultIgnored   Result = "ignored"
)

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := ""
	if h.RequestIDFrom != nil {
		rid = h.RequestIDFrom(r)
	}
	if rid == "" {
		rid = uuid.NewString()
	}
	w.Header().Set("X-Request-Id", rid)
	result := metrics.WebhookRejected
	defer func() { h.Metrics.WebhookHandled(result) }()
	ctx := logging.With(r.Context(), h.Log, "request_id", rid)
	log := logging.From(ctx, h.Log)

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpapi.WriteError(w, http.StatusMethodNotAllowed, httpapi.CodeMethodNotAllowed, "method not allowed", rid)
		return
	}
	// API Gateway HTTP APIs base64-encode application/webhook+json bodies; the Lambda adapter
	// (httpadapter.NewV2) decodes them before this point, so the body hash is checked on the raw JSON.
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	ev, err := lkwebhook.ReceiveWebhookEvent(r, h.Keys)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			log.Warn("webhook rejected", "reason", "body too large")
			httpapi.WriteError(w, http.StatusRequestEntityTooLarge, httpapi.CodePayloadTooLarge, "body too large", rid)
			return
		}
		log.Warn("webhook rejected", "reason", err.Error())
		httpapi.WriteError(w, http.StatusUnauthorized, httpapi.CodeUnauthorized, "missing or invalid LiveKit signature", rid)
		return
	}
	res, err := h.Handle(ctx, ev)
	result = metrics.WebhookResult(res)
	if err != nil {
		result = metrics.WebhookFailed
		log.Error("webhook failed; LiveKit will retry", "event", ev.GetEvent(), "event_id", ev.GetId(), "error", err.Error())
		httpapi.WriteError(w, http.StatusInternalServerError, httpapi.CodeInternal, "internal error; LiveKit will retry", rid)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, `{"result":%q}`+"\n", res)
}

// Handle applies a verified event. An error means a retry may succeed: the claim on the event id has
// been released.
func (h *Handler) Handle(ctx context.Context, ev *livekit.WebhookEvent) (Result, error) {
	log := logging.From(ctx, h.Log).With("event", ev.GetEvent(), "event_id", ev.GetId())
	switch ev.GetEvent() {
	case EventRoomStarted, EventRoomFinished, EventParticipantJoined, EventParticipantLeft, EventParticipantAbort:
	default:
		log.Debug("webhook event not used")
		return ResultIgnored, nil
	}
	roomName := ev.GetRoom().GetName()
	sessionID, ours := sessions.SessionIDFromRoom(roomName)
	if !ours {
		log.Debug("webhook for a room that is not ours", "room_name", roomName)
		return ResultIgnored, nil
	}
	ctx = logging.With(ctx, h.Log, "session_id", sessionID)
	log = logging.From(ctx, h.Log).With("event", ev.GetEvent(), "event_id", ev.GetId())
	if ev.GetId() == "" {
		// LiveKit always sets an id; without one the event cannot be deduplicated, but every effect is
		// a conditional write, so applying it is still safe.
		log.Warn("webhook event without id")
	} else {
		ttl := h.DedupeTTL
		if ttl <= 0 {
			ttl = DefaultDedupeTTL
		}
		err := h.Sessions.ClaimEvent(ctx, ev.GetId(), ttl)
		if errors.Is(err, sessions.ErrDuplicateEvent) {
			log.Info("duplicate webhook event ignored")
			return ResultDuplicate, nil
		}
		if err != nil {
			return "", err
		}
	}
	actx, cancelApply := ctx, context.CancelFunc(func() {})
	if dl, ok := ctx.Deadline(); ok {
		actx, cancelApply = context.WithDeadline(ctx, dl.Add(-releaseReserve))
	}
	res, err := h.apply(actx, log, sessionID, ev)
	cancelApply()
	if err != nil && ev.GetId() != "" {
		// Forget the claim so LiveKit's retry can apply the event. Own deadline: the request may be gone.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseReserve*3/4)
		defer cancel()
		if rerr := h.Sessions.ReleaseEvent(rctx, ev.GetId()); rerr != nil {
			log.Error("releasing the event claim failed; the event will not be retried", "error", rerr.Error())
		}
	}
	return res, err
}

func (h *Handler) apply(ctx context.Context, log *slog.Logger, sessionID string, ev *livekit.WebhookEvent) (Result, error) {
	sess, err := h.Sessions.Get(ctx, sessionID)
	if errors.Is(err, sessions.ErrNotFound) {
		log.Debug("webhook for a room with no session", "room_name", ev.GetRoom().GetName())
		return ResultIgnored, nil
	}
	if err != nil {
		return "", err
	}
	log = log.With("user_id", sess.UserID)
	roomSID := ev.GetRoom().GetSid()
	// Only one room with a name exists at a time, so a room whose sid is not the recorded one is either
	// an older one (its events are stale) or one LiveKit auto-created when a student joined after the
	// session's room was gone: a ghost, handled with the student's join below.
	otherRoom := sess.RoomSID != "" && roomSID != "" && roomSID != sess.RoomSID
	if otherRoom && !(ev.GetEvent() == EventParticipantJoined && h.isStudent(ev.GetParticipant(), sess)) {
		log.Info("webhook for another room with the session's name ignored", "room_sid", roomSID, "session_room_sid", sess.RoomSID)
		return ResultIgnored, nil
	}

	switch ev.GetEvent() {
	case EventRoomStarted:
		if roomSID == "" || sess.RoomSID != "" {
			return ResultIgnored, nil
		}
		if err := h.Sessions.RecordRoomSID(ctx, sessionID, roomSID); err != nil && !errors.Is(err, sessions.ErrConflict) {
			return "", err
		}
		log.Info("room started", "room_sid", roomSID)
		return ResultApplied, nil

	case EventParticipantJoined:
		p := ev.GetParticipant()
		at := joinTime(p, ev, h.now)
		switch {
		case rooms.IsAgent(p):
			if err := h.Sessions.RecordAgentJoin(ctx, sessionID, at); err != nil {
				return "", err
			}
			if sess.AgentJoinedAt.IsZero() { // the session's first agent (the avatar joins later)
				h.Metrics.AgentJoined(sess, metrics.SourceOf(sess.AgentSource), at)
			}
			log.Info("agent joined", "identity", p.GetIdentity(), "joined_at", at, "time_to_agent_ms", msSince(sess.CreatedAt, at),
				"replacement", h.isSessionAgent(p, sess) && sess.Replaced())
		case h.isStudent(p, sess):
			if !otherRoom { // a ghost room's join time is no fact about the session
				if err := h.Sessions.RecordStudentJoin(ctx, sessionID, at); err != nil {
					return "", err
				}
				if sess.StudentJoinedAt.IsZero() {
					h.Metrics.StudentJoined(sess, at)
				}
				log.Info("student joined", "joined_at", at, "participant_sid", p.GetSid())
			}
			if otherRoom || sess.Status.Terminal() {
				return h.deleteStrayRoom(ctx, log, sess, roomSID)
			}
			if !sess.StudentJoinedAt.IsZero() && !sess.AgentJoinedAt.IsZero() && !sess.Replaced() && sess.Status.Open() {
				// A return: the agent may have died while the student was away (that departure was
				// left alone, agentloss.go); then this join starts its replacement.
				return h.studentReturned(ctx, log, sess, at)
			}
		default:
			log.Warn("unexpected participant joined", "identity", p.GetIdentity())
			return ResultIgnored, nil
		}
		return ResultApplied, nil

	case EventParticipantLeft, EventParticipantAbort:
		// A departure never ends the session here (docs/architecture.md, "Leaving and coming back"). A
		// reload, a network switch or a second tab replaces the student's connection: LiveKit removes the
		// old participant with DUPLICATE_IDENTITY while the new one is joining. Any other departure may
		// be followed by a return (a reload's old connection leaves CLIENT_INITIATED before the new one
		// joins; a lost network ends in a timeout, then the client joins again): the agents are
		// dependent participants, so LiveKit closes the room DepartureTimeout after the student left
		// unless they came back, and its room_finished ends the session. Hanging up calls /end.
		p := ev.GetParticipant()
		log = log.With("identity", p.GetIdentity(), "participant_sid", p.GetSid(), "disconnect_reason", p.GetDisconnectReason().String(), "how", ev.GetEvent())
		switch {
		case h.isSessionAgent(p, sess):
			return h.agentLeft(ctx, log, sess, p, eventTime(ev, h.now))
		case !h.isStudent(p, sess):
			log.Info("participant left", "agent", rooms.IsAgent(p))
		case !sess.Status.Open():
			log.Info("student left a closed session")
		case p.GetDisconnectReason() == livekit.DisconnectReason_DUPLICATE_IDENTITY:
			log.Info("student's connection replaced by a newer one; session continues")
		default:
			log.Info("student left; the room closes after the departure timeout unless they return",
				"departure_timeout_seconds", int(rooms.DepartureTimeout/time.Second))
		}
		return ResultIgnored, nil

	case EventRoomFinished:
		at := eventTime(ev, h.now)
		reason := "room finished"
		ended, err := h.Sessions.End(ctx, sessionID, sessions.Ending{Status: sessions.StatusEnded, At: at, Reason: reason})
		switch {
		case err == nil:
			log.Info("session ended", "ended_at", ended.EndedAt, "duration_seconds", ended.DurationSeconds, "end_reason", reason)
			h.Metrics.SessionClosed(ended, metrics.ReasonRoomFinished)
		case errors.Is(err, sessions.ErrConflict):
			log.Info("room finished for a session already closed", "status", ended.Status)
		default:
			return "", err
		}
		// Stop the task even when the session was already closed: whoever closed it may have failed
		// to stop it, and stopping a stopped task is fine.
		if sess.AgentTaskID != "" {
			sctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
			defer cancel()
			if err := h.Agents.Stop(sctx, sess.AgentTaskID, "session "+sessionID+": "+reason); err != nil {
				return "", err
			}
			log.Info("agent task stopped", "agent_task_id", sess.AgentTaskID)
		}
		return ResultApplied, nil
	}
	return ResultIgnored, nil
}

// isStudent tells the session's student from the agent, the avatar and anyone else.
func (h *Handler) isStudent(p *livekit.ParticipantInfo, sess sessions.Session) bool {
	return p != nil && !rooms.IsAgent(p) && p.GetIdentity() == sess.UserID
}

// isSessionAgent tells the session's agent (not the avatar, which is an agent-kind participant too).
func (h *Handler) isSessionAgent(p *livekit.ParticipantInfo, sess sessions.Session) bool {
	return p != nil && rooms.IsAgent(p) && p.GetIdentity() == rooms.AgentIdentity(sess.SessionID)
}

// deleteStrayRoom deletes a room the student sits in although the session owns no room there: the
// session is closed, or its recorded room is gone and LiveKit auto-created this one on the student's
// join (with a token from before the end). Nothing else would close it while the student waits alone.
// Deleting goes by name, and a name has one room at a time, so this deletes only that room.
func (h *Handler) deleteStrayRoom(ctx context.Context, log *slog.Logger, sess sessions.Session, roomSID string) (Result, error) {
	dctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	if err := h.Rooms.DeleteRoom(dctx, sess.RoomName); err != nil {
		return "", err
	}
	log.Info("student joined a room the session does not own; room deleted",
		"room_name", sess.RoomName, "room_sid", roomSID, "session_room_sid", sess.RoomSID, "status", sess.Status)
	return ResultApplied, nil
}

// joinTime is when the participant joined: LiveKit's own timestamp, so replays give the same record.
func joinTime(p *livekit.ParticipantInfo, ev *livekit.WebhookEvent, now func() time.Time) time.Time {
	if ms := p.GetJoinedAtMs(); ms > 0 {
		return time.UnixMilli(ms).UTC()
	}
	if s := p.GetJoinedAt(); s > 0 {
		return time.Unix(s, 0).UTC()
	}
	return eventTime(ev, now)
}

func eventTime(ev *livekit.WebhookEvent, now func() time.Time) time.Time {
	if s := ev.GetCreatedAt(); s > 0 {
		return time.Unix(s, 0).UTC()
	}
	return now().UTC()
}

func msSince(from, to time.Time) int64 {
	if from.IsZero() {
		return 0
	}
	return to.Sub(from).Milliseconds()
}
