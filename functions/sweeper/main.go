// Command sweeper is the scheduled Lambda that closes sessions whose webhooks were lost, that ran too
// long, or whose agent never joined. It only wires configuration and AWS clients to shared/sweeper.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"counselvideo/shared/app"
	"counselvideo/shared/config"
	"counselvideo/shared/logging"
	"counselvideo/shared/sweeper"
)

func main() {
	ctx := context.Background()
	cfg, err := config.Load(config.Sweeper, os.Getenv)
	log := logging.New(os.Stdout, cfg.LogLevel)
	if err != nil {
		log.Error("cold start failed", "error", err.Error())
		os.Exit(1)
	}
	awsCfg, err := app.AWSConfig(ctx)
	if err == nil {
		err = app.ResolveLiveKitSecret(ctx, &cfg, awsCfg)
	}
	var sw *sweeper.Sweeper
	if err == nil {
		sw, err = app.NewSweeper(cfg, awsCfg, app.Deps{Log: log})
	}
	if err != nil {
		log.Error("cold start failed", "error", err.Error())
		os.Exit(1)
	}
	// The schedule's event carries nothing the sweeper needs.
	lambda.Start(func(ctx context.Context) (sweeper.Report, error) {
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			ctx = logging.With(ctx, log, "request_id", lc.AwsRequestID)
		}
		return sw.Run(ctx)
	})
}
