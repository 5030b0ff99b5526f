package localstack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Stack is every shared local component, started together.
type Stack struct {
	Paths    Paths
	LogDir   string
	LiveKit  *LiveKit
	DynamoDB *DynamoDB
	Cognito  *Cognito
}

// Options choose what Start does beyond starting the components.
type Options struct {
	LogDir      string   // component logs; a temp dir when empty
	WebhookURLs []string // where livekit-server posts webhooks
}

// Start starts livekit-server, DynamoDB Local and cognito-local in parallel and waits until each
// answers. On error, whatever started is stopped.
func Start(ctx context.Context, opts Options) (*Stack, error) {
	paths, err := FindPaths()
	if err != nil {
		return nil, err
	}
	logDir := opts.LogDir
	if logDir == "" {
		if logDir, err = os.MkdirTemp("", "counselvideo-stack-"); err != nil {
			return nil, err
		}
	}
	s := &Stack{Paths: paths, LogDir: logDir}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	wg.Add(3)
	go func() {
		defer wg.Done()
		s.LiveKit, errs[0] = StartLiveKit(ctx, paths, filepath.Join(logDir, "livekit"), opts.WebhookURLs...)
	}()
	go func() { defer wg.Done(); s.DynamoDB, errs[1] = StartDynamoDB(ctx, paths, logDir) }()
	go func() { defer wg.Done(); s.Cognito, errs[2] = StartCognito(ctx, paths, logDir) }()
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			s.Stop()
			return nil, fmt.Errorf("start local stack: %w", e)
		}
	}
	return s, nil
}

// Stop ends every component that started.
func (s *Stack) Stop() {
	if s.LiveKit != nil {
		s.LiveKit.Stop()
	}
	if s.DynamoDB != nil {
		s.DynamoDB.Stop()
	}
	if s.Cognito != nil {
		s.Cognito.Stop()
	}
}
