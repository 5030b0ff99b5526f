package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// pageTimings is the playground page's window.__timings (performance.now() milliseconds).
type pageTimings struct {
	Post             float64  `json:"post"`
	Created          *float64 `json:"created"`
	Connected        *float64 `json:"connected"`
	AgentJoined      *float64 `json:"agentJoined"`
	AvatarTrack      *float64 `json:"avatarTrack"`
	FirstAvatarFrame *float64 `json:"firstAvatarFrame"`
}

// frameSample is one session run by the student's page: POST → create-room's answer, → the room
// joined, → agent-<id> seen in the room, → the avatar's video subscribed, → its first frame presented
// (requestVideoFrameCallback).
type frameSample struct {
	sessionID                                                 string
	createRoom, connected, agentSeen, avatarTrack, firstFrame time.Duration
}

// browser is playground/bench/first-frame.mjs: headless Chromium on the playground page, one session
// per request.
type browser struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startBrowser runs the page driver with node from playground/ (its playwright-core and the
// livekit-client the page loads); Chromium's and node's output go to logFile.
func startBrowser(root, playgroundURL, logFile string) (*browser, error) {
	dir := filepath.Join(root, "playground")
	for _, need := range []string{"node_modules/playwright-core", "node_modules/livekit-client/dist"} {
		if _, err := os.Stat(filepath.Join(dir, need)); err != nil {
			return nil, fmt.Errorf("playground/%s missing (make playground-deps): %w", need, err)
		}
	}
	log, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", "bench/first-frame.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PLAYGROUND_URL="+playgroundURL)
	cmd.Stderr = log
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the page driver: %w", err)
	}
	b := &browser{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	b.out.Buffer(make([]byte, 0, 64*1024), 1<<20)
	var ready struct {
		Ready bool `json:"ready"`
	}
	if err := b.read(&ready); err != nil || !ready.Ready {
		b.close()
		return nil, fmt.Errorf("the page driver did not start (log %s): %v", logFile, err)
	}
	return b, nil
}

func (b *browser) read(into any) error {
	if !b.out.Scan() {
		if err := b.out.Err(); err != nil {
			return err
		}
		return io.ErrUnexpectedEOF
	}
	return json.Unmarshal(b.out.Bytes(), into)
}

// session has the page create a session through apiURL, waits for its first avatar frame and ends it.
func (b *browser) session(apiURL string) (frameSample, error) {
	req, _ := json.Marshal(map[string]string{"api_url": apiURL})
	if _, err := b.in.Write(append(req, '\n')); err != nil {
		return frameSample{}, err
	}
	var answer struct {
		SessionID string      `json:"session_id"`
		Timings   pageTimings `json:"timings"`
		Error     string      `json:"error"`
	}
	if err := b.read(&answer); err != nil {
		return frameSample{}, fmt.Errorf("page driver: %w", err)
	}
	if answer.Error != "" {
		return frameSample{}, errors.New(answer.Error)
	}
	t := answer.Timings
	if t.Created == nil || t.Connected == nil || t.AgentJoined == nil || t.AvatarTrack == nil || t.FirstAvatarFrame == nil {
		return frameSample{}, fmt.Errorf("session %s: incomplete page timings %+v", answer.SessionID, t)
	}
	since := func(at float64) time.Duration { return time.Duration((at - t.Post) * float64(time.Millisecond)) }
	return frameSample{
		sessionID: answer.SessionID, createRoom: since(*t.Created), connected: since(*t.Connected),
		agentSeen: since(*t.AgentJoined), avatarTrack: since(*t.AvatarTrack), firstFrame: since(*t.FirstAvatarFrame),
	}, nil
}

func (b *browser) close() {
	b.in.Close()
	done := make(chan error, 1)
	go func() { done <- b.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
	}
}
