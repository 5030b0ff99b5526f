package metrics

import (
	"encoding/json"
	"io"
	"strings"
	"sync"
	"time"

	"counselvideo/shared/sessions"
)

// Recorder writes one EMF line per event. A nil *Recorder records nothing (tests and tools that do
// not care about metrics leave it out). Writing never fails a caller: a line that cannot be written
// is lost, like a log line.
type Recorder struct {
	w     io.Writer
	stack string
	// Now stamps each line (time.Now when nil).
	Now func() time.Time

	mu sync.Mutex
}

// New returns a Recorder writing to w (os.Stdout in Lambda) with Stack = stack.
func New(w io.Writer, stack string) *Recorder { return &Recorder{w: w, stack: stack} }

// SessionCreated: a create-room wrote a new session record.
func (r *Recorder) SessionCreated(sessionID string) {
	r.emit(nil, session(sessionID), sample{SessionsCreated, 1})
}

// SessionResumed: a create-room returned the student's open session.
func (r *Recorder) SessionResumed(sessionID string) {
	r.emit(nil, session(sessionID), sample{SessionsResumed, 1})
}

// CreateRoomAnswered: create-room answered with outcome after d.
func (r *Recorder) CreateRoomAnswered(outcome Outcome, d time.Duration) {
	o := bounded(DimOutcome, string(outcome), string(OutcomeError))
	r.emit(map[string]string{DimOutcome: o}, nil, sample{CreateRoomLatency, ms(d)})
}

// SessionClosed: s (as its closer's write left it) became ended or failed, for reason. Call it only
// when this caller's write closed the session, so each session counts once.
func (r *Recorder) SessionClosed(s sessions.Session, reason Reason) {
	dims := map[string]string{DimReason: bounded(DimReason, string(reason), string(ReasonOther))}
	if s.Status == sessions.StatusFailed {
		r.emit(dims, session(s.SessionID), sample{SessionsFailed, 1})
		return
	}
	samples := []sample{{SessionsEnded, 1}}
	if !s.StudentJoinedAt.IsZero() {
		samples = append(samples, sample{SessionDuration, float64(s.DurationSeconds)})
	}
	r.emit(dims, session(s.SessionID), samples...)
}

// AgentJoined: the first agent of s joined at (LiveKit's join time).
func (r *Recorder) AgentJoined(s sessions.Session, source AgentSource, at time.Time) {
	src := bounded(DimAgentSource, string(source), string(SourceCold))
	r.emit(map[string]string{DimAgentSource: src}, session(s.SessionID), sample{TimeToAgent, ms(at.Sub(s.CreatedAt))})
}

// StudentJoined: the student of s first joined at.
func (r *Recorder) StudentJoined(s sessions.Session, at time.Time) {
	r.emit(nil, session(s.SessionID), sample{TimeToStudent, ms(at.Sub(s.CreatedAt))})
}

// AgentReplaced: the webhook started a replacement for the session's lost agent (once per session).
func (r *Recorder) AgentReplaced(sessionID string) {
	r.emit(nil, session(sessionID), sample{AgentsReplaced, 1})
}

// WebhookHandled: the webhook answered a request with result.
func (r *Recorder) WebhookHandled(result WebhookResult) {
	res := bounded(DimResult, string(result), string(WebhookOther))
	r.emit(map[string]string{DimResult: res}, nil, sample{WebhookEvents, 1})
}

// Sweep is what one sweeper run reports.
type Sweep struct {
	Duration                        time.Duration
	Examined, Closed, Errors, Stuck int
}

// SweepDone: a sweeper run finished. Every run writes the line, so a missing line means no run.
func (r *Recorder) SweepDone(s Sweep) {
	r.emit(nil, nil,
		sample{SweepRuns, 1}, sample{SweepDuration, ms(s.Duration)}, sample{SweepExamined, float64(s.Examined)},
		sample{SweepClosed, float64(s.Closed)}, sample{SweepErrors, float64(s.Errors)},
		sample{SessionsStuckOpen, float64(s.Stuck)})
}

type sample struct {
	def   Definition
	value float64
}

func session(id string) map[string]any {
	if id == "" {
		return nil
	}
	return map[string]any{"session_id": id}
}

// ms is a duration in milliseconds; a negative one (clocks of two machines) counts as 0.
func ms(d time.Duration) float64 { return max(0, float64(d.Microseconds())/1000) }

// The EMF document (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
type (
	emfMeta struct {
		Timestamp         int64          `json:"Timestamp"`
		CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
	}
	emfDirective struct {
		Namespace  string      `json:"Namespace"`
		Dimensions [][]string  `json:"Dimensions"`
		Metrics    []emfMetric `json:"Metrics"`
	}
	emfMetric struct {
		Name string `json:"Name"`
		Unit Unit   `json:"Unit"`
	}
)

// emit writes one line: the samples grouped into one directive per distinct list of dimension sets,
// the dimension values and props as root members.
func (r *Recorder) emit(dims map[string]string, props map[string]any, samples ...sample) {
	if r == nil || r.w == nil {
		return
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	doc := map[string]any{}
	for k, v := range props {
		doc[k] = v
	}
	for k, v := range dims {
		doc[k] = v
	}
	doc[DimStack] = r.stack
	meta := emfMeta{Timestamp: now().UnixMilli()}
	byDims := map[string]int{}
	for _, s := range samples {
		key := dimsKey(s.def.Dimensions)
		i, ok := byDims[key]
		if !ok {
			i = len(meta.CloudWatchMetrics)
			byDims[key] = i
			meta.CloudWatchMetrics = append(meta.CloudWatchMetrics, emfDirective{Namespace: Namespace, Dimensions: s.def.Dimensions})
		}
		d := &meta.CloudWatchMetrics[i]
		d.Metrics = append(d.Metrics, emfMetric{Name: s.def.Name, Unit: s.def.Unit})
		doc[s.def.Name] = s.value
	}
	doc["_aws"] = meta
	line, err := json.Marshal(doc)
	if err != nil {
		return
	}
	line = append(line, '\n')
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _ = r.w.Write(line) // one Write per line: lines never interleave with slog's
}

func dimsKey(sets [][]string) string {
	parts := make([]string, len(sets))
	for i, s := range sets {
		parts[i] = strings.Join(s, ",")
	}
	return strings.Join(parts, ";")
}
