// Command api is the student API Lambda: it only wires configuration, AWS clients and the shared
// handler behind the API Gateway HTTP API (payload v2) adapter.
package main

import (
	"context"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"counselvideo/shared/app"
	"counselvideo/shared/config"
	"counselvideo/shared/logging"
)

func main() {
	initStart := time.Now()
	ctx := context.Background()
	cfg, err := config.Load(config.API, os.Getenv)
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
		handler, err = app.NewAPIHandler(ctx, cfg, awsCfg, app.Deps{Log: log}, apiGatewayRequestID)
	}
	if err != nil {
		log.Error("cold start failed", "error", err.Error())
		os.Exit(1)
	}
	log.Info("cold start complete", "init_ms", float64(time.Since(initStart).Microseconds())/1000)
	lambda.Start(httpadapter.NewV2(handler).ProxyWithContext)
}

// apiGatewayRequestID is the id API Gateway returns to the caller (apigw-requestid), so a student's
// report can be matched to our logs.
func apiGatewayRequestID(r *http.Request) string {
	if rc, ok := core.GetAPIGatewayV2ContextFromContext(r.Context()); ok {
		return rc.RequestID
	}
	return ""
}
