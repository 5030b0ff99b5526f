package localstack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// BuildBootstrap builds ./functions/<name> as Lambda runs it (lambda.norpc, static, stripped) for
// arch ("" = this machine) into dir/bootstrap.
func BuildBootstrap(paths Paths, name, arch, dir string) (string, error) {
	return BuildLambda(paths, "./functions/"+name, arch, dir)
}

// BuildLambda builds the Go package pkg (a path relative to the repository root) as BuildBootstrap does.
func BuildLambda(paths Paths, pkg, arch, dir string) (string, error) {
	name := filepath.Base(pkg)
	out := filepath.Join(dir, "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Dir = paths.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if arch != "" {
		cmd.Env = append(cmd.Env, "GOARCH="+arch)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %v: %s", name, err, b)
	}
	return out, nil
}

// Lambda is a bootstrap running under the AWS Lambda Runtime Interface Emulator.
type Lambda struct {
	cmd *exec.Cmd
	url string
	out *lockedBuffer
}

// StartLambda runs bootstrap under aws-lambda-rie on loopback ports with exactly env (as Lambda
// gives a function only its configured environment).
func StartLambda(paths Paths, bootstrap string, env []string) (*Lambda, error) {
	if err := requireFile(paths.RIE(), "aws-lambda-rie"); err != nil {
		return nil, err
	}
	p1, err := FreePort()
	if err != nil {
		return nil, err
	}
	p2, err := FreePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(paths.RIE(), "--runtime-interface-emulator-address", "127.0.0.1:"+strconv.Itoa(p1),
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(p2), bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = env
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start aws-lambda-rie: %w", err)
	}
	l := &Lambda{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d/2015-03-31/functions/function/invocations", p1), out: out}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", p1)); err == nil {
			c.Body.Close()
			return l, nil
		}
		if time.Now().After(deadline) {
			l.Stop()
			return nil, fmt.Errorf("emulator not listening: %s", out)
		}
	}
}

// Invoke sends one event and decodes the function's result into result.
func (l *Lambda) Invoke(event, result any) error {
	raw, err := json.Marshal(event)
	if err != nil {
		return err
	}
	resp, err := http.Post(l.url, "application/json", bytes.NewReader(raw))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, result); err != nil {
		return fmt.Errorf("invocation result %s: %w", body, err)
	}
	return nil
}

// Output is what the emulator and the function printed so far.
func (l *Lambda) Output() string { return l.out.String() }

// Stop kills the emulator and the function.
func (l *Lambda) Stop() {
	_ = syscall.Kill(-l.cmd.Process.Pid, syscall.SIGKILL)
	_ = l.cmd.Wait()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
