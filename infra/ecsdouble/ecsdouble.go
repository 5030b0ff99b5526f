// Package ecsdouble is a wire-level stand-in for the ECS API (JSON 1.1 protocol). ECS cannot run
// containers here, so the launcher is tested against this: requests arrive exactly as the SDK sends
// them and are decoded into the SDK's own input types for assertions.
package ecsdouble

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

const targetPrefix = "AmazonEC2ContainerServiceV20141113."

// Server records RunTask, StopTask and ListTasks calls and keeps the tasks it started.
type Server struct {
	*httptest.Server

	mu      sync.Mutex
	runs    []ecs.RunTaskInput
	stops   []ecs.StopTaskInput
	byToken map[string]string
	tasks   map[string]*task // by ARN
	failAll string           // "error" or "failure": how every RunTask fails
	// runWait, when set, runs after a RunTask started its task and before it answers (a slow or
	// held ECS: the task exists although the caller may give up waiting).
	runWait func(*http.Request)
	n       int
}

type task struct {
	cluster, startedBy string
	stopped            bool
}

func New() *Server {
	s := &Server{byToken: map[string]string{}, tasks: map[string]*task{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// FailRunTask makes every RunTask fail: mode "error" answers a server error, "failure" answers 200
// with a Failures entry (as ECS does for capacity problems). "" restores success.
func (s *Server) FailRunTask(mode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failAll = mode
}

// DelayRunTask makes every RunTask start its task at once but answer only after d (or when the
// caller gives up): the task runs although the caller's deadline may pass first. 0 restores.
func (s *Server) DelayRunTask(d time.Duration) {
	if d <= 0 {
		s.setRunWait(nil)
		return
	}
	s.setRunWait(func(r *http.Request) {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
		}
	})
}

// HoldRunTask makes RunTask start its task and then wait for release before answering (or until the
// caller gives up). Once released, RunTask answers at once again; calling release twice is fine.
func (s *Server) HoldRunTask() (release func()) {
	gate := make(chan struct{})
	var once sync.Once
	s.setRunWait(func(r *http.Request) {
		select {
		case <-gate:
		case <-r.Context().Done():
		}
	})
	return func() { once.Do(func() { close(gate) }) }
}

func (s *Server) setRunWait(f func(*http.Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runWait = f
}

// RunTasks returns the RunTask requests received so far.
func (s *Server) RunTasks() []ecs.RunTaskInput {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ecs.RunTaskInput(nil), s.runs...)
}

// StopTasks returns the StopTask requests received so far.
func (s *Server) StopTasks() []ecs.StopTaskInput {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ecs.StopTaskInput(nil), s.stops...)
}

// Running returns the ARNs of started, not stopped tasks whose startedBy is startedBy.
func (s *Server) Running(startedBy string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.list("", startedBy, false)
}

// list returns matching task ARNs, sorted; cluster "" matches any cluster.
func (s *Server) list(cluster, startedBy string, stopped bool) []string {
	var out []string
	for arn, t := range s.tasks {
		if (cluster == "" || t.cluster == cluster) && (startedBy == "" || t.startedBy == startedBy) && t.stopped == stopped {
			out = append(out, arn)
		}
	}
	sort.Strings(out)
	return out
}

// Reset forgets recorded calls, tasks and failure modes.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs, s.stops, s.failAll, s.runWait = nil, nil, "", nil
	s.tasks = map[string]*task{}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	if !ok || r.Header.Get("Content-Type") != "application/x-amz-json-1.1" || !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		writeErr(w, http.StatusBadRequest, "InvalidParameterException", "not an ECS JSON 1.1 request")
		return
	}
	body, _ := io.ReadAll(r.Body)
	switch op {
	case "RunTask":
		s.runTask(w, r, body)
	case "StopTask":
		var in ecs.StopTaskInput
		if !decode(w, body, &in) {
			return
		}
		s.mu.Lock()
		s.stops = append(s.stops, in)
		if t, ok := s.tasks[deref(in.Task)]; ok {
			t.stopped = true
		}
		s.mu.Unlock()
		writeJSON(w, map[string]any{"task": map[string]any{"taskArn": deref(in.Task), "desiredStatus": "STOPPED"}})
	case "ListTasks":
		var in ecs.ListTasksInput
		if !decode(w, body, &in) {
			return
		}
		// ECS lists tasks whose desired status is RUNNING unless asked for STOPPED ones.
		s.mu.Lock()
		arns := s.list(deref(in.Cluster), deref(in.StartedBy), in.DesiredStatus == "STOPPED")
		s.mu.Unlock()
		if arns == nil {
			arns = []string{}
		}
		writeJSON(w, map[string]any{"taskArns": arns})
	default:
		writeErr(w, http.StatusBadRequest, "InvalidParameterException", "unsupported operation "+op)
	}
}

func (s *Server) runTask(w http.ResponseWriter, r *http.Request, body []byte) {
	var in ecs.RunTaskInput
	if !decode(w, body, &in) {
		return
	}
	s.mu.Lock()
	s.runs = append(s.runs, in)
	switch s.failAll {
	case "error":
		s.mu.Unlock()
		writeErr(w, http.StatusInternalServerError, "ServerException", "injected failure")
		return
	case "failure":
		s.mu.Unlock()
		writeJSON(w, map[string]any{"tasks": []any{}, "failures": []any{map[string]any{"reason": "RESOURCE:CAPACITY", "detail": "injected"}}})
		return
	}
	token := deref(in.ClientToken)
	arn, seen := s.byToken[token]
	if !seen || token == "" {
		s.n++
		arn = fmt.Sprintf("arn:aws:ecs:us-east-1:000000000000:task/%s/%032d", deref(in.Cluster), s.n)
		s.byToken[token] = arn
		s.tasks[arn] = &task{cluster: deref(in.Cluster), startedBy: deref(in.StartedBy)}
	}
	wait := s.runWait
	s.mu.Unlock()
	if wait != nil {
		wait(r)
	}
	writeJSON(w, map[string]any{"tasks": []any{map[string]any{"taskArn": arn, "lastStatus": "PROVISIONING", "startedBy": deref(in.StartedBy)}}, "failures": []any{}})
}

// decode reads a request into the SDK's own input type; false means it answered the error.
func decode(w http.ResponseWriter, body []byte, in any) bool {
	if err := json.Unmarshal(body, in); err != nil {
		writeErr(w, http.StatusBadRequest, "InvalidParameterException", err.Error())
		return false
	}
	return true
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}
