// Command api is the student API Lambda: it only wires configuration, AWS clients and the shared
// handler behind the API Gateway HTTP API adapter.
package main

import (
	"context"
	"net/http"
	"os"
	"time"

	"counselvideo/functions/internal/edge"
	"counselvideo/shared/app"
	"counselvideo/shared/config"
	"counselvideo/shared/metrics"
)

func main() {
	initStart := time.Now()
	ctx := context.Background()
	cfg, awsCfg, log, err := app.Boot(ctx, config.API)
	edge.ExitIf(log, err)
	var handler http.Handler
	handler, err = app.NewAPIHandler(ctx, cfg, awsCfg, app.Deps{Log: log, Metrics: metrics.New(os.Stdout, cfg.StackName)}, edge.APIGatewayRequestID)
	edge.ExitIf(log, err)
	log.Info("cold start complete", "init_ms", float64(time.Since(initStart).Microseconds())/1000)
	edge.ServeHTTP(handler)
}
