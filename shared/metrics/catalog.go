// Package metrics owns what the Go functions publish to CloudWatch: the namespace, each metric's name,
// unit and dimension sets, and the bounded values of every dimension but Stack. The domain reports
// events (a session closed with a reason, the agent joined, a sweep finished) and never formats
// anything; the Recorder turns each event into one CloudWatch embedded metric format (EMF) line.
//
// An EMF line is a JSON object of its own on its own stdout line, never a field of a slog line:
// CloudWatch Logs extracts metrics only from a log event whose root object carries "_aws". Lambda's
// JSON log format passes a custom runtime's stdout lines through unchanged, but it filters them by
// their "level" member and reads a line without one as INFO: the template therefore lets INFO through
// (ApplicationLogLevel; the code filters its own logs with LOG_LEVEL), which the template check holds.
//
// Cardinality: CloudWatch keeps (and bills) one metric per name, dimension set and dimension value.
// Stack has one value per deployment; every other dimension takes only the values listed in
// DimensionValues (anything else is recorded as "other").
package metrics

import "slices"

// Namespace of every metric the Go functions emit. The warm pool's metric has its own
// (infra/poolscaling), emitted by the agent.
const Namespace = "CounselVideo"

// Dimension names.
const (
	// DimStack is the stack name (STACK_NAME): two stacks in one account never mix.
	DimStack = "Stack"
	// DimReason is why a session ended or failed (a Reason).
	DimReason = "Reason"
	// DimOutcome is what create-room answered (an Outcome).
	DimOutcome = "Outcome"
	// DimAgentSource is where the session's agent came from (an AgentSource).
	DimAgentSource = "AgentSource"
	// DimResult is what the webhook did with a request (a WebhookResult).
	DimResult = "Result"
)

// Unit is a CloudWatch unit.
type Unit string

const (
	Count        Unit = "Count"
	Milliseconds Unit = "Milliseconds"
	Seconds      Unit = "Seconds"
)

// Definition is one metric: its name, unit and the dimension sets it is recorded under. Each set
// (always starting with Stack) is a metric of its own in CloudWatch; an alarm or a graph names one.
type Definition struct {
	Name       string
	Unit       Unit
	Dimensions [][]string
	// Help says what one value means (the README's table says it for the platform team).
	Help string
}

var (
	stackOnly  = [][]string{{DimStack}}
	withReason = [][]string{{DimStack}, {DimStack, DimReason}}
)

// The metrics.
var (
	SessionsCreated = Definition{"SessionsCreated", Count, stackOnly,
		"a create-room wrote a new session record (every later failure of it counts in SessionsFailed)"}
	SessionsResumed = Definition{"SessionsResumed", Count, stackOnly,
		"a create-room returned the student's open session with a fresh token"}
	SessionsFailed = Definition{"SessionsFailed", Count, withReason,
		"a session became failed (Reason: why)"}
	SessionsEnded = Definition{"SessionsEnded", Count, withReason,
		"a session became ended (Reason: who or what ended it)"}
	SessionDuration = Definition{"SessionDuration", Seconds, stackOnly,
		"an ended session's duration (student's join to the end), for sessions the student joined"}
	CreateRoomLatency = Definition{"CreateRoomLatency", Milliseconds, [][]string{{DimStack}, {DimStack, DimOutcome}},
		"how long create-room took to answer (Outcome created: the setup latency of a new session)"}
	TimeToAgent = Definition{"TimeToAgent", Milliseconds, [][]string{{DimStack}, {DimStack, DimAgentSource}},
		"from the session's creation to its agent joining the room (LiveKit's join time); its SampleCount is the sessions whose agent joined"}
	TimeToStudent = Definition{"TimeToStudent", Milliseconds, stackOnly,
		"from the session's creation to the student first joining the room; its SampleCount is the sessions the student joined"}
	AgentsReplaced = Definition{"AgentsReplaced", Count, stackOnly,
		"the webhook started a replacement for a session's agent lost mid-session (its worker or task died); a second loss fails the session (SessionsFailed, Reason agent_lost)"}
	WebhookEvents = Definition{"WebhookEvents", Count, [][]string{{DimStack, DimResult}},
		"a LiveKit webhook request and what became of it (Result)"}
	SweepRuns = Definition{"SweepRuns", Count, stackOnly,
		"a sweeper run finished (one per run, whatever its outcome)"}
	SweepDuration = Definition{"SweepDuration", Milliseconds, stackOnly,
		"how long a sweeper run took"}
	SweepExamined = Definition{"SweepExamined", Count, stackOnly,
		"open sessions a sweeper run checked"}
	SweepClosed = Definition{"SweepClosed", Count, stackOnly,
		"sessions a sweeper run closed (by reason: SessionsEnded/SessionsFailed with Reason room_gone, max_duration, agent_join_timeout)"}
	SweepErrors = Definition{"SweepErrors", Count, stackOnly,
		"failures in a sweeper run (sessions it could not check or clean up, cursor or listing errors); the run itself still succeeds"}
	SessionsStuckOpen = Definition{"SessionsStuckOpen", Count, stackOnly,
		"open sessions a sweeper run found StuckAfter past the moment it ends a session for its length (earlier runs failed to close them)"}
)

// Catalog is every metric the Go functions emit, in README order.
func Catalog() []Definition {
	return []Definition{
		SessionsCreated, SessionsResumed, SessionsFailed, SessionsEnded, SessionDuration,
		CreateRoomLatency, TimeToAgent, TimeToStudent, AgentsReplaced, WebhookEvents,
		SweepRuns, SweepDuration, SweepExamined, SweepClosed, SweepErrors, SessionsStuckOpen,
	}
}

// Reason is the bounded code of why a session ended or failed (the session's end_reason is free text).
type Reason string

const (
	// Ended.
	ReasonEndedByStudent   Reason = "ended_by_student"    // POST /end
	ReasonRoomFinished     Reason = "room_finished"       // LiveKit's room_finished webhook
	ReasonRoomGoneOnResume Reason = "room_gone_on_resume" // create-room found the open session's room gone
	ReasonRoomGone         Reason = "room_gone"           // sweeper: the room closed, its webhook was lost
	ReasonMaxDuration      Reason = "max_duration"        // sweeper: over SESSION_MAX_DURATION_SECONDS
	// Failed.
	ReasonRoomCreationFailed  Reason = "room_creation_failed"  // create-room: LiveKit CreateRoom failed
	ReasonAgentLaunchFailed   Reason = "agent_launch_failed"   // create-room: the launcher failed
	ReasonSessionUpdateFailed Reason = "session_update_failed" // create-room: recording the started session failed
	ReasonAgentJoinTimeout    Reason = "agent_join_timeout"    // sweeper: no agent within AGENT_JOIN_TIMEOUT_SECONDS
	// The session's agent was lost mid-session (webhook; sweeper for the replacement's timeout).
	ReasonAgentLost              Reason = "agent_lost"               // its replacement was lost too
	ReasonAgentReplacementFailed Reason = "agent_replacement_failed" // starting the replacement failed
	ReasonReplacementJoinTimeout Reason = "replacement_join_timeout" // sweeper: the replacement never joined
	// ReasonOther replaces a code not listed in Reasons.
	ReasonOther Reason = "other"
)

// Reasons lists every Reason value the Reason dimension can take.
var Reasons = []Reason{
	ReasonEndedByStudent, ReasonRoomFinished, ReasonRoomGoneOnResume, ReasonRoomGone, ReasonMaxDuration,
	ReasonRoomCreationFailed, ReasonAgentLaunchFailed, ReasonSessionUpdateFailed, ReasonAgentJoinTimeout,
	ReasonAgentLost, ReasonAgentReplacementFailed, ReasonReplacementJoinTimeout,
	ReasonOther,
}

// Outcome is what create-room answered.
type Outcome string

const (
	OutcomeCreated Outcome = "created" // a new session, set up
	OutcomeResumed Outcome = "resumed" // the student's open session
	OutcomeError   Outcome = "error"   // any error answer (4xx or 5xx)
)

// OutcomeOf is create-room's outcome from what it returned.
func OutcomeOf(resumed bool, err error) Outcome {
	switch {
	case err != nil:
		return OutcomeError
	case resumed:
		return OutcomeResumed
	}
	return OutcomeCreated
}

// AgentSource is where a session's agent came from.
type AgentSource string

const (
	SourcePool AgentSource = "pool" // a warm pool worker took the dispatch
	SourceCold AgentSource = "cold" // a task started for the session (RunTask)
)

// SourceOf maps a session's recorded agent source to the dimension value: only "pool" is the pool;
// sessions recorded before the pool existed (or without a source) started their own task.
func SourceOf(recorded string) AgentSource {
	if recorded == string(SourcePool) {
		return SourcePool
	}
	return SourceCold
}

// WebhookResult is what the webhook did with a request.
type WebhookResult string

const (
	WebhookApplied   WebhookResult = "applied"   // the event changed or confirmed a session
	WebhookIgnored   WebhookResult = "ignored"   // verified, but nothing to do (other rooms, departures, ...)
	WebhookDuplicate WebhookResult = "duplicate" // an event id already applied (LiveKit retried)
	WebhookRejected  WebhookResult = "rejected"  // bad signature, too large, wrong method: 4xx
	WebhookFailed    WebhookResult = "failed"    // an error after verification: 5xx, LiveKit retries
	WebhookOther     WebhookResult = "other"     // replaces a value not listed here
)

// DimensionValues lists the values each bounded dimension takes (all but Stack).
var DimensionValues = map[string][]string{
	DimReason:      strs(Reasons),
	DimOutcome:     {string(OutcomeCreated), string(OutcomeResumed), string(OutcomeError)},
	DimAgentSource: {string(SourcePool), string(SourceCold)},
	DimResult: {string(WebhookApplied), string(WebhookIgnored), string(WebhookDuplicate),
		string(WebhookRejected), string(WebhookFailed), string(WebhookOther)},
}

func strs[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// bounded returns v if the dimension allows it, else other.
func bounded(dim, v, other string) string {
	if slices.Contains(DimensionValues[dim], v) {
		return v
	}
	return other
}
