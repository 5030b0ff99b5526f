// Package sweeper closes sessions that LiveKit's webhooks left open: LiveKit may drop events, so on a
// schedule the sweeper looks at open sessions past their limits, asks LiveKit whether the room still
// exists and who is in it, and closes what is over (room deleted, agent task stopped, session ended).
package sweeper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"counselvideo/shared/agents"
	"counselvideo/shared/logging"
	"counselvideo/shared/metrics"
	"counselvideo/shared/rooms"
	"counselvideo/shared/sessions"
)

// Defaults.
const (
	// DefaultMinAge leaves sessions alone while the API may still be setting up their room.
	DefaultMinAge = time.Minute
	// DefaultConcurrency is how many sessions are checked at once. A check is two LiveKit calls (one
	// more, a DynamoDB write and an ECS StopTask for a session that is over): at 100 ms a call, 16
	// workers check 1,000 open sessions in about 13 s, well inside one run (bench/results/sweeper.md),
	// while LiveKit's server API and ECS see a modest, steady rate instead of a burst.
	DefaultConcurrency = 16
	// DefaultPageSize is how many open sessions one query reads.
	DefaultPageSize = 100
	// DefaultStopMargin: no session is started this long before the run's deadline (the Lambda's).
	// Checks in flight finish within it: each LiveKit call is bounded to 5 s, an ECS call to 10 s.
	DefaultStopMargin = 10 * time.Second
	// maxFailuresReported bounds the failures listed in a report (all are counted and logged).
	maxFailuresReported = 20
	// GoodbyeGrace is how long past a session's maximum the sweeper waits before it ends the session
	// itself. The agent ends it at that maximum, counted from its own join: it says a goodbye (waiting
	// up to 10 s for it, agentimage GOODBYE_MAX_WAIT_MS), closes the conversation (up to 10 s) and
	// deletes the room. The sweeper's cut is for an agent that did not, and must never come first.
	GoodbyeGrace = 30 * time.Second
	// StuckAfter: an open session this long past the moment the sweeper ends it for its length
	// (lengthDeadline) is stuck (SessionsStuckOpen). Every run (each minute) closes sessions over
	// their limit, so one still open this late was not closed by several runs in a row.
	StuckAfter = 5 * time.Minute
)

// Store is the part of the session store the sweeper uses.
type Store interface {
	// ListOpenPage lists open sessions created before createdBefore, oldest first, after a cursor.
	ListOpenPage(ctx context.Context, createdBefore time.Time, after sessions.SweepCursor, limit int32) (page []sessions.Session, more bool, err error)
	// LoadSweepCursor and SaveSweepCursor keep where a run stopped (zero: at the end of the list).
	LoadSweepCursor(ctx context.Context) (sessions.SweepCursor, error)
	SaveSweepCursor(ctx context.Context, c sessions.SweepCursor) error
	// Get reads one session (consistently: the list comes from an index that may lag).
	Get(ctx context.Context, sessionID string) (sessions.Session, error)
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
	// Metrics records each run and each session it closes (nil: none).
	Metrics *metrics.Recorder
	// MaxDuration ends sessions that ran longer, for sessions recorded without their own maximum
	// (see lengthDeadline).
	MaxDuration time.Duration
	// SafetyGrace is how much longer a session flagged for a safety concern may run (the agent
	// extends its own limit by the same grace, once): the cut must not fall mid-crisis.
	SafetyGrace time.Duration
	// AgentJoinTimeout fails sessions whose agent has not joined this long after creation.
	AgentJoinTimeout time.Duration
	// MinAge: younger sessions are not examined (DefaultMinAge when zero; negative means none).
	MinAge time.Duration
	// MaxPerRun bounds the sessions one run examines (0: no bound but the deadline); the next run
	// resumes after the last one.
	MaxPerRun int
	// Concurrency, PageSize and StopMargin: DefaultConcurrency, DefaultPageSize and
	// DefaultStopMargin when zero.
	Concurrency int
	PageSize    int32
	StopMargin  time.Duration
	Now         func() time.Time
}

// Closed is one session the run closed.
type Closed struct {
	SessionID string          `json:"session_id"`
	Status    sessions.Status `json:"status"`
	Reason    string          `json:"end_reason"`
}

// Failure is one session the run could not check or clean up; the next pass over it tries again.
type Failure struct {
	SessionID string `json:"session_id,omitempty"` // empty for a failure that concerns no one session
	Error     string `json:"error"`
}

// Report summarises a run.
type Report struct {
	// Examined counts the sessions checked, Closed lists those closed (in list order).
	Examined int      `json:"examined"`
	Closed   []Closed `json:"closed"`
	// Errors counts every failure; Failures lists the first maxFailuresReported of them.
	Errors   int       `json:"errors"`
	Failures []Failure `json:"failures"`
	// Stuck counts the sessions examined that were open StuckAfter past their length deadline.
	Stuck int `json:"stuck"`
	// Resumed: the run started where an earlier one stopped. Complete: it reached the end of the
	// open sessions (the next run starts from the oldest again); otherwise Cursor is where the next
	// run resumes.
	Resumed  bool                 `json:"resumed"`
	Complete bool                 `json:"complete"`
	Cursor   sessions.SweepCursor `json:"cursor,omitzero"`
}

func (r *Report) fail(sessionID string, err error) {
	r.Errors++
	if len(r.Failures) < maxFailuresReported {
		r.Failures = append(r.Failures, Failure{SessionID: sessionID, Error: err.Error()})
	}
}

// Reasons written to end_reason.
const (
	ReasonRoomGone = "room closed without a room_finished webhook (closed by sweeper)"
)

func ReasonMaxDuration(d time.Duration) string {
	return fmt.Sprintf("maximum session duration of %s reached (closed by sweeper)", d)
}
func ReasonMaxDurationFlagged(d, grace time.Duration) string {
	return fmt.Sprintf("maximum session duration of %s and safety grace of %s reached (closed by sweeper)", d, grace)
}
func ReasonAgentTimeout(d time.Duration) string {
	return fmt.Sprintf("agent did not join within %s (closed by sweeper)", d)
}

// ReasonReplacementTimeout: the replacement the webhook started for an agent lost mid-session is not
// in the room AgentJoinTimeout after the loss.
func ReasonReplacementTimeout(d time.Duration) string {
	return fmt.Sprintf("agent lost; its replacement was not in the room within %s (closed by sweeper)", d)
}

func (s *Sweeper) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func orDefault[T int | int32 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// budget derives, from ctx's deadline (the Lambda's), a context that ends when no new session may be
// started and one that bounds the checks in flight, leaving time to save the cursor and answer.
func (s *Sweeper) budget(ctx context.Context) (start, work context.Context, cancel func()) {
	dl, ok := ctx.Deadline()
	if !ok {
		return ctx, ctx, func() {}
	}
	margin := orDefault(s.StopMargin, DefaultStopMargin)
	work, cancelWork := context.WithDeadline(ctx, dl.Add(-min(2*time.Second, margin/4)))
	start, cancelStart := context.WithDeadline(work, dl.Add(-margin))
	return start, work, func() { cancelStart(); cancelWork() }
}

// Run examines open sessions, oldest first, from where the last run stopped, with Concurrency
// checks at a time, until the list ends or the deadline nears; it then saves where the next run
// starts. A session that cannot be checked or cleaned up is counted and listed in the report, not
// returned as an error: a failed invocation is retried by the scheduler and would overlap the next
// run. The error is for a run that could examine nothing because the session store failed.
func (s *Sweeper) Run(ctx context.Context) (Report, error) {
	began := time.Now()
	now := s.now().UTC()
	log := logging.From(ctx, s.Log)
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
	startCtx, workCtx, cancel := s.budget(ctx)
	defer cancel()

	rep := Report{Closed: []Closed{}, Failures: []Failure{}}
	from, err := s.Sessions.LoadSweepCursor(workCtx)
	if err != nil {
		log.Error("reading the sweep cursor failed; starting from the oldest session", "error", err.Error())
		rep.fail("", err)
	}
	rep.Resumed = !from.IsZero()

	type job struct {
		seq  int
		sess sessions.Session
	}
	type outcome struct {
		seq    int
		closed *Closed
	}
	jobs := make(chan job)
	var (
		mu       sync.Mutex
		outcomes []outcome
		wg       sync.WaitGroup
	)
	for range orDefault(s.Concurrency, DefaultConcurrency) {
		wg.Go(func() {
			for j := range jobs {
				c, err := s.sweep(workCtx, j.sess, now)
				mu.Lock()
				if deadline, _, ok := s.lengthDeadline(j.sess); ok && !now.Before(deadline.Add(StuckAfter)) {
					rep.Stuck++
				}
				if err != nil {
					logging.From(ctx, s.Log).Error("session check failed", "session_id", j.sess.SessionID, "user_id", j.sess.UserID, "error", err.Error())
					rep.fail(j.sess.SessionID, err)
				}
				if c != nil {
					outcomes = append(outcomes, outcome{j.seq, c})
				}
				mu.Unlock()
			}
		})
	}

	// Hand out sessions in list order; the cursor follows the last one handed out, so everything
	// before it has been (or is being) checked when the run stops early.
	cursor, listed, complete := from, 0, false
	var listErr error
hand:
	for startCtx.Err() == nil {
		page, more, err := s.Sessions.ListOpenPage(workCtx, now.Add(-minAge), cursor, orDefault(s.PageSize, DefaultPageSize))
		if err != nil {
			listErr = err
			break
		}
		for _, sess := range page {
			if startCtx.Err() != nil || (s.MaxPerRun > 0 && listed >= s.MaxPerRun) {
				break hand
			}
			select {
			case jobs <- job{listed, sess}:
				listed++
				cursor = sessions.CursorAt(sess)
			case <-startCtx.Done():
				break hand
			}
		}
		if !more {
			complete = true
			break
		}
	}
	close(jobs)
	wg.Wait()

	rep.Examined, rep.Complete = listed, complete
	slices.SortFunc(outcomes, func(a, b outcome) int { return a.seq - b.seq })
	for _, o := range outcomes {
		rep.Closed = append(rep.Closed, *o.closed)
	}
	if listErr != nil {
		log.Error("listing open sessions failed", "error", listErr.Error())
		rep.fail("", listErr)
	}
	if !complete {
		rep.Cursor = cursor
	}
	// The save gets what is left of the run's own deadline (checks in flight stopped before it).
	if err := s.Sessions.SaveSweepCursor(ctx, rep.Cursor); err != nil {
		log.Error("saving the sweep cursor failed", "error", err.Error())
		rep.fail("", err)
	}
	took := time.Since(began)
	log.Info("sweep done", "examined", rep.Examined, "closed", len(rep.Closed), "errors", rep.Errors, "stuck", rep.Stuck,
		"complete", rep.Complete, "resumed", rep.Resumed, "duration_ms", took.Milliseconds())
	s.Metrics.SweepDone(metrics.Sweep{Duration: took, Examined: rep.Examined, Closed: len(rep.Closed), Errors: rep.Errors, Stuck: rep.Stuck})
	if listErr != nil && listed == 0 {
		return rep, fmt.Errorf("sweep: %w", listErr)
	}
	return rep, nil
}

func (s *Sweeper) sweep(ctx context.Context, sess sessions.Session, now time.Time) (*Closed, error) {
	ctx = logging.With(ctx, s.Log, "session_id", sess.SessionID, "user_id", sess.UserID)
	age := now.Sub(sess.CreatedAt)
	if deadline, limit, ok := s.lengthDeadline(sess); ok && !now.Before(deadline) {
		if !sess.Flagged() && s.SafetyGrace > 0 {
			// The page comes from an index that lags the table: a flag the agent just recorded must
			// still extend the limit, so read the item itself before cutting.
			fresh, err := s.Sessions.Get(ctx, sess.SessionID)
			if err != nil && !errors.Is(err, sessions.ErrNotFound) {
				return nil, err
			}
			if err == nil {
				sess = fresh
				deadline, limit, _ = s.lengthDeadline(sess)
			}
		}
		if !now.Before(deadline) {
			reason := ReasonMaxDuration(limit)
			if sess.Flagged() {
				reason = ReasonMaxDurationFlagged(limit, s.SafetyGrace)
			}
			return s.close(ctx, sess, sessions.StatusEnded, reason, metrics.ReasonMaxDuration, now)
		}
	}
	people, err := s.Rooms.Participants(ctx, sess.RoomName)
	if errors.Is(err, rooms.ErrRoomNotFound) {
		return s.close(ctx, sess, sessions.StatusEnded, ReasonRoomGone, metrics.ReasonRoomGone, now)
	}
	if err != nil {
		return nil, err
	}
	agentIn, sessionAgentIn := false, false
	for _, p := range people {
		agentIn = agentIn || p.IsAgent
		sessionAgentIn = sessionAgentIn || (p.IsAgent && p.Identity == rooms.AgentIdentity(sess.SessionID))
	}
	if s.AgentJoinTimeout > 0 && age >= s.AgentJoinTimeout && sess.AgentJoinedAt.IsZero() && !agentIn {
		return s.close(ctx, sess, sessions.StatusFailed, ReasonAgentTimeout(s.AgentJoinTimeout), metrics.ReasonAgentJoinTimeout, now)
	}
	// The avatar of the lost agent may still be in the room: only the agent's own identity counts.
	if s.AgentJoinTimeout > 0 && sess.Replaced() && now.Sub(sess.AgentReplacedAt) >= s.AgentJoinTimeout && !sessionAgentIn {
		return s.close(ctx, sess, sessions.StatusFailed, ReasonReplacementTimeout(s.AgentJoinTimeout), metrics.ReasonReplacementJoinTimeout, now)
	}
	return nil, nil
}

// lengthDeadline is when the sweeper ends a session for its length, and the maximum it applies: the
// session's own (cut by the student's daily minutes), else MaxDuration; ok is false without either.
// The agent counts the maximum from its join, so the sweeper does too, plus GoodbyeGrace: from the
// recorded agent join, or, while none is recorded, from the latest the agent can have joined
// (AgentJoinTimeout after creation; a session whose agent is absent by then is failed instead); a
// session flagged for a safety concern gets SafetyGrace more.
func (s *Sweeper) lengthDeadline(sess sessions.Session) (deadline time.Time, limit time.Duration, ok bool) {
	limit = sess.MaxDuration()
	if limit <= 0 {
		limit = s.MaxDuration
	}
	if limit <= 0 {
		return time.Time{}, 0, false
	}
	agentJoined := sess.AgentJoinedAt
	if agentJoined.IsZero() {
		agentJoined = sess.CreatedAt.Add(max(s.AgentJoinTimeout, 0))
	}
	grace := GoodbyeGrace
	if sess.Flagged() {
		// The agent extended its own limit once by the same grace: the cut must not fall mid-crisis.
		grace += s.SafetyGrace
	}
	return agentJoined.Add(limit + grace), limit, true
}

// close records the end first (so the reason is ours, not the room_finished our delete triggers), then
// deletes the room and stops the task. If the webhook closed the session meanwhile, it did the rest.
// reason goes into the record, code into the metrics.
func (s *Sweeper) close(ctx context.Context, sess sessions.Session, status sessions.Status, reason string, code metrics.Reason, now time.Time) (*Closed, error) {
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
	s.Metrics.SessionClosed(ended, code)
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
