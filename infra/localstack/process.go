// Package localstack starts the real local components the dev stack and the integration tests run
// on: livekit-server, DynamoDB Local and cognito-local, each on loopback ports, each installed by
// infra/scripts/install-tools.sh. A missing component is an error, never a silent skip.
package localstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Paths locates the repository and the tool cache.
type Paths struct {
	Root  string // repository root (holds go.work)
	Cache string // install-tools.sh cache
}

// Pinned versions; keep in step with infra/scripts/install-tools.sh.
const (
	LiveKitVersion = "v1.13.5"
	RIEVersion     = "v0.0.0-20261030222936-bef5c4ba774d"
)

// FindPaths walks up from the working directory to the go.work file.
func FindPaths() (Paths, error) {
	dir, err := os.Getwd()
	if err != nil {
		return Paths{}, err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return Paths{}, errors.New("localstack: go.work not found above the working directory")
		}
		dir = parent
	}
	cache := os.Getenv("COUNSELVIDEO_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "counselvideo")
	}
	return Paths{Root: dir, Cache: cache}, nil
}

func (p Paths) LiveKitServer() string {
	return filepath.Join(p.Cache, "livekit-server-"+LiveKitVersion, "livekit-server")
}
func (p Paths) RIE() string {
	return filepath.Join(p.Cache, "aws-lambda-rie-"+RIEVersion, "aws-lambda-rie")
}
func (p Paths) NodeModules() string {
	return filepath.Join(p.Root, "infra", "node", "node_modules")
}

func requireFile(path, hint string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("localstack: %s is missing (%s): run `make tools`", path, hint)
	}
	return nil
}

// FreePort asks the kernel for an unused loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreeUDPPort asks the kernel for an unused loopback UDP port.
func FreeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// Process is a started component.
type Process struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// startProcess runs argv in dir with env appended, logging to logDir/<name>.log. The child dies with us.
func startProcess(name, dir, logDir string, env []string, argv ...string) (*Process, error) {
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("localstack: start %s: %w", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.exited) }()
	return p, nil
}

// Stop ends the process group (SIGTERM, then SIGKILL after 5 s).
func (p *Process) Stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func (p *Process) tail() string {
	b, _ := os.ReadFile(p.LogPath)
	s := string(b)
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return strings.TrimSpace(s)
}

// waitReady polls check until it succeeds, the process exits or the timeout passes.
func (p *Process) waitReady(ctx context.Context, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("localstack: %s exited during start: %s", p.Name, p.tail())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("localstack: %s not ready after %s: %v; log: %s", p.Name, timeout, last, p.tail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func httpOK(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
}
