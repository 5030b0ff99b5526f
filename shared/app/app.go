// Package app wires configuration into working components. The Lambda mains and the local dev stack
// call the same constructors; only the launcher and endpoints differ between them.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/google/uuid"

	"counselvideo/shared/agents"
	"counselvideo/shared/auth"
	"counselvideo/shared/categories"
	"counselvideo/shared/config"
	"counselvideo/shared/httpapi"
	"counselvideo/shared/logging"
	"counselvideo/shared/metrics"
	"counselvideo/shared/rooms"
	"counselvideo/shared/service"
	"counselvideo/shared/sessions"
)

// AWSConfig loads the SDK configuration: region and credentials from the environment, endpoints from
// AWS_ENDPOINT_URL_<SERVICE> when set, standard retries with a bounded attempt count.
func AWSConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 3 })
	}))
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	return cfg, nil
}

// ResolveLiveKitSecret fills cfg.LiveKit.APISecret from Secrets Manager when only the ARN is set. The
// secret is either the plain API secret or JSON with an "api_secret" key.
func ResolveLiveKitSecret(ctx context.Context, cfg *config.Config, awsCfg aws.Config) error {
	if cfg.LiveKit.APISecret != "" || cfg.LiveKit.APISecretARN == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := secretsmanager.NewFromConfig(awsCfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &cfg.LiveKit.APISecretARN})
	if err != nil {
		return fmt.Errorf("read LIVEKIT_API_SECRET_ARN: %w", err)
	}
	secret, err := secretValue(aws.ToString(out.SecretString), "api_secret")
	if err != nil {
		return fmt.Errorf("LIVEKIT_API_SECRET_ARN: %w", err)
	}
	if secret == "" {
		return fmt.Errorf("LIVEKIT_API_SECRET_ARN: secret is empty")
	}
	cfg.LiveKit.APISecret = secret
	return nil
}

// secretValue returns a plain secret as is, or the string field key of a JSON object. Anything else
// that looks like JSON is refused: it must never become the HMAC key itself. Errors never quote it.
func secretValue(raw, key string) (string, error) {
	raw = strings.TrimSpace(raw)
	if !strings.HasPrefix(raw, "{") {
		return raw, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &fields); err != nil {
		return "", errors.New("secret looks like JSON but is not a valid JSON object")
	}
	field, ok := fields[key]
	if !ok {
		return "", fmt.Errorf("secret is a JSON object without the %q field", key)
	}
	var v any
	_ = json.Unmarshal(field, &v) // valid JSON: it came out of a parsed object
	secret, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("secret field %q is not a string", key)
	}
	return secret, nil
}

// Launcher builds the configured agent launcher. The process launcher is only built by the dev stack,
// which owns the child processes, so here it is an error.
func Launcher(cfg config.Config, awsCfg aws.Config) (agents.Launcher, error) {
	switch cfg.Agent.Launcher {
	case config.LauncherECS:
		return agents.NewECSLauncher(ecs.NewFromConfig(awsCfg), cfg.Agent.ECS), nil
	default:
		return nil, fmt.Errorf("AGENT_LAUNCHER=%s needs a launcher supplied by the caller", cfg.Agent.Launcher)
	}
}

// Deps lets the caller (tests, dev stack) replace components; nil fields are built from cfg.
type Deps struct {
	Launcher agents.Launcher
	Log      *slog.Logger
	// Metrics records the functions' metrics (the Lambda mains: EMF lines on stdout; nil: none).
	Metrics *metrics.Recorder
	// JWKSURL, when set, is where the API fetches the Cognito keys instead of the issuer (tests put a
	// proxy there that they can stop and slow down).
	JWKSURL string
}

// NewService builds the domain service from configuration.
func NewService(cfg config.Config, awsCfg aws.Config, deps Deps) (*service.Service, error) {
	launcher := deps.Launcher
	if launcher == nil {
		var err error
		if launcher, err = Launcher(cfg, awsCfg); err != nil {
			return nil, err
		}
	}
	db := dynamodb.NewFromConfig(awsCfg)
	lk := cfg.LiveKit
	roomClient := rooms.NewClient(lk.URL, lk.APIKey, lk.APISecret)
	var poolWait time.Duration
	if cfg.Agent.PoolAgentName != "" {
		launcher = agents.NewPool(roomClient, launcher, cfg.Agent.PoolAgentName, cfg.Agent.PoolJoinTimeout, deps.Log)
		poolWait = cfg.Agent.PoolJoinTimeout + agents.DispatchDeleteTimeout
	}
	// A session flagged for a safety concern may run SafetyGrace past its maximum: its lock holds as long.
	lockTTL := cfg.SessionMaxDuration + cfg.SafetyGrace + 10*time.Minute
	return &service.Service{
		Categories: categories.NewCached(categories.NewDynamoStore(db, cfg.CategoriesTable)),
		Sessions:   sessions.NewDynamoStore(db, cfg.SessionsTable),
		Rooms:      roomClient,
		Agents:     launcher,
		PoolWait:   poolWait,
		MintToken: func(room, identity, name string, ttl time.Duration) (string, error) {
			return rooms.StudentToken(lk.APIKey, lk.APISecret, room, identity, name, ttl)
		},
		PublicURL:   lk.PublicURL,
		TokenTTL:    cfg.StudentTokenTTL,
		LockTTL:     lockTTL,
		MaxDuration: cfg.SessionMaxDuration,
		Limits: sessions.Limits{
			DailySessions:   cfg.Limits.StudentDailySessions,
			DailyMinutes:    cfg.Limits.StudentDailyMinutes,
			MaxOpenSessions: cfg.Limits.MaxOpenSessions,
		},
		Metrics: deps.Metrics,
		Log:     deps.Log,
		NewID:   uuid.NewString,
	}, nil
}

// NewAPIHandler builds the student API's http.Handler.
func NewAPIHandler(ctx context.Context, cfg config.Config, awsCfg aws.Config, deps Deps, requestID func(*http.Request) string) (http.Handler, error) {
	svc, err := NewService(cfg, awsCfg, deps)
	if err != nil {
		return nil, err
	}
	verifier, err := auth.NewVerifier(ctx, cfg.Cognito, auth.Options{JWKSURL: deps.JWKSURL})
	if err != nil {
		return nil, err
	}
	api := &httpapi.API{Service: svc, Auth: verifier, Log: deps.Log, AllowedOrigins: cfg.CORSAllowedOrigins, RequestIDFrom: requestID}
	return api.Handler(), nil
}

// Boot is every Lambda's cold start: read and validate fn's environment, set up JSON logs, load the
// AWS configuration and resolve the LiveKit secret. The logger is usable even when err is not nil.
func Boot(ctx context.Context, fn config.Function) (config.Config, aws.Config, *slog.Logger, error) {
	cfg, err := config.Load(fn, os.Getenv)
	log := logging.New(os.Stdout, cfg.LogLevel)
	if err != nil {
		return cfg, aws.Config{}, log, err
	}
	awsCfg, err := AWSConfig(ctx)
	if err == nil {
		err = ResolveLiveKitSecret(ctx, &cfg, awsCfg)
	}
	return cfg, awsCfg, log, err
}
