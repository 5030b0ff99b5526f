package localstack

import (
	"bufio"
	"context"
	"encoding/json"
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

// AgentPoolOptions configures a local warm pool: Size one-job workers (node agentimage/dist/worker.js),
// each replaced by a fresh one when it exits, as the ECS service does in AWS.
type AgentPoolOptions struct {
	// Command is the worker's argv (e.g. node <root>/agentimage/dist/worker.js).
	Command []string
	// Env is the agent's static environment ("K=V": LiveKit, tables, stand-ins), as the direct agent gets it.
	Env       []string
	AgentName string
	Size      int
	// Output receives the workers' output (os.Stderr when nil).
	Output io.Writer
	Log    *slog.Logger
}

// AgentPool is a running local pool.
type AgentPool struct {
	o AgentPoolOptions

	mu       sync.Mutex
	cond     *sync.Cond
	workers  map[int]*exec.Cmd
	ready    map[int]bool
	started  int
	stopping bool
	wg       sync.WaitGroup
}

// fastExit: a worker ending sooner than this after its start is restarted only after a pause, so a
// broken environment does not spin.
const (
	fastExit     = 5 * time.Second
	restartPause = 2 * time.Second
)

// StartAgentPool starts o.Size workers (none when Size is 0).
func StartAgentPool(o AgentPoolOptions) (*AgentPool, error) {
	if len(o.Command) == 0 {
		return nil, errors.New("agent pool: no worker command")
	}
	if o.Output == nil {
		o.Output = os.Stderr
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	p := &AgentPool{o: o, workers: map[int]*exec.Cmd{}, ready: map[int]bool{}}
	p.cond = sync.NewCond(&p.mu)
	for range o.Size {
		if err := p.startWorker(); err != nil {
			p.Stop()
			return nil, err
		}
	}
	return p, nil
}

// workerLine is the part of a worker's JSON log line the pool reacts to.
type workerLine struct {
	Event string `json:"event"`
}

func (p *AgentPool) startWorker() error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	cmd := exec.Command(p.o.Command[0], p.o.Command[1:]...)
	// Two workers on one host need distinct health ports.
	cmd.Env = append(append(os.Environ(), p.o.Env...), "LIVEKIT_AGENT_NAME="+p.o.AgentName, "AGENT_HEALTH_PORT="+strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = p.o.Output
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping {
		return nil
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("agent pool: start worker: %w", err)
	}
	p.started++
	id := p.started
	p.workers[id] = cmd
	began := time.Now()
	p.o.Log.Info("pool worker started", "worker", id, "pid", cmd.Process.Pid, "agent_name", p.o.AgentName, "health_port", port)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = p.o.Output.Write(append(append([]byte{}, line...), '\n'))
			var l workerLine
			if json.Unmarshal(line, &l) != nil {
				continue
			}
			switch l.Event {
			case "worker_ready":
				p.setReady(id, true)
			case "job_accepted":
				p.setReady(id, false)
			}
		}
		err := cmd.Wait()
		p.mu.Lock()
		delete(p.workers, id)
		delete(p.ready, id)
		stopping := p.stopping
		p.cond.Broadcast()
		p.mu.Unlock()
		p.o.Log.Info("pool worker exited", "worker", id, "error", errText(err))
		if stopping {
			return
		}
		if time.Since(began) < fastExit {
			time.Sleep(restartPause)
		}
		if err := p.startWorker(); err != nil {
			p.o.Log.Error("replacing a pool worker failed", "error", err.Error())
		}
	}()
	return nil
}

func (p *AgentPool) setReady(id int, ready bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.workers[id]; ok {
		p.ready[id] = ready
		p.cond.Broadcast()
	}
}

// Idle counts the workers that are registered and hold no job.
func (p *AgentPool) Idle() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.idleLocked()
}

func (p *AgentPool) idleLocked() int {
	n := 0
	for _, r := range p.ready {
		if r {
			n++
		}
	}
	return n
}

// Size is the number of workers the pool keeps running.
func (p *AgentPool) Size() int { return p.o.Size }

// Started counts the workers started so far (replacements included).
func (p *AgentPool) Started() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started
}

// WaitIdle blocks until at least n workers are idle, or ctx ends.
func (p *AgentPool) WaitIdle(ctx context.Context, n int) error {
	stop := context.AfterFunc(ctx, func() { p.mu.Lock(); p.cond.Broadcast(); p.mu.Unlock() })
	defer stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.idleLocked() < n {
		if ctx.Err() != nil {
			return fmt.Errorf("agent pool: %d of %d workers idle: %w", p.idleLocked(), n, ctx.Err())
		}
		p.cond.Wait()
	}
	return nil
}

// Stop ends every worker (SIGTERM to its process group, SIGKILL after 10 s) and starts no more.
func (p *AgentPool) Stop() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.stopping = true
	var cmds []*exec.Cmd
	for _, c := range p.workers {
		cmds = append(cmds, c)
	}
	p.mu.Unlock()
	for _, c := range cmds {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
	}
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		for _, c := range cmds {
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		}
		<-done
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
