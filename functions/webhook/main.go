// Command webhook is the LiveKit webhook Lambda (POST /livekit/webhook, no authorizer: LiveKit's
// signature is the authentication). It only wires configuration, AWS clients and the shared handler
// behind the API Gateway HTTP API adapter, which also decodes base64 bodies.
package main

import (
	"context"
	"os"

	"counselvideo/functions/internal/edge"
	"counselvideo/shared/app"
	"counselvideo/shared/config"
	"counselvideo/shared/metrics"
)

func main() {
	ctx := context.Background()
	cfg, awsCfg, log, err := app.Boot(ctx, config.Webhook)
	edge.ExitIf(log, err)
	handler, err := app.NewWebhookHandler(cfg, awsCfg, app.Deps{Log: log, Metrics: metrics.New(os.Stdout, cfg.StackName)}, edge.APIGatewayRequestID)
	edge.ExitIf(log, err)
	edge.ServeHTTP(handler)
}
