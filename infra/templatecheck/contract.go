package templatecheck

import (
	"counselvideo/shared/config"
	"counselvideo/shared/httpapi"
)

// The deployment's side of the contracts. What the Go code defines (required variables, tables) is
// read from the code itself (config.RequiredVars, dynamotables); what only docs/architecture.md and
// the issue define (logical ids, routes, the agent's variables) is listed here, once.

// Functions maps each SAM function (its logical id is also its Makefile target build-<id>) to the
// binary's configuration contract.
var Functions = map[string]config.Function{
	"ApiFunction":     config.API,
	"WebhookFunction": config.Webhook,
	"SweeperFunction": config.Sweeper,
}

// Route is one HTTP API route.
type Route struct {
	Function, Method, Path string
	Authorized             bool // Cognito JWT authorizer on the route
}

// Routes are the HTTP API's routes: the student API's own route table (all behind the Cognito
// authorizer) and the LiveKit webhook (no authorizer).
var Routes = func() []Route {
	var out []Route
	for _, r := range httpapi.Routes() {
		out = append(out, Route{"ApiFunction", r.Method, r.Path, true})
	}
	return append(out, Route{"WebhookFunction", "POST", "/livekit/webhook", false})
}()

// SweeperSchedule is the sweeper's schedule expression.
const SweeperSchedule = "rate(1 minute)"

// Agent task definition contract (docs/architecture.md, "Agent process contract").
var (
	// AgentEnv must be set as plain environment in the task definition.
	AgentEnv = []string{"LIVEKIT_URL", "CATEGORIES_TABLE", "AWS_REGION", "BEY_AVATAR_ID"}
	// AgentSecrets must come from Secrets Manager (task definition Secrets), never from Environment.
	AgentSecrets = []string{"LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "OPENAI_API_KEY", "BEY_API_KEY"}
)

// RequiredOutputs are the stack outputs the platform team's guide (docs/deploy.md) relies on.
var RequiredOutputs = []string{
	"ApiUrl", "WebhookUrl", "SessionsTableName", "CategoriesTableName", "AgentRepositoryUri",
}

// actionsWithoutResourceLevelPermissions may (must) use Resource "*": IAM cannot scope them.
var actionsWithoutResourceLevelPermissions = map[string]bool{
	"ecr:GetAuthorizationToken": true,
	// Its resource is a container instance (none for Fargate); CheckIAM requires the cluster condition.
	"ecs:ListTasks":            true,
	"xray:PutTraceSegments":    true,
	"xray:PutTelemetryRecords": true,
	"cloudwatch:PutMetricData": true,
}

// Read-only DynamoDB actions the agent's task role may hold on the categories table.
var dynamoReadActions = map[string]bool{
	"dynamodb:GetItem": true, "dynamodb:BatchGetItem": true, "dynamodb:Query": true,
	"dynamodb:Scan": true, "dynamodb:DescribeTable": true,
}

// What the agent's execution role may do: pull the image, read its secrets, write its logs.
var executionRoleActions = map[string]bool{
	"ecr:GetAuthorizationToken": true, "ecr:BatchCheckLayerAvailability": true,
	"ecr:GetDownloadUrlForLayer": true, "ecr:BatchGetImage": true,
	"secretsmanager:GetSecretValue": true, "kms:Decrypt": true,
	"logs:CreateLogStream": true, "logs:PutLogEvents": true,
}
