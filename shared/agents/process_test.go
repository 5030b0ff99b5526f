package agents

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is an io.Writer the child's output can be copied into while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls until cond holds; the bound only keeps a broken test from hanging.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestProcessLauncherLifecycle(t *testing.T) {
	out := &syncBuffer{}
	// The shell forks sleep: Stop must end the whole process group, not just the shell.
	// The session's maximum wins over a static one in the launcher's environment, as a container
	// override wins over the task definition's.
	script := `echo "started $SESSION_ID $ROOM_NAME $CATEGORY_ID $AGENT_EXTRA max=$AGENT_MAX_DURATION_SECONDS"; sleep 30; echo "not stopped"`
	l := NewProcessLauncher([]string{"/bin/sh", "-c", script}, []string{"AGENT_EXTRA=from-launcher", "AGENT_MAX_DURATION_SECONDS=3600"}, out, quiet())
	t.Cleanup(func() { l.StopAll(context.Background()) })

	task, err := l.Launch(context.Background(), sess)
	if err != nil {
		t.Fatal(err)
	}
	if task != "process:"+sess.SessionID {
		t.Errorf("task id %q", task)
	}
	want := "started " + sess.SessionID + " " + sess.RoomName + " cat-1 from-launcher max=1500\n"
	waitFor(t, "the agent's output", func() bool { return strings.Contains(out.String(), want) })
	if !l.Running(task) {
		t.Fatal("not running after start")
	}

	// Launching the same session again is a no-op.
	again, err := l.Launch(context.Background(), sess)
	if err != nil || again != task {
		t.Fatalf("second launch: %q %v", again, err)
	}

	// Wait honors its context while the process runs.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Wait(ctx, task); err != context.Canceled {
		t.Errorf("Wait with a canceled context: %v", err)
	}

	if err := l.Stop(context.Background(), task, "test over"); err != nil {
		t.Fatal(err)
	}
	if l.Running(task) {
		t.Error("still running after Stop")
	}
	if err := l.Wait(context.Background(), task); err != nil {
		t.Errorf("Wait after Stop: %v", err)
	}
	if got := strings.Count(out.String(), "started "); got != 1 {
		t.Errorf("%d agents started for one session:\n%s", got, out)
	}
	if strings.Contains(out.String(), "not stopped") {
		t.Error("the agent outlived Stop")
	}
	// Stopping again, or stopping an unknown task, is not an error.
	if err := l.Stop(context.Background(), task, "again"); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := l.Stop(context.Background(), "process:unknown", "x"); err != nil {
		t.Errorf("unknown Stop: %v", err)
	}
}

func TestProcessLauncherProcessExitsByItself(t *testing.T) {
	out := &syncBuffer{}
	l := NewProcessLauncher([]string{"/bin/sh", "-c", `echo "bye $SESSION_ID"; exit 3`}, nil, out, quiet())
	task, err := l.Launch(context.Background(), sess)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Wait(context.Background(), task); err != nil {
		t.Fatal(err)
	}
	if l.Running(task) {
		t.Error("running after exit")
	}
	if out.String() != "bye "+sess.SessionID+"\n" {
		t.Errorf("output %q", out.String())
	}
	// After the first agent exited, the session can get a new one.
	if _, err := l.Launch(context.Background(), sess); err != nil {
		t.Fatal(err)
	}
	if err := l.Wait(context.Background(), task); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "bye ") != 2 {
		t.Errorf("relaunch output %q", out.String())
	}
}

func TestProcessLauncherSessionsAreSeparate(t *testing.T) {
	out := &syncBuffer{}
	l := NewProcessLauncher([]string{"/bin/sh", "-c", `echo "up $SESSION_ID"; sleep 30`}, nil, out, quiet())
	t.Cleanup(func() { l.StopAll(context.Background()) })
	other := Session{SessionID: "other", RoomName: "video-other", CategoryID: "cat-2"}
	a, err := l.Launch(context.Background(), sess)
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Launch(context.Background(), other)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("same task id %q for two sessions", a)
	}
	waitFor(t, "both agents", func() bool {
		return strings.Contains(out.String(), "up other") && strings.Contains(out.String(), "up "+sess.SessionID)
	})
	if err := l.Stop(context.Background(), a, "x"); err != nil {
		t.Fatal(err)
	}
	if l.Running(a) || !l.Running(b) {
		t.Errorf("after stopping one: a %v b %v", l.Running(a), l.Running(b))
	}
	l.StopAll(context.Background())
	if l.Running(b) {
		t.Error("StopAll left an agent running")
	}
}

func TestProcessLauncherErrors(t *testing.T) {
	if _, err := NewProcessLauncher(nil, nil, nil, quiet()).Launch(context.Background(), sess); err == nil {
		t.Error("launch without a command")
	}
	l := NewProcessLauncher([]string{"/nonexistent/agent-binary"}, nil, io.Discard, quiet())
	if _, err := l.Launch(context.Background(), sess); err == nil {
		t.Error("launch of a missing binary")
	}
	if l.Running("process:" + sess.SessionID) {
		t.Error("failed launch recorded as running")
	}
	if err := l.Wait(context.Background(), "process:never"); err != nil {
		t.Errorf("Wait on an unknown task: %v", err)
	}
}

// TestProcessLauncherReplacement: a replacement is a process of its own while the first still runs
// (the lost agent may linger), told it is one, and stopped by its own task id.
func TestProcessLauncherReplacement(t *testing.T) {
	out := &syncBuffer{}
	l := NewProcessLauncher([]string{"/bin/sh", "-c", `echo "started $SESSION_ID replacement=$AGENT_REPLACEMENT"; sleep 30`}, nil, out, quiet())
	t.Cleanup(func() { l.StopAll(context.Background()) })
	first, err := l.Launch(context.Background(), sess)
	if err != nil {
		t.Fatal(err)
	}
	repl := sess
	repl.Replacement = true
	second, err := l.Launch(context.Background(), repl)
	if err != nil {
		t.Fatal(err)
	}
	if first == second {
		t.Fatalf("replacement reused task %q", first)
	}
	waitFor(t, "both agents", func() bool {
		return strings.Contains(out.String(), "replacement=false") && strings.Contains(out.String(), "replacement=true")
	})
	if err := l.Stop(context.Background(), second, "test"); err != nil {
		t.Fatal(err)
	}
	if l.Running(second) || !l.Running(first) {
		t.Errorf("running after stopping the replacement: first %v second %v", l.Running(first), l.Running(second))
	}
}
