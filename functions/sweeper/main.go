// Command sweeper is the scheduled Lambda that closes sessions whose webhooks were lost, that ran too
// long, or whose agent never joined. It only wires configuration and AWS clients to shared/sweeper.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"counselvideo/functions/internal/edge"
	"counselvideo/shared/app"
	"counselvideo/shared/config"
	"counselvideo/shared/logging"
	"counselvideo/shared/metrics"
	"counselvideo/shared/sweeper"
)

func main() {
	ctx := context.Background()
	cfg, awsCfg, log, err := app.Boot(ctx, config.Sweeper)
	edge.ExitIf(log, err)
	sw, err := app.NewSweeper(cfg, awsCfg, app.Deps{Log: log, Metrics: metrics.New(os.Stdout, cfg.StackName)})
	edge.ExitIf(log, err)
	// The schedule's event carries nothing the sweeper needs. Failures of single sessions are in the
	// report of a successful invocation; only a run that could examine nothing returns an error (a
	// failed invocation is retried by the scheduler and would overlap the next run).
	lambda.Start(func(ctx context.Context) (sweeper.Report, error) {
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			ctx = logging.With(ctx, log, "request_id", lc.AwsRequestID)
		}
		return sw.Run(ctx)
	})
}
