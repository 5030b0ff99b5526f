// Command webhook is the LiveKit webhook Lambda (POST /livekit/webhook, no authorizer: LiveKit's
// signature is the authentication). It only wires configuration, AWS clients and the shared handler
// behind the API Gateway HTTP API (payload v2) adapter, which also decodes base64 bodies.
package main

import (
	"context"
	"net/http"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"counselvideo/shared/app"
	"counselvideo/shared/config"
	"counselvideo/shared/logging"
)

func main() {
	ctx := context.Background()
	cfg, err := config.Load(config.Webhook, os.Getenv)
	log := logging.New(os.Stdout, cfg.LogLevel)
	if err != nil {
		log.Error("cold start failed", "error", err.Error())
		os.Exit(1)
	}
	awsCfg, err := app.AWSConfig(ctx)
	if err == nil {
		err = app.ResolveLiveKitSecret(ctx, &cfg, awsCfg)
	}
	var handler http.Handler
	if err == nil {
		handler, err = app.NewWebhookHandler(cfg, awsCfg, app.Deps{Log: log}, apiGatewayRequestID)
	}
	if err != nil {
		log.Error("cold start failed", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(httpadapter.NewV2(handler).ProxyWithContext)
}

func apiGatewayRequestID(r *http.Request) string {
	if rc, ok := core.GetAPIGatewayV2ContextFromContext(r.Context()); ok {
		return rc.RequestID
	}
	return ""
}
