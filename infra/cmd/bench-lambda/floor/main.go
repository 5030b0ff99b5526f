// Command floor is the emulator floor of bench-lambda: a Lambda function on the same runtime library
// as the API that decodes the API Gateway event and answers 200 without calling anything. Its
// end-to-end latency under aws-lambda-rie is what every create-room measurement contains before the
// API does any work (the emulator's HTTP hops, the runtime API, event encoding).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"content-type": "application/json"}, Body: `{}`}, nil
	})
}
