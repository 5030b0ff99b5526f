// Package service is the domain layer of the API: starting a counseling session (room, token, record,
// agent), reading it and ending it. HTTP handling lives in httpapi; AWS and LiveKit behind interfaces.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"counselvideo/shared/agents"
	"counselvideo/shared/auth"
	"counselvideo/shared/categories"
	"counselvideo/shared/logging"
	"counselvideo/shared/metrics"
	"counselvideo/shared/rooms"
	"counselvideo/shared/sessions"
)

// Errors the HTTP layer maps to answers.
var (
	// ErrSessionNotFound is returned for sessions that do not exist or belong to someone else.
	ErrSessionNotFound = errors.New("session not found")
	// ErrSessionClosed: the session was closed (ended by the student) while this request was still
	// setting it up; its room and agent were undone.
	ErrSessionClosed = errors.New("session closed during setup")
)

// Reasons written to end_reason by the API.
const (
	ReasonEndedByStudent = "ended by student"
	ReasonRoomGone       = "room gone before the session was resumed (closed by create-room)"
)

// Time budget of one API request. The API Lambda's timeout (template.yaml, ApiFunction Timeout) must
// hold the worst case, TimeBudget(): waiting for the Cognito keys, the whole setup, a launcher's own
// cleanup after a failed launch, and undoing a failed setup, plus a margin. The template check fails
// when it does not (infra/templatecheck CheckTimeBudget). Every outbound call runs under one of these
// deadlines; the clients' own per-call deadlines (rooms, agents) are shorter.
const (
	// RequestTimeout bounds everything a request does before it answers (create-room's setup, a read,
	// an end).
	RequestTimeout = 6 * time.Second
	// CleanupTimeout bounds undoing a failed setup: stop the agent, delete the room, record the failure.
	// It runs on its own context, so a canceled request still cleans up.
	CleanupTimeout = 3 * time.Second
	// BudgetMargin is left for the runtime, the API Gateway adapter and writing the answer.
	BudgetMargin = 2 * time.Second
)

// TimeBudget is the longest one API request can take. With the warm pool on, create-room may also
// wait for a worker's agent and take back a dispatch no worker took before the cold launch (PoolWait).
func TimeBudget() time.Duration {
	return auth.KeyWaitMax + RequestTimeout + MaxPoolWait + agents.LaunchCleanupTimeout + CleanupTimeout + BudgetMargin
}

// MaxPoolWait is the longest PoolWait: the pool's longest join wait and the dispatch's deletion.
const MaxPoolWait = agents.PoolJoinTimeoutMax + agents.DispatchDeleteTimeout

// TokenMinter signs a student's LiveKit token.
type TokenMinter func(room, identity, name string, ttl time.Duration) (string, error)

type Service struct {
	// Categories is read on every create-room; production wraps the table in categories.Cached.
	Categories categories.Store
	Sessions   sessions.Store
	Rooms      rooms.Service
	Agents     agents.Launcher
	// PoolWait is added to create-room's deadline when Agents is a warm pool (agents.Pool): its wait
	// for a worker's agent plus taking back the dispatch before the cold launch (at most MaxPoolWait).
	PoolWait  time.Duration
	MintToken TokenMinter
	// PublicURL is what the browser connects to.
	PublicURL string
	// TokenTTL is how long the student's token can be used to join (LiveKit refreshes the token of a
	// connected participant itself, see README).
	TokenTTL time.Duration
	// LockTTL bounds how long a crashed setup can block a student's next session.
	LockTTL time.Duration
	// MaxDuration is a session's maximum before the student's daily minutes cut it.
	MaxDuration time.Duration
	// Limits are the cost guards checked with the session's birth (sessions.Limits; 0 = unlimited).
	Limits sessions.Limits
	Log    *slog.Logger
	// Metrics records the sessions' lifecycle (nil: none).
	Metrics *metrics.Recorder
	Now     func() time.Time
	// NewID makes session ids (uuid.NewString in production).
	NewID func() string
}

// Created is what create-room answers.
type Created struct {
	RoomURL     string    `json:"room_url"`
	AccessToken string    `json:"access_token"`
	RoomName    string    `json:"room_name"`
	SessionID   string    `json:"session_id"`
	Status      string    `json:"status"`
	ExpiresAt   time.Time `json:"token_expires_at"`
	// Resumed is true when the student already had an open session and gets a fresh token for it.
	Resumed bool `json:"resumed"`
	// MaxDurationSeconds is how long the session may last (the daily minutes left may cut it).
	MaxDurationSeconds int64 `json:"max_duration_seconds"`
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// errSessionGone: the open session a create-room found was ending (its room is gone); it is closed
// now and create-room starts a new one.
var errSessionGone = errors.New("open session's room is gone")

// maxCreateAttempts bounds create-room's start-or-resume loop: a second attempt follows closing a
// dying session; a third covers a concurrent request that started one meanwhile.
const maxCreateAttempts = 3

// CreateRoom starts a session for the student, or returns their open one with a fresh token. A session
// whose room is already gone (it is ending) is never resumed: it is closed and a new one starts.
func (s *Service) CreateRoom(ctx context.Context, student auth.Student, categoryID string) (created Created, err error) {
	began := time.Now()
	defer func() { s.Metrics.CreateRoomAnswered(metrics.OutcomeOf(created.Resumed, err), time.Since(began)) }()
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout+min(s.PoolWait, MaxPoolWait))
	defer cancel()
	cat, err := s.Categories.GetEnabled(ctx, categoryID)
	if err != nil {
		return Created{}, err
	}
	for attempt := 1; ; attempt++ {
		created, err := s.start(ctx, student, cat)
		var active *sessions.ActiveSessionError
		if !errors.As(err, &active) {
			return created, err
		}
		created, err = s.resume(ctx, student, active.SessionID)
		if !errors.Is(err, errSessionGone) || attempt == maxCreateAttempts {
			return created, err
		}
	}
}

// start writes a new session and sets it up: record and room, then the agent, then the record of
// both. It returns *sessions.ActiveSessionError when the student already has an open session, and the
// store's refusals under the limits (*sessions.StudentLimitError, *sessions.CapacityError) as they are.
func (s *Service) start(ctx context.Context, student auth.Student, cat categories.Category) (Created, error) {
	newID := s.NewID
	if newID == nil {
		newID = uuid.NewString
	}
	sess := sessions.Session{
		SessionID: newID(), UserID: student.ID, CategoryID: cat.ID, CategoryName: cat.Name,
		Mode: sessions.ModeVideo, Status: sessions.StatusStarting, CreatedAt: s.now().UTC(),
		AgentSource: agents.FirstSource(s.Agents),
	}
	sess.RoomName = sessions.RoomName(sess.SessionID)
	// Signing is local and needs only the room name: done first, a failure leaves nothing behind.
	token, expires, err := s.token(sess.RoomName, student)
	if err != nil {
		return Created{}, fmt.Errorf("token signing failed: %w", err)
	}

	// The record and the room do not depend on each other: one round trip for both. A room made for
	// a record that could not be written (the student has an open session, DynamoDB failed) is
	// deleted again; nobody holds a token for it.
	var roomSID string
	var roomErr error
	roomDone := make(chan struct{})
	go func() {
		defer close(roomDone)
		roomSID, roomErr = s.Rooms.CreateRoom(ctx, sess.RoomName, rooms.Metadata{SessionID: sess.SessionID, CategoryID: cat.ID})
	}()
	created, createErr := s.Sessions.Create(ctx, sess, sessions.Admission{LockTTL: s.LockTTL, MaxDuration: s.MaxDuration, Limits: s.Limits})
	<-roomDone
	if createErr != nil {
		if roomErr == nil {
			s.deleteUnusedRoom(ctx, sess.RoomName)
		}
		return Created{}, createErr
	}
	sess = created
	s.Metrics.SessionCreated(sess.SessionID)
	ctx = logging.With(ctx, s.Log, "session_id", sess.SessionID)
	if roomErr != nil {
		return Created{}, s.fail(ctx, sess, "", "room creation failed", metrics.ReasonRoomCreationFailed, roomErr)
	}
	taskID, err := s.Agents.Launch(ctx, agents.Session{SessionID: sess.SessionID, RoomName: sess.RoomName, CategoryID: cat.ID, MaxDuration: sess.MaxDuration()})
	if err != nil {
		return Created{}, s.fail(ctx, sess, "", "agent launch failed", metrics.ReasonAgentLaunchFailed, err)
	}
	// MarkStarted accepts an active session (the student joined through a second create-room's
	// answer); it refuses a closed one (the student ended it meanwhile): then only undo.
	source := agents.SourceOf(taskID)
	err = s.Sessions.MarkStarted(ctx, sess.SessionID, sessions.Started{RoomSID: roomSID, AgentTaskID: taskID, AgentSource: source, At: s.now().UTC()})
	if errors.Is(err, sessions.ErrConflict) {
		return Created{}, s.abandon(ctx, sess, taskID)
	}
	if err != nil {
		return Created{}, s.fail(ctx, sess, taskID, "session update failed", metrics.ReasonSessionUpdateFailed, err)
	}
	logging.From(ctx, s.Log).Info("session started", "room_name", sess.RoomName, "room_sid", roomSID, "agent_task_id", taskID,
		"agent_source", source, "category_id", cat.ID, "max_duration_seconds", sess.MaxDurationSeconds)
	return Created{
		RoomURL: s.PublicURL, AccessToken: token, RoomName: sess.RoomName, SessionID: sess.SessionID,
		Status: string(sessions.StatusStarting), ExpiresAt: expires, MaxDurationSeconds: sess.MaxDurationSeconds,
	}, nil
}

// resume answers with the student's open session. A session whose setup finished but whose room is
// gone is ending (room_finished is on its way, or was lost): it is closed here and errSessionGone
// tells CreateRoom to start a new one, so the student never gets a token for a room that no longer
// exists (joining it would make LiveKit create an empty room).
func (s *Service) resume(ctx context.Context, student auth.Student, sessionID string) (Created, error) {
	log := logging.From(ctx, s.Log).With("session_id", sessionID)
	sess, err := s.Sessions.Get(ctx, sessionID)
	if err != nil {
		return Created{}, fmt.Errorf("read open session: %w", err)
	}
	if !sess.Status.Open() {
		return Created{}, errSessionGone // closed since Create saw its lock
	}
	if !sess.StartedAt.IsZero() { // its setup made the room; a setup still running is left alone
		exists, err := s.Rooms.RoomExists(ctx, sess.RoomName)
		if err != nil {
			return Created{}, fmt.Errorf("check open session's room: %w", err)
		}
		if !exists {
			s.closeGone(ctx, log, sess)
			return Created{}, errSessionGone
		}
	}
	token, expires, err := s.token(sess.RoomName, student)
	if err != nil {
		return Created{}, fmt.Errorf("token signing failed: %w", err)
	}
	log.Info("returning open session", "status", sess.Status)
	s.Metrics.SessionResumed(sess.SessionID)
	return Created{
		RoomURL: s.PublicURL, AccessToken: token, RoomName: sess.RoomName, SessionID: sess.SessionID,
		Status: string(sess.Status), ExpiresAt: expires, Resumed: true, MaxDurationSeconds: s.maxDurationOf(sess),
	}, nil
}

// closeGone ends an open session whose room is gone and stops its agent (its room_finished webhook
// would, but it may have been lost, and the sweeper only looks at open sessions).
func (s *Service) closeGone(ctx context.Context, log *slog.Logger, sess sessions.Session) {
	ended, err := s.Sessions.End(ctx, sess.SessionID, sessions.Ending{Status: sessions.StatusEnded, At: s.now().UTC(), Reason: ReasonRoomGone})
	switch {
	case errors.Is(err, sessions.ErrConflict):
		log.Info("open session closed meanwhile")
		return
	case err != nil:
		log.Error("closing a session whose room is gone failed", "error", err.Error())
		return
	}
	log.Info("session closed: its room is gone", "end_reason", ReasonRoomGone)
	s.Metrics.SessionClosed(ended, metrics.ReasonRoomGoneOnResume)
	if sess.AgentTaskID == "" {
		return
	}
	if err := s.Agents.Stop(ctx, sess.AgentTaskID, "session "+sess.SessionID+": "+ReasonRoomGone); err != nil {
		log.Error("stop agent of a closed session failed", "agent_task_id", sess.AgentTaskID, "error", err.Error())
	}
}

// maxDurationOf is a session's own maximum; one recorded before sessions had their own has the
// configured one (what the sweeper applies to it).
func (s *Service) maxDurationOf(sess sessions.Session) int64 {
	if sess.MaxDurationSeconds > 0 {
		return sess.MaxDurationSeconds
	}
	return int64(s.MaxDuration / time.Second)
}

func (s *Service) token(room string, student auth.Student) (string, time.Time, error) {
	expires := s.now().Add(s.TokenTTL).UTC().Truncate(time.Second)
	tok, err := s.MintToken(room, student.ID, student.Name, s.TokenTTL)
	return tok, expires, err
}

// cleanupContext is a fresh CleanupTimeout context: undoing must not depend on the request's.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), CleanupTimeout)
}

// deleteUnusedRoom deletes a room created for a session record that was never written. It stays
// within the request's deadline (the request goes on to resume): a room it cannot delete has no
// token holder and LiveKit closes it after its empty timeout.
func (s *Service) deleteUnusedRoom(ctx context.Context, room string) {
	if err := s.Rooms.DeleteRoom(ctx, room); err != nil {
		// Nobody holds a token for it; LiveKit closes it after its empty timeout.
		logging.From(ctx, s.Log).Warn("deleting an unused room failed", "room_name", room, "error", err.Error())
	}
}

// undo stops the agent and deletes the room of a half-started session.
func (s *Service) undo(ctx context.Context, sess sessions.Session, taskID, reason string) {
	log := logging.From(ctx, s.Log)
	if taskID != "" {
		if err := s.Agents.Stop(ctx, taskID, "session setup undone: "+reason); err != nil {
			log.Error("cleanup: stop agent failed", "agent_task_id", taskID, "error", err.Error())
		}
	}
	if err := s.Rooms.DeleteRoom(ctx, sess.RoomName); err != nil {
		log.Error("cleanup: delete room failed", "room_name", sess.RoomName, "error", err.Error())
	}
}

// fail undoes a half-started session and records the failure (reason in the record, code in the
// metrics). The returned error is the cause.
func (s *Service) fail(ctx context.Context, sess sessions.Session, taskID, reason string, code metrics.Reason, cause error) error {
	log := logging.From(ctx, s.Log)
	log.Error("session setup failed", "reason", reason, "error", cause.Error())
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	s.undo(cctx, sess, taskID, reason)
	failed, err := s.Sessions.End(cctx, sess.SessionID, sessions.Ending{Status: sessions.StatusFailed, At: s.now().UTC(), Reason: reason})
	switch {
	case err == nil:
		s.Metrics.SessionClosed(failed, code)
	case errors.Is(err, sessions.ErrConflict):
		log.Info("cleanup: session was closed meanwhile")
	default:
		log.Error("cleanup: mark session failed", "error", err.Error())
	}
	return fmt.Errorf("%s: %w", reason, cause)
}

// abandon undoes the room and agent of a session that was closed while it was being set up (the
// student ended it through a second create-room's answer). The record stays as its closer wrote it.
func (s *Service) abandon(ctx context.Context, sess sessions.Session, taskID string) error {
	logging.From(ctx, s.Log).Info("session closed during setup; undoing its room and agent", "agent_task_id", taskID)
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	s.undo(cctx, sess, taskID, "session closed during setup")
	return ErrSessionClosed
}

// Session returns the student's own session.
func (s *Service) Session(ctx context.Context, student auth.Student, sessionID string) (sessions.Session, error) {
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	return s.ownSession(ctx, student, sessionID)
}

func (s *Service) ownSession(ctx context.Context, student auth.Student, sessionID string) (sessions.Session, error) {
	if _, err := uuid.Parse(sessionID); err != nil {
		return sessions.Session{}, ErrSessionNotFound
	}
	sess, err := s.Sessions.Get(ctx, sessionID)
	if errors.Is(err, sessions.ErrNotFound) || (err == nil && sess.UserID != student.ID) {
		return sessions.Session{}, ErrSessionNotFound
	}
	return sess, err
}

// EndSession records the end first (which releases the student's lock, so a create-room right after
// starts a new session instead of resuming this one), then deletes the room and stops the agent. The
// room_finished webhook that follows finds the session closed. Ending a closed session deletes its
// room again (an earlier end may have failed to) and changes nothing else.
func (s *Service) EndSession(ctx context.Context, student auth.Student, sessionID string) (sessions.Session, error) {
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	sess, err := s.ownSession(ctx, student, sessionID)
	if err != nil {
		return sess, err
	}
	log := logging.From(ctx, s.Log).With("session_id", sess.SessionID)
	closedNow := false
	if sess.Status.Open() {
		ended, err := s.Sessions.End(ctx, sess.SessionID, sessions.Ending{Status: sessions.StatusEnded, At: s.now().UTC(), Reason: ReasonEndedByStudent})
		switch {
		case err == nil:
			sess, closedNow = ended, true
			log.Info("session ended by student", "duration_seconds", ended.DurationSeconds)
			s.Metrics.SessionClosed(ended, metrics.ReasonEndedByStudent)
		case errors.Is(err, sessions.ErrConflict):
			sess = ended // closed meanwhile: End returns it as it is
		default:
			return sess, err
		}
	}
	if err := s.Rooms.DeleteRoom(ctx, sess.RoomName); err != nil {
		return sess, err
	}
	if closedNow && sess.AgentTaskID != "" {
		// room_finished stops it too; this covers a lost webhook (the sweeper skips closed sessions).
		if err := s.Agents.Stop(ctx, sess.AgentTaskID, "session "+sess.SessionID+": "+ReasonEndedByStudent); err != nil {
			log.Error("stop agent after end failed; room_finished will retry", "agent_task_id", sess.AgentTaskID, "error", err.Error())
		}
	}
	return sess, nil
}

// ListCategories returns the categories a student can choose.
func (s *Service) ListCategories(ctx context.Context) ([]categories.Category, error) {
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	return s.Categories.ListEnabled(ctx)
}
