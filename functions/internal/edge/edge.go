// Package edge holds what only the Lambda entry points do: the API Gateway adapter (kept here, at the
// edge, so the archived aws-lambda-go-api-proxy can be swapped without touching shared code) and the
// exit on a failed cold start.
package edge

import (
	"log/slog"
	"net/http"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

// APIGatewayRequestID is the id API Gateway returns to the caller (apigw-requestid), so a student's
// report can be matched to our logs.
func APIGatewayRequestID(r *http.Request) string {
	if rc, ok := core.GetAPIGatewayV2ContextFromContext(r.Context()); ok {
		return rc.RequestID
	}
	return ""
}

// ServeHTTP runs h behind the HTTP API (payload v2) adapter, which also decodes base64 bodies.
func ServeHTTP(h http.Handler) {
	lambda.Start(httpadapter.NewV2(h).ProxyWithContext)
}

// ExitIf logs a failed cold start and exits, so Lambda reports an init error instead of serving.
func ExitIf(log *slog.Logger, err error) {
	if err != nil {
		log.Error("cold start failed", "error", err.Error())
		os.Exit(1)
	}
}
