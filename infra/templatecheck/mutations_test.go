package templatecheck

import (
	"strings"
	"testing"
)

// The checks can fail: each case breaks a fresh copy of the deployed template and expects the check
// to name the problem (and the real template to pass it).

func res(t *testing.T, tpl *Template, id string) map[string]any {
	t.Helper()
	r, ok := tpl.Resource(id)
	if !ok {
		t.Fatalf("resource %s not in the deployed template", id)
	}
	return r.Body
}

func props(t *testing.T, tpl *Template, id string) map[string]any {
	return asMap(res(t, tpl, id)["Properties"])
}

func param(t *testing.T, tpl *Template, name string) map[string]any {
	t.Helper()
	p, ok := asMap(tpl.Root["Parameters"])[name].(map[string]any)
	if !ok {
		t.Fatalf("parameter %s not in the template", name)
	}
	return p
}

func fnEnv(t *testing.T, tpl *Template, id string) map[string]any {
	return asMap(path(props(t, tpl, id), "Environment", "Variables"))
}

func agentContainerDef(t *testing.T, tpl *Template) map[string]any {
	return asMap(list(props(t, tpl, "AgentTaskDefinition")["ContainerDefinitions"])[0])
}

// dropAgentEnv removes a variable from the agent container's environment.
func dropAgentEnv(t *testing.T, tpl *Template, name string) { dropEnv(agentContainerDef(t, tpl), name) }

// dropEnv removes a variable from a container definition's environment.
func dropEnv(c map[string]any, name string) {
	var kept []any
	for _, e := range list(c["Environment"]) {
		if str(asMap(e)["Name"]) != name {
			kept = append(kept, e)
		}
	}
	c["Environment"] = kept
}

// policyStatements returns the statement list of a role's inline policy.
func policyStatements(t *testing.T, tpl *Template, role, policy string) []any {
	t.Helper()
	for _, p := range list(props(t, tpl, role)["Policies"]) {
		if str(asMap(p)["PolicyName"]) == policy {
			return list(path(p, "PolicyDocument", "Statement"))
		}
	}
	t.Fatalf("%s has no policy %s", role, policy)
	return nil
}

func statementWithAction(t *testing.T, tpl *Template, role, policy, action string) map[string]any {
	t.Helper()
	for _, s := range policyStatements(t, tpl, role, policy) {
		for _, a := range list(asMap(s)["Action"]) {
			if a == action {
				return asMap(s)
			}
		}
	}
	t.Fatalf("%s/%s has no statement with %s", role, policy, action)
	return nil
}

func route(t *testing.T, tpl *Template, method, pth string) map[string]any {
	t.Helper()
	op := asMap(path(props(t, tpl, "HttpApi"), "Body", "paths", pth, method))
	if len(op) == 0 {
		t.Fatalf("no route %s %s in the HTTP API body", method, pth)
	}
	return op
}

func rule(t *testing.T, tpl *Template, name string) map[string]any {
	t.Helper()
	r, ok := asMap(tpl.Root["Rules"])[name].(map[string]any)
	if !ok {
		t.Fatalf("rule %s not in the template", name)
	}
	return r
}

func TestChecksDetectBrokenTemplates(t *testing.T) {
	cases := []mutation{
		{"required variable missing", func(t *testing.T, tpl *Template) {
			delete(fnEnv(t, tpl, "SweeperFunction"), "SESSIONS_TABLE")
		}, ignoreSchema(CheckEnvironment), "SweeperFunction: environment variable SESSIONS_TABLE is required"},
		{"API-only variable missing", func(t *testing.T, tpl *Template) {
			delete(fnEnv(t, tpl, "ApiFunction"), "AGENT_SUBNETS")
		}, ignoreSchema(CheckEnvironment), "ApiFunction: environment variable AGENT_SUBNETS"},
		{"no LiveKit secret at all", func(t *testing.T, tpl *Template) {
			delete(fnEnv(t, tpl, "WebhookFunction"), "LIVEKIT_API_SECRET_ARN")
		}, ignoreSchema(CheckEnvironment), "LIVEKIT_API_SECRET or LIVEKIT_API_SECRET_ARN"},
		{"secret value in a function's environment", func(t *testing.T, tpl *Template) {
			fnEnv(t, tpl, "WebhookFunction")["LIVEKIT_API_SECRET"] = map[string]any{"Ref": "LiveKitSecretArn"}
		}, ignoreSchema(CheckEnvironment), "LIVEKIT_API_SECRET puts a secret"},
		{"process launcher deployed", func(t *testing.T, tpl *Template) {
			fnEnv(t, tpl, "ApiFunction")["AGENT_LAUNCHER"] = "process"
		}, ignoreSchema(CheckEnvironment), "AGENT_LAUNCHER must be"},
		{"variable the code never reads", func(t *testing.T, tpl *Template) {
			fnEnv(t, tpl, "ApiFunction")["STUDENT_TOKEN_TTL"] = "900"
		}, ignoreSchema(CheckEnvironment), "STUDENT_TOKEN_TTL is set but config.Load"},
		{"container name drifts from the task definition", func(t *testing.T, tpl *Template) {
			fnEnv(t, tpl, "ApiFunction")["AGENT_CONTAINER_NAME"] = "avatar"
		}, ignoreSchema(CheckEnvironment), "AGENT_CONTAINER_NAME"},

		{"agent variable the agent does not read", func(t *testing.T, tpl *Template) {
			c := agentContainerDef(t, tpl)
			c["Environment"] = append(list(c["Environment"]), map[string]any{"Name": "AGENT_MAX_DURATION", "Value": "60"})
		}, CheckAgentTask, "AGENT_MAX_DURATION is set but the agent's VARIABLES"},
		{"agent required variable missing", func(t *testing.T, tpl *Template) {
			dropAgentEnv(t, tpl, "BEY_AVATAR_ID")
		}, CheckAgentTask, "the agent requires BEY_AVATAR_ID"},
		{"agent secret as plain environment", func(t *testing.T, tpl *Template) {
			c := agentContainerDef(t, tpl)
			c["Environment"] = append(list(c["Environment"]), map[string]any{"Name": "OPENAI_API_KEY", "Value": "x"})
		}, CheckAgentTask, "OPENAI_API_KEY is a secret"},
		{"per-session variable in the task definition", func(t *testing.T, tpl *Template) {
			c := agentContainerDef(t, tpl)
			c["Environment"] = append(list(c["Environment"]), map[string]any{"Name": "ROOM_NAME", "Value": "x"})
		}, CheckAgentTask, "ROOM_NAME is set per session by the launcher"},
		{"worker-only variable in the direct entry's task definition", func(t *testing.T, tpl *Template) {
			c := agentContainerDef(t, tpl)
			c["Environment"] = append(list(c["Environment"]), map[string]any{"Name": "LIVEKIT_AGENT_NAME", "Value": "counselor"})
		}, CheckAgentTask, "LIVEKIT_AGENT_NAME is read only by the agent's worker entry"},
		{"agent task role writes", func(t *testing.T, tpl *Template) {
			s := asMap(policyStatements(t, tpl, "AgentTaskRole", "read-categories")[0])
			s["Action"] = append(list(s["Action"]), "dynamodb:PutItem")
		}, CheckAgentTask, "dynamodb:PutItem is extra"},
		{"agent task role reaches the sessions table", func(t *testing.T, tpl *Template) {
			s := asMap(policyStatements(t, tpl, "AgentTaskRole", "read-categories")[0])
			s["Resource"] = []any{s["Resource"], map[string]any{"Fn::GetAtt": []any{"SessionsTable", "Arn"}}}
		}, CheckAgentTask, "the agent may use it on the categories table only"},
		{"agent flag write on any item", func(t *testing.T, tpl *Template) {
			delete(asMap(statementWithAction(t, tpl, "AgentTaskRole", "flag-session", "dynamodb:UpdateItem")["Condition"]), "ForAllValues:StringLike")
		}, CheckAgentTask, `dynamodb:LeadingKeys ["session#*"]`},
		{"agent flag write on other attributes", func(t *testing.T, tpl *Template) {
			c := asMap(path(statementWithAction(t, tpl, "AgentTaskRole", "flag-session", "dynamodb:UpdateItem"), "Condition", "ForAllValues:StringEquals"))
			c["dynamodb:Attributes"] = append(list(c["dynamodb:Attributes"]), "status")
		}, CheckAgentTask, "may touch status"},
		{"agent flag write reads the whole session back", func(t *testing.T, tpl *Template) {
			c := asMap(path(statementWithAction(t, tpl, "AgentTaskRole", "flag-session", "dynamodb:UpdateItem"), "Condition", "StringEqualsIfExists"))
			c["dynamodb:ReturnValues"] = []any{"NONE", "ALL_NEW"}
		}, CheckAgentTask, "may return ALL_NEW"},
		{"agent flag write on the categories table", func(t *testing.T, tpl *Template) {
			statementWithAction(t, tpl, "AgentTaskRole", "flag-session", "dynamodb:UpdateItem")["Resource"] = map[string]any{"Fn::GetAtt": []any{"CategoriesTable", "Arn"}}
		}, CheckAgentTask, "the agent may use it on the sessions table only"},
		{"agent publishes anywhere", func(t *testing.T, tpl *Template) {
			statementWithAction(t, tpl, "AgentTaskRole", "alert-staff", "sns:Publish")["Resource"] = "*"
		}, CheckAgentTask, "the topic given as SAFETY_ALERT_TOPIC_ARN only"},
		{"agent publishes to another topic", func(t *testing.T, tpl *Template) {
			statementWithAction(t, tpl, "AgentTaskRole", "alert-staff", "sns:Publish")["Resource"] = map[string]any{"Ref": "AlarmTopicArn"}
		}, ignoreSchema(CheckIAM), "sns:Publish on map[Ref:AlarmTopicArn]; want the stack's SNS topics"},
		{"safety alerts unencrypted", func(t *testing.T, tpl *Template) {
			delete(props(t, tpl, "SafetyAlertTopic"), "KmsMasterKeyId")
		}, CheckAgentTask, "SafetyAlertTopic: the safety alerts must be encrypted at rest"},
		{"sweeper grace apart from the agent's", func(t *testing.T, tpl *Template) {
			fnEnv(t, tpl, "SweeperFunction")["SESSION_SAFETY_GRACE_SECONDS"] = map[string]any{"Ref": "SessionMaxDurationSeconds"}
		}, CheckAgentTask, "SweeperFunction: SESSION_SAFETY_GRACE_SECONDS must be !Ref the parameter"},
		{"agent flags another table", func(t *testing.T, tpl *Template) {
			for _, e := range list(agentContainerDef(t, tpl)["Environment"]) {
				if str(asMap(e)["Name"]) == "SESSIONS_TABLE" {
					asMap(e)["Value"] = map[string]any{"Ref": "CategoriesTable"}
				}
			}
		}, CheckAgentTask, "SESSIONS_TABLE must be !Ref SessionsTable"},
		{"x86 agent", func(t *testing.T, tpl *Template) {
			asMap(props(t, tpl, "AgentTaskDefinition")["RuntimePlatform"])["CpuArchitecture"] = "X86_64"
		}, CheckAgentTask, "ARM64"},

		{"session limit above what the agent accepts", func(t *testing.T, tpl *Template) {
			param(t, tpl, "SessionMaxDurationSeconds")["MaxValue"] = 604800.0
		}, CheckDurations, "reaches the agent per session as AGENT_MAX_DURATION_SECONDS, which the agent accepts only as whole seconds from 1 to 86400"},
		{"join timeout above what shared/config accepts", func(t *testing.T, tpl *Template) {
			param(t, tpl, "AgentJoinTimeoutSeconds")["MaxValue"] = 700000.0
		}, CheckDurations, "AGENT_JOIN_TIMEOUT_SECONDS=700000 is refused by config.Load"},
		{"unbounded duration", func(t *testing.T, tpl *Template) {
			delete(param(t, tpl, "StudentTokenTtlSeconds"), "MaxValue")
		}, CheckDurations, "StudentTokenTtlSeconds: a duration or limit needs MinValue and MaxValue"},

		{"rule allows a pair Fargate refuses", func(t *testing.T, tpl *Template) {
			a := asMap(list(rule(t, tpl, "FargateMemoryFor512Cpu")["Assertions"])[0])
			asMap(a["Assert"])["Fn::Contains"] = []any{[]any{"512", "1024", "2048", "3072", "4096"}, map[string]any{"Ref": "AgentMemory"}}
		}, ignoreSchema(CheckFargateRules), "AgentCpu=512 AgentMemory=512 is not a Fargate size, but no rule refuses it"},
		{"rule for one CPU size missing", func(t *testing.T, tpl *Template) {
			delete(asMap(tpl.Root["Rules"]), "FargateMemoryFor2048Cpu")
		}, ignoreSchema(CheckFargateRules), "AgentCpu=2048 AgentMemory=2048 is not a Fargate size"},
		{"rule refuses a valid pair", func(t *testing.T, tpl *Template) {
			a := asMap(list(rule(t, tpl, "FargateMemoryFor1024Cpu")["Assertions"])[0])
			asMap(a["Assert"])["Fn::Contains"] = []any{[]any{"2048"}, map[string]any{"Ref": "AgentMemory"}}
		}, ignoreSchema(CheckFargateRules), "AgentCpu=1024 AgentMemory=4096 is a valid Fargate size, but the rules refuse it"},

		{"index key drifts from shared/dynamotables", func(t *testing.T, tpl *Template) {
			for _, g := range list(props(t, tpl, "SessionsTable")["GlobalSecondaryIndexes"]) {
				if asMap(g)["IndexName"] == "open_sessions" {
					asMap(list(asMap(g)["KeySchema"])[0])["AttributeName"] = "status"
				}
			}
		}, ignoreSchema(CheckTables), `index "open_sessions"`},
		{"index missing", func(t *testing.T, tpl *Template) {
			props(t, tpl, "SessionsTable")["GlobalSecondaryIndexes"] = list(props(t, tpl, "SessionsTable")["GlobalSecondaryIndexes"])[:1]
		}, ignoreSchema(CheckTables), "missing"},
		{"hash key renamed", func(t *testing.T, tpl *Template) {
			asMap(list(props(t, tpl, "CategoriesTable")["KeySchema"])[0])["AttributeName"] = "id"
		}, ignoreSchema(CheckTables), "KeySchema"},
		{"TTL dropped", func(t *testing.T, tpl *Template) {
			delete(props(t, tpl, "SessionsTable"), "TimeToLiveSpecification")
		}, ignoreSchema(CheckTables), "TimeToLiveSpecification"},
		{"deletion protection hard-coded off", func(t *testing.T, tpl *Template) {
			props(t, tpl, "SessionsTable")["DeletionProtectionEnabled"] = false
		}, ignoreSchema(CheckTables), "DeletionProtectionEnabled"},

		{"table retained even when its create rolls back", func(t *testing.T, tpl *Template) {
			res(t, tpl, "SessionsTable")["DeletionPolicy"] = "Retain"
		}, ignoreSchema(CheckRetention), "SessionsTable: DeletionPolicy is \"Retain\", want RetainExceptOnCreate"},
		{"user pool replaced without a copy", func(t *testing.T, tpl *Template) {
			delete(res(t, tpl, "UserPool"), "UpdateReplacePolicy")
		}, ignoreSchema(CheckRetention), "UserPool: UpdateReplacePolicy"},
		{"repository deleted with the stack", func(t *testing.T, tpl *Template) {
			res(t, tpl, "AgentRepository")["DeletionPolicy"] = "Delete"
		}, ignoreSchema(CheckRetention), "AgentRepository: DeletionPolicy"},

		{"mutable tags", func(t *testing.T, tpl *Template) {
			props(t, tpl, "AgentRepository")["ImageTagMutability"] = "MUTABLE"
		}, ignoreSchema(CheckImageRepository), "ImageTagMutability"},
		{"lifecycle expires tagged images", func(t *testing.T, tpl *Template) {
			asMap(props(t, tpl, "AgentRepository")["LifecyclePolicy"])["LifecyclePolicyText"] =
				`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":20},"action":{"type":"expire"}}]}`
		}, ignoreSchema(CheckImageRepository), `expires "any" images`},
		{"latest as the default tag", func(t *testing.T, tpl *Template) {
			param(t, tpl, "AgentImageTag")["Default"] = "latest"
		}, ignoreSchema(CheckImageRepository), "no default"},
		{"tag pattern admits latest", func(t *testing.T, tpl *Template) {
			param(t, tpl, "AgentImageTag")["AllowedPattern"] = "^[A-Za-z0-9_.-]+$"
		}, ignoreSchema(CheckImageRepository), "must refuse latest"},
		{"image from elsewhere", func(t *testing.T, tpl *Template) {
			agentContainerDef(t, tpl)["Image"] = "public.ecr.aws/someone/agent:latest"
		}, ignoreSchema(CheckImageRepository), "must be !Sub"},

		{"Resource * on DynamoDB", func(t *testing.T, tpl *Template) {
			statementWithAction(t, tpl, "ApiFunctionRole", "tables", "dynamodb:PutItem")["Resource"] = "*"
		}, ignoreSchema(CheckIAM), `dynamodb:PutItem on Resource "*"`},
		{"wildcard action", func(t *testing.T, tpl *Template) {
			s := statementWithAction(t, tpl, "SweeperFunctionRole", "sessions", "dynamodb:Query")
			s["Action"] = append(list(s["Action"]), "dynamodb:*")
		}, ignoreSchema(CheckIAM), "wildcards"},
		{"RunTask on every task definition", func(t *testing.T, tpl *Template) {
			statementWithAction(t, tpl, "ApiFunctionRole", "agent-tasks", "ecs:RunTask")["Resource"] =
				map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition/*"}
		}, ignoreSchema(CheckIAM), "a task definition family of the stack only"},
		{"PassRole without PassedToService", func(t *testing.T, tpl *Template) {
			delete(statementWithAction(t, tpl, "ApiFunctionRole", "agent-tasks", "iam:PassRole"), "Condition")
		}, ignoreSchema(CheckIAM), "iam:PassedToService"},
		{"StopTask outside the cluster", func(t *testing.T, tpl *Template) {
			delete(statementWithAction(t, tpl, "WebhookFunctionRole", "agent-tasks", "ecs:StopTask"), "Condition")
		}, ignoreSchema(CheckIAM), "ecs:StopTask needs Condition ecs:cluster"},
		{"all secrets of the account", func(t *testing.T, tpl *Template) {
			statementWithAction(t, tpl, "WebhookFunctionRole", "livekit-secret", "secretsmanager:GetSecretValue")["Resource"] =
				map[string]any{"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*"}
		}, ignoreSchema(CheckIAM), "want the ARN parameters of the named secrets"},
		{"an action the design does not grant", func(t *testing.T, tpl *Template) {
			s := statementWithAction(t, tpl, "SweeperFunctionRole", "sessions", "dynamodb:Query")
			s["Action"] = append(list(s["Action"]), "sqs:SendMessage")
		}, ignoreSchema(CheckIAM), "sqs:SendMessage is not an action the design grants"},
		{"managed policy attached", func(t *testing.T, tpl *Template) {
			props(t, tpl, "ApiFunctionRole")["ManagedPolicyArns"] = []any{"arn:aws:iam::aws:policy/AdministratorAccess"}
		}, ignoreSchema(CheckIAM), "ManagedPolicyArns"},
		{"webhook granted the categories table", func(t *testing.T, tpl *Template) {
			s := asMap(policyStatements(t, tpl, "WebhookFunctionRole", "sessions")[0])
			s["Resource"] = append(list(s["Resource"]), map[string]any{"Fn::GetAtt": []any{"CategoriesTable", "Arn"}})
		}, ignoreSchema(CheckFunctionScopes), "WebhookFunction is not given"},

		{"secret value as a parameter", func(t *testing.T, tpl *Template) {
			asMap(tpl.Root["Parameters"])["OpenAIApiKey"] = map[string]any{"Type": "String", "NoEcho": true}
		}, ignoreSchema(CheckParameters), "OpenAIApiKey"},
		{"credential-shaped default", func(t *testing.T, tpl *Template) {
			param(t, tpl, "BeyAvatarId")["Default"] = "sk-proj-0123456789abcdefghijklmnop"
		}, ignoreSchema(CheckParameters), "looks like a credential"},
		{"secret ARN parameter accepts anything", func(t *testing.T, tpl *Template) {
			delete(param(t, tpl, "OpenAISecretArn"), "AllowedPattern")
		}, ignoreSchema(CheckParameters), "AllowedPattern"},

		{"log group without retention", func(t *testing.T, tpl *Template) {
			delete(props(t, tpl, "WebhookFunctionLogGroup"), "RetentionInDays")
		}, ignoreSchema(CheckLogging), "RetentionInDays"},
		{"function without its own log group", func(t *testing.T, tpl *Template) {
			delete(asMap(props(t, tpl, "SweeperFunction")["LoggingConfig"]), "LogGroup")
		}, ignoreSchema(CheckLogging), "SweeperFunction: log group"},
		{"text logs", func(t *testing.T, tpl *Template) {
			asMap(props(t, tpl, "ApiFunction")["LoggingConfig"])["LogFormat"] = "Text"
		}, ignoreSchema(CheckLogging), "LogFormat"},

		{"x86_64", func(t *testing.T, tpl *Template) {
			props(t, tpl, "WebhookFunction")["Architectures"] = []any{"x86_64"}
		}, ignoreSchema(CheckFunctions), "WebhookFunction: Architectures"},
		{"not built by the Makefile", func(t *testing.T, tpl *Template) {
			delete(res(t, tpl, "ApiFunction"), "Metadata")
		}, ignoreSchema(CheckFunctions), "BuildMethod"},
		{"SAM-generated role", func(t *testing.T, tpl *Template) {
			props(t, tpl, "SweeperFunction")["Role"] = map[string]any{"Fn::GetAtt": []any{"SweeperFunctionRoleGenerated", "Arn"}}
		}, ignoreSchema(CheckFunctions), "Role must be"},

		{"webhook behind the authorizer", func(t *testing.T, tpl *Template) {
			route(t, tpl, "post", "/livekit/webhook")["security"] = []any{map[string]any{"CognitoAuthorizer": []any{}}}
		}, ignoreSchema(CheckAPI), "route POST /livekit/webhook must have no authorizer"},
		{"student route without authorizer", func(t *testing.T, tpl *Template) {
			route(t, tpl, "post", "/api/v1/video/sessions/{session_id}/end")["security"] = []any{map[string]any{"NONE": []any{}}}
		}, ignoreSchema(CheckAPI), "must use the Cognito authorizer"},
		{"route integrated with the wrong function", func(t *testing.T, tpl *Template) {
			asMap(route(t, tpl, "get", "/api/v1/counselor-categories")["x-amazon-apigateway-integration"])["uri"] = map[string]any{
				"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${WebhookFunction.Arn}/invocations"}
		}, ignoreSchema(CheckAPI), `goes to "WebhookFunction"`},
		{"route not in the handler's table", func(t *testing.T, tpl *Template) {
			asMap(path(props(t, tpl, "HttpApi"), "Body", "paths"))["/api/v1/debug"] = map[string]any{"get": route(t, tpl, "get", "/api/v1/counselor-categories")}
		}, ignoreSchema(CheckAPI), "route GET /api/v1/debug is not in the route contract"},
		{"sweeper not scheduled", func(t *testing.T, tpl *Template) {
			props(t, tpl, "SweeperFunctionEveryMinute")["ScheduleExpression"] = "rate(1 hour)"
		}, ignoreSchema(CheckAPI), "schedule"},

		{"legacy create-room route left at the default throttling", func(t *testing.T, tpl *Template) {
			delete(asMap(props(t, tpl, "HttpApiApiGatewayDefaultStage")["RouteSettings"]), "POST /api/video/create-room")
		}, ignoreSchema(CheckThrottling), "route POST /api/video/create-room needs its own RouteSettings"},
		{"create-room throttled looser than the default", func(t *testing.T, tpl *Template) {
			param(t, tpl, "CreateRoomThrottlingBurstLimit")["Default"] = 100.0
		}, ignoreSchema(CheckThrottling), "route POST /api/v1/video/create-room is throttled at 10/s burst 100 by default, not below the stage default 50/s burst 100"},
		{"create-room throttling a literal", func(t *testing.T, tpl *Template) {
			asMap(asMap(props(t, tpl, "HttpApiApiGatewayDefaultStage")["RouteSettings"])["POST /api/v1/video/create-room"])["ThrottlingRateLimit"] = 5.0
		}, ignoreSchema(CheckThrottling), "RouteSettings POST /api/v1/video/create-room: ThrottlingRateLimit must be !Ref"},
		{"webhook sharing the default throttling", func(t *testing.T, tpl *Template) {
			delete(asMap(props(t, tpl, "HttpApiApiGatewayDefaultStage")["RouteSettings"]), "POST /livekit/webhook")
		}, ignoreSchema(CheckThrottling), "route POST /livekit/webhook needs its own RouteSettings"},
		{"route settings for a route that does not exist", func(t *testing.T, tpl *Template) {
			asMap(props(t, tpl, "HttpApiApiGatewayDefaultStage")["RouteSettings"])["POST /api/v1/video/createroom"] = map[string]any{}
		}, ignoreSchema(CheckThrottling), "RouteSettings for POST /api/v1/video/createroom, which is not a route"},
		{"daily limit above what shared/config accepts", func(t *testing.T, tpl *Template) {
			param(t, tpl, "StudentDailyMinutesLimit")["MaxValue"] = 2000.0
		}, CheckDurations, "STUDENT_DAILY_MINUTES_LIMIT=2000 is refused by config.Load"},
		{"Lambda filtering out the metric lines", func(t *testing.T, tpl *Template) {
			asMap(props(t, tpl, "ApiFunction")["LoggingConfig"])["ApplicationLogLevel"] = "WARN"
		}, ignoreSchema(CheckLogging), "ApiFunction: LoggingConfig.ApplicationLogLevel is \"WARN\""},
		{"agent task rule on any stop", func(t *testing.T, tpl *Template) {
			delete(asMap(path(props(t, tpl, "AgentTaskFailureRule"), "EventPattern", "detail")), "$or")
		}, ignoreSchema(CheckAgentTaskRule), "AgentTaskFailureRule: EventPattern detail"},
		{"agent task rule to another topic", func(t *testing.T, tpl *Template) {
			asMap(list(props(t, tpl, "AgentTaskFailureRule")["Targets"])[0])["Arn"] = map[string]any{"Ref": "AlarmTopicArn"}
		}, ignoreSchema(CheckAgentTaskRule), "its one target must be the alarm topic"},
		{"topic policy without EventBridge", func(t *testing.T, tpl *Template) {
			sts := list(path(props(t, tpl, "AlarmTopicPolicy"), "PolicyDocument", "Statement"))
			asMap(path(props(t, tpl, "AlarmTopicPolicy"), "PolicyDocument"))["Statement"] = sts[:1]
		}, ignoreSchema(CheckAgentTaskRule), "must let events.amazonaws.com publish"},
		{"webhook output missing", func(t *testing.T, tpl *Template) {
			delete(asMap(tpl.Root["Outputs"]), "WebhookUrl")
		}, ignoreSchema(CheckOutputs), "WebhookUrl"},
	}
	runMutations(t, cases)
}

func TestMakefileCheckDetectsMissingTarget(t *testing.T) {
	mk := readFile(t, "Makefile")
	broken := strings.Replace(mk, "build-SweeperFunction:", "build-Sweeper:", 1)
	if broken == mk {
		t.Fatal("Makefile has no build-SweeperFunction target to remove")
	}
	found := CheckMakefile(loadTemplate(t), broken)
	if len(found) == 0 || !strings.Contains(strings.Join(found, "\n"), "build-SweeperFunction") {
		t.Errorf("missing target not detected: %v", found)
	}
}

func TestSamConfigCheckDetectsProblems(t *testing.T) {
	text := readFile(t, "samconfig.toml")
	tpl := loadTemplate(t)
	for _, c := range []struct{ name, old, new, want string }{
		{"secret value instead of an ARN",
			`"LiveKitSecretArn=arn:aws:secretsmanager:eu-west-1:111122223333:secret:counselvideo/prod/livekit-AbCdEf"`,
			`"LiveKitSecretArn=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFy"`, "looks like a credential"},
		{"unknown parameter", `"LogLevel=info"`, `"LogLevl=info"`, "LogLevl is not a template parameter"},
		{"required parameter not given", `"BeyAvatarId=00000000-0000-0000-0000-000000000000",
  "AgentImageTag=0.1.0"`, `"AgentImageTag=0.1.0"`, "not given: BeyAvatarId"},
		{"value outside AllowedValues", `"AgentMemory=1024"`, `"AgentMemory=1000"`, "not one of"},
		{"a pair Fargate refuses", `"AgentMemory=1024"`, `"AgentMemory=512"`, "rule FargateMemoryFor512Cpu"},
		{"duration above its bound", `"LogLevel=info"`, `"LogLevel=info", "SessionMaxDurationSeconds=90000"`, "above MaxValue"},
		{"moving image tag", `"AgentImageTag=0.1.0"`, `"AgentImageTag=latest"`, "AgentImageTag=\"latest\": does not match"},
		{"pool minimum above its maximum", `"AgentPoolMaxWorkers=146"`, `"AgentPoolMaxWorkers=6"`,
			"[prod]: AgentPoolMinWorkers=8 is above AgentPoolMaxWorkers=6"},
		{"pool headroom above its maximum", `"AgentPoolHeadroom=1"`, `"AgentPoolHeadroom=5"`,
			"[dev]: AgentPoolHeadroom=5 is above AgentPoolMaxWorkers=4"},
		{"pool on with no worker", `"AgentPoolMinWorkers=1"`, `"AgentPoolMinWorkers=0"`,
			"rule AgentPoolOnNeedsAWorker"},
		{"public IP choice left to the default", `"AgentAssignPublicIp=DISABLED",
  "UseFargateSpot=false",
  "CognitoUserPoolId`, `"UseFargateSpot=false",
  "CognitoUserPoolId`, "[prod]: set AgentAssignPublicIp explicitly"},
	} {
		t.Run(c.name, func(t *testing.T) {
			broken := strings.Replace(text, c.old, c.new, 1)
			if broken == text {
				t.Fatalf("samconfig.toml does not contain %q", c.old)
			}
			cfg, err := ParseSamConfig([]byte(broken))
			if err != nil {
				t.Fatal(err)
			}
			found := CheckSamConfig(tpl, cfg)
			if !strings.Contains(strings.Join(found, "\n"), c.want) {
				t.Errorf("want a problem containing %q, got %q", c.want, found)
			}
		})
	}
}

// mutation breaks the real template one way; check must then report a problem containing want.
type mutation struct {
	name   string
	mutate func(t *testing.T, tpl *Template)
	check  Check
	want   string
}

// runMutations checks, per case, that the real template passes the check and the broken one does not.
func runMutations(t *testing.T, cases []mutation) {
	t.Helper()
	schema := loadSchema(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tpl := loadTemplate(t)
			if before := c.check(tpl, schema); len(before) > 0 {
				t.Fatalf("the real template already fails this check: %v", before)
			}
			c.mutate(t, tpl)
			found := c.check(tpl, schema)
			for _, p := range found {
				if strings.Contains(p, c.want) {
					return
				}
			}
			t.Errorf("mutation not detected: want a problem containing %q, got %q", c.want, found)
		})
	}
}
