package agents

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// ProcessLauncher runs the agent as a local child process (the dev stack and its tests). The child
// inherits this process's environment plus the session's variables, as the ECS task gets its
// task-definition environment plus overrides.
type ProcessLauncher struct {
	command []string
	env     []string
	output  io.Writer
	log     *slog.Logger

	mu    sync.Mutex
	procs map[string]*exec.Cmd
	done  map[string]chan struct{}
}

// NewProcessLauncher runs command (argv) with extraEnv ("K=V") appended to the current environment;
// the agent's output goes to output (os.Stderr when nil).
func NewProcessLauncher(command []string, extraEnv []string, output io.Writer, log *slog.Logger) *ProcessLauncher {
	if output == nil {
		output = os.Stderr
	}
	return &ProcessLauncher{command: command, env: extraEnv, output: output, log: log,
		procs: map[string]*exec.Cmd{}, done: map[string]chan struct{}{}}
}

func (l *ProcessLauncher) Launch(ctx context.Context, s Session) (string, error) {
	if len(l.command) == 0 {
		return "", errors.New("process launcher: no command")
	}
	taskID := "process:" + s.LaunchKey()
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, running := l.procs[taskID]; running {
		return taskID, nil // idempotent, as RunTask with a client token
	}
	cmd := exec.Command(l.command[0], l.command[1:]...)
	cmd.Env = append(append(os.Environ(), l.env...), envList(s.Env())...)
	cmd.Stdout, cmd.Stderr = l.output, l.output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start agent process: %w", err)
	}
	done := make(chan struct{})
	l.procs[taskID], l.done[taskID] = cmd, done
	go func() {
		err := cmd.Wait()
		l.log.Info("agent process exited", "session_id", s.SessionID, "task_id", taskID, "pid", cmd.Process.Pid, "error", errString(err))
		l.mu.Lock()
		delete(l.procs, taskID)
		l.mu.Unlock()
		close(done)
	}()
	l.log.Info("agent process started", "session_id", s.SessionID, "task_id", taskID, "pid", cmd.Process.Pid)
	return taskID, nil
}

// Stop sends SIGTERM to the agent's process group and SIGKILL if it has not exited within 10 s.
func (l *ProcessLauncher) Stop(ctx context.Context, taskID, reason string) error {
	l.mu.Lock()
	cmd, ok := l.procs[taskID]
	done := l.done[taskID]
	l.mu.Unlock()
	if !ok {
		return nil
	}
	l.log.Info("stopping agent process", "task_id", taskID, "reason", reason)
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // never leave an agent running on the way out
		return ctx.Err()
	}
	return nil
}

// Kill sends SIGKILL to the task's process group at once, as a crash or an out-of-memory kill ends an
// agent: no cleanup, no leave message to LiveKit (tests of a lost agent).
func (l *ProcessLauncher) Kill(taskID string) error {
	l.mu.Lock()
	cmd, ok := l.procs[taskID]
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("kill %s: no such agent process", taskID)
	}
	l.log.Info("killing agent process", "task_id", taskID, "pid", cmd.Process.Pid)
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// Running reports whether the task's process is still alive.
func (l *ProcessLauncher) Running(taskID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.procs[taskID]
	return ok
}

// Wait blocks until the task's process exits (or ctx ends).
func (l *ProcessLauncher) Wait(ctx context.Context, taskID string) error {
	l.mu.Lock()
	done, ok := l.done[taskID]
	l.mu.Unlock()
	if !ok {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StopAll ends every agent (dev stack shutdown).
func (l *ProcessLauncher) StopAll(ctx context.Context) {
	l.mu.Lock()
	ids := make([]string, 0, len(l.procs))
	for id := range l.procs {
		ids = append(ids, id)
	}
	l.mu.Unlock()
	for _, id := range ids {
		_ = l.Stop(ctx, id, "dev stack stopping")
	}
}

func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return "exit status " + strconv.Itoa(exit.ExitCode())
	}
	return err.Error()
}
