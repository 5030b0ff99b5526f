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
	"counselvideo/shared/rooms"
	"counselvideo/shared/sessions"
)

// ErrSessionNotFound is returned for sessions that do not exist or belong to someone else.
var ErrSessionNotFound = errors.New("session not found")

// TokenMinter signs a student's LiveKit token.
type TokenMinter func(room, identity, name string, ttl time.Duration) (string, error)

type Service struct {
	Categories categories.Store
	Sessions   sessions.Store
	Rooms      rooms.Service
	Agents     agents.Launcher
	MintToken  TokenMinter
	// PublicURL is what the browser connects to.
	PublicURL string
	TokenTTL  time.Duration
	// LockTTL bounds how long a crashed setup can block a student's next session.
	LockTTL time.Duration
	Log     *slog.Logger
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
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// CreateRoom starts a session for the student, or returns their open one with a fresh token.
func (s *Service) CreateRoom(ctx context.Context, student auth.Student, categoryID string) (Created, error) {
	cat, err := s.Categories.GetEnabled(ctx, categoryID)
	if err != nil {
		return Created{}, err
	}
	newID := s.NewID
	if newID == nil {
		newID = uuid.NewString
	}
	now := s.now().UTC()
	sess := sessions.Session{
		SessionID: newID(), UserID: student.ID, CategoryID: cat.ID, CategoryName: cat.Name,
		Mode: sessions.ModeVideo, Status: sessions.StatusStarting, CreatedAt: now,
	}
	sess.RoomName = sessions.RoomName(sess.SessionID)

	err = s.Sessions.Create(ctx, sess, s.LockTTL)
	var active *sessions.ActiveSessionError
	if errors.As(err, &active) {
		return s.resume(ctx, student, active.SessionID)
	}
	if err != nil {
		return Created{}, err
	}
	ctx = logging.With(ctx, s.Log, "session_id", sess.SessionID)
	log := logging.From(ctx, s.Log)

	token, expires, err := s.token(sess.RoomName, student)
	if err != nil {
		return Created{}, s.fail(ctx, sess, "", "token signing failed", err)
	}
	roomSID, err := s.Rooms.CreateRoom(ctx, sess.RoomName, rooms.Metadata{SessionID: sess.SessionID, CategoryID: cat.ID})
	if err != nil {
		return Created{}, s.fail(ctx, sess, "", "room creation failed", err)
	}
	taskID, err := s.Agents.Launch(ctx, agents.Session{SessionID: sess.SessionID, RoomName: sess.RoomName, CategoryID: cat.ID})
	if err != nil {
		return Created{}, s.fail(ctx, sess, "", "agent launch failed", err)
	}
	if err := s.Sessions.MarkStarted(ctx, sess.SessionID, roomSID, taskID, s.now().UTC()); err != nil {
		return Created{}, s.fail(ctx, sess, taskID, "session update failed", err)
	}
	log.Info("session started", "room_name", sess.RoomName, "room_sid", roomSID, "agent_task_id", taskID, "category_id", cat.ID)
	return Created{
		RoomURL: s.PublicURL, AccessToken: token, RoomName: sess.RoomName, SessionID: sess.SessionID,
		Status: string(sessions.StatusStarting), ExpiresAt: expires,
	}, nil
}

func (s *Service) resume(ctx context.Context, student auth.Student, sessionID string) (Created, error) {
	sess, err := s.Sessions.Get(ctx, sessionID)
	if err != nil {
		return Created{}, fmt.Errorf("read open session: %w", err)
	}
	token, expires, err := s.token(sess.RoomName, student)
	if err != nil {
		return Created{}, err
	}
	logging.From(ctx, s.Log).Info("returning open session", "session_id", sess.SessionID, "status", sess.Status)
	return Created{
		RoomURL: s.PublicURL, AccessToken: token, RoomName: sess.RoomName, SessionID: sess.SessionID,
		Status: string(sess.Status), ExpiresAt: expires, Resumed: true,
	}, nil
}

func (s *Service) token(room string, student auth.Student) (string, time.Time, error) {
	expires := s.now().Add(s.TokenTTL).UTC().Truncate(time.Second)
	tok, err := s.MintToken(room, student.ID, student.Name, s.TokenTTL)
	return tok, expires, err
}

// fail undoes a half-started session: stop the agent, delete the room, record the failure. It uses its
// own deadline so a canceled request still cleans up. The returned error is the original cause.
func (s *Service) fail(ctx context.Context, sess sessions.Session, taskID, reason string, cause error) error {
	log := logging.From(ctx, s.Log)
	log.Error("session setup failed", "reason", reason, "error", cause.Error())
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if taskID != "" {
		if err := s.Agents.Stop(cctx, taskID, "session setup failed: "+reason); err != nil {
			log.Error("cleanup: stop agent failed", "agent_task_id", taskID, "error", err.Error())
		}
	}
	if err := s.Rooms.DeleteRoom(cctx, sess.RoomName); err != nil {
		log.Error("cleanup: delete room failed", "room_name", sess.RoomName, "error", err.Error())
	}
	if _, err := s.Sessions.End(cctx, sess.SessionID, sessions.Ending{Status: sessions.StatusFailed, At: s.now().UTC(), Reason: reason}); err != nil {
		log.Error("cleanup: mark session failed", "error", err.Error())
	}
	return fmt.Errorf("%s: %w", reason, cause)
}

// Session returns the student's own session.
func (s *Service) Session(ctx context.Context, student auth.Student, sessionID string) (sessions.Session, error) {
	if _, err := uuid.Parse(sessionID); err != nil {
		return sessions.Session{}, ErrSessionNotFound
	}
	sess, err := s.Sessions.Get(ctx, sessionID)
	if errors.Is(err, sessions.ErrNotFound) || (err == nil && sess.UserID != student.ID) {
		return sessions.Session{}, ErrSessionNotFound
	}
	return sess, err
}

// EndSession deletes the session's room; the webhook (or the sweeper) records the end. Ending an
// already closed session is a no-op.
func (s *Service) EndSession(ctx context.Context, student auth.Student, sessionID string) (sessions.Session, error) {
	sess, err := s.Session(ctx, student, sessionID)
	if err != nil {
		return sess, err
	}
	if sess.Status.Open() {
		if err := s.Rooms.DeleteRoom(ctx, sess.RoomName); err != nil {
			return sess, err
		}
		logging.From(ctx, s.Log).Info("session end requested", "session_id", sess.SessionID)
	}
	return sess, nil
}

// ListCategories returns the categories a student can choose.
func (s *Service) ListCategories(ctx context.Context) ([]categories.Category, error) {
	return s.Categories.ListEnabled(ctx)
}
