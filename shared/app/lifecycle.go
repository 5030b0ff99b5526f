package app

import (
	"log/slog"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"counselvideo/shared/agents"
	"counselvideo/shared/config"
	"counselvideo/shared/rooms"
	"counselvideo/shared/sessions"
	"counselvideo/shared/sweeper"
	"counselvideo/shared/webhook"
)

// lifecycleDeps builds the webhook's and the sweeper's launcher. Both stop agents; only the webhook
// starts one (a lost agent's replacement), through the pool when cfg names one (only the webhook's
// configuration reads it), else cold.
func lifecycleDeps(cfg config.Config, awsCfg aws.Config, deps Deps) (agents.Launcher, *slog.Logger, error) {
	launcher := deps.Launcher
	if launcher == nil {
		var err error
		if launcher, err = Launcher(cfg, awsCfg); err != nil {
			return nil, nil, err
		}
	}
	log := deps.Log
	if log == nil {
		log = slog.Default()
	}
	// The API's warm pool records "pool:" task ids: stopping one deletes its dispatch, never StopTask.
	lk := cfg.LiveKit
	launcher = agents.NewPool(rooms.NewClient(lk.URL, lk.APIKey, lk.APISecret), launcher, cfg.Agent.PoolAgentName, cfg.Agent.PoolJoinTimeout, log)
	return launcher, log, nil
}

// NewWebhookHandler builds the handler of POST /livekit/webhook (config.Webhook). requestID extracts
// the platform's request id (nil: a random id per request). Its launcher stops closed sessions' agents
// and starts the replacement of one lost mid-session: the API's (deps.Launcher, or the one Launcher
// builds from the same variables).
func NewWebhookHandler(cfg config.Config, awsCfg aws.Config, deps Deps, requestID func(*http.Request) string) (*webhook.Handler, error) {
	launcher, log, err := lifecycleDeps(cfg, awsCfg, deps)
	if err != nil {
		return nil, err
	}
	lk := cfg.LiveKit
	h := webhook.New(lk.APIKey, lk.APISecret,
		sessions.NewDynamoStore(dynamodb.NewFromConfig(awsCfg), cfg.SessionsTable),
		rooms.NewClient(lk.URL, lk.APIKey, lk.APISecret), launcher, log)
	h.RequestIDFrom = requestID
	h.Metrics = deps.Metrics
	h.MaxDuration = cfg.SessionMaxDuration
	return h, nil
}

// NewSweeper builds the sweeper (config.Sweeper): call Run on a schedule.
func NewSweeper(cfg config.Config, awsCfg aws.Config, deps Deps) (*sweeper.Sweeper, error) {
	launcher, log, err := lifecycleDeps(cfg, awsCfg, deps)
	if err != nil {
		return nil, err
	}
	lk := cfg.LiveKit
	return &sweeper.Sweeper{
		Sessions:         sessions.NewDynamoStore(dynamodb.NewFromConfig(awsCfg), cfg.SessionsTable),
		Rooms:            rooms.NewClient(lk.URL, lk.APIKey, lk.APISecret),
		Agents:           launcher,
		Log:              log,
		Metrics:          deps.Metrics,
		MaxDuration:      cfg.SessionMaxDuration,
		SafetyGrace:      cfg.SafetyGrace,
		AgentJoinTimeout: cfg.AgentJoinTimeout,
	}, nil
}
