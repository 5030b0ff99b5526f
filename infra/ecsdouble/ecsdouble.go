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
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

const targetPrefix = "AmazonEC2ContainerServiceV20141113."

// Server records RunTask and StopTask calls.
type Server struct {
	*httptest.Server

	mu      sync.Mutex
	runs    []ecs.RunTaskInput
	stops   []ecs.StopTaskInput
	byToken map[string]string
	failAll string // "error" or "failure": how every RunTask fails
	n       int
}

func New() *Server {
	s := &Server{byToken: map[string]string{}}
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

// Reset forgets recorded calls and failure modes.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs, s.stops, s.failAll = nil, nil, ""
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	if !ok || r.Header.Get("Content-Type") != "application/x-amz-json-1.1" || !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		writeErr(w, http.StatusBadRequest, "InvalidParameterException", "not an ECS JSON 1.1 request")
		return
	}
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch op {
	case "RunTask":
		var in ecs.RunTaskInput
		if err := json.Unmarshal(body, &in); err != nil {
			writeErr(w, http.StatusBadRequest, "InvalidParameterException", err.Error())
			return
		}
		s.runs = append(s.runs, in)
		switch s.failAll {
		case "error":
			writeErr(w, http.StatusInternalServerError, "ServerException", "injected failure")
			return
		case "failure":
			writeJSON(w, map[string]any{"tasks": []any{}, "failures": []any{map[string]any{"reason": "RESOURCE:CAPACITY", "detail": "injected"}}})
			return
		}
		token := ""
		if in.ClientToken != nil {
			token = *in.ClientToken
		}
		arn, seen := s.byToken[token]
		if !seen || token == "" {
			s.n++
			arn = fmt.Sprintf("arn:aws:ecs:us-east-1:000000000000:task/%s/%032d", deref(in.Cluster), s.n)
			s.byToken[token] = arn
		}
		writeJSON(w, map[string]any{"tasks": []any{map[string]any{"taskArn": arn, "lastStatus": "PROVISIONING", "startedBy": deref(in.StartedBy)}}, "failures": []any{}})
	case "StopTask":
		var in ecs.StopTaskInput
		if err := json.Unmarshal(body, &in); err != nil {
			writeErr(w, http.StatusBadRequest, "InvalidParameterException", err.Error())
			return
		}
		s.stops = append(s.stops, in)
		writeJSON(w, map[string]any{"task": map[string]any{"taskArn": deref(in.Task), "desiredStatus": "STOPPED"}})
	default:
		writeErr(w, http.StatusBadRequest, "InvalidParameterException", "unsupported operation "+op)
	}
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
