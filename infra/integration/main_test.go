// Package integration runs the backend over the wire against real local components: livekit-server,
// DynamoDB Local and cognito-local, started once for the package; ECS is a wire-level double.
package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"counselvideo/infra/ecsdouble"
	"counselvideo/infra/localstack"
	"counselvideo/infra/seed"
	"counselvideo/shared/categories"
)

const (
	sessionsTable   = "it-sessions"
	categoriesTable = "it-categories"
	password        = "Passw0rd!local"
)

// env is the package-wide stack.
var env struct {
	stack      *localstack.Stack
	ecs        *ecsdouble.Server
	pool       localstack.UserPool
	cats       []categories.Category
	webhooks   *swappableHandler // livekit-server posts here; tests install the webhook handler
	webhookURL string
}

// swappableHandler lets tests install the handler livekit-server's webhooks reach.
type swappableHandler struct {
	mu sync.RWMutex
	h  http.Handler
}

func (s *swappableHandler) Set(h http.Handler) { s.mu.Lock(); s.h = h; s.mu.Unlock() }
func (s *swappableHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	h := s.h
	s.mu.RUnlock()
	if h == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.ServeHTTP(w, r)
}

func TestMain(m *testing.M) {
	if os.Getenv(fakeAgentEnv) == "1" { // this binary started as an agent process (agentloss_test.go)
		os.Exit(runFakeAgent())
	}
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration setup failed:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	env.webhooks = &swappableHandler{}
	hooks := httptest.NewServer(env.webhooks)
	defer hooks.Close()
	env.webhookURL = hooks.URL + "/livekit/webhook"

	logDir := os.Getenv("INTEGRATION_LOG_DIR")
	if logDir == "" {
		logDir, _ = os.MkdirTemp("", "counselvideo-it-")
	}
	stack, err := localstack.Start(ctx, localstack.Options{LogDir: logDir, WebhookURLs: []string{env.webhookURL}})
	if err != nil {
		return 0, err
	}
	defer stack.Stop()
	env.stack = stack
	if err := stack.DynamoDB.CreateTables(ctx, sessionsTable, categoriesTable); err != nil {
		return 0, err
	}
	list, err := seed.Load(filepath.Join(stack.Paths.Root, "infra", "seed", "categories.json"))
	if err != nil {
		return 0, err
	}
	if err := seed.Seed(ctx, categories.NewDynamoStore(stack.DynamoDB.Client, categoriesTable), list); err != nil {
		return 0, err
	}
	env.cats = list
	if env.pool, err = stack.Cognito.CreatePool(ctx, "it"); err != nil {
		return 0, err
	}
	env.ecs = ecsdouble.New()
	defer env.ecs.Close()

	// The code under test finds its AWS endpoints the standard way.
	for k, v := range map[string]string{
		"AWS_REGION": localstack.Region, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
		"AWS_ENDPOINT_URL_DYNAMODB": stack.DynamoDB.Endpoint, "AWS_ENDPOINT_URL_ECS": env.ecs.URL,
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		os.Setenv(k, v)
	}
	return m.Run(), nil
}

// enabledCategory returns a seeded enabled category; disabledCategory a seeded disabled one.
func enabledCategory(t *testing.T) categories.Category {
	t.Helper()
	for _, c := range env.cats {
		if c.Enabled {
			return c
		}
	}
	t.Fatal("no enabled category seeded")
	return categories.Category{}
}

func disabledCategory(t *testing.T) categories.Category {
	t.Helper()
	for _, c := range env.cats {
		if !c.Enabled {
			return c
		}
	}
	t.Fatal("the seed file has no disabled category to test with")
	return categories.Category{}
}
