package templatecheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func loadTemplate(t *testing.T) *Template {
	t.Helper()
	tpl, err := Load(filepath.Join(repoRoot(t), "template.yaml"))
	if err != nil {
		t.Fatalf("parse template.yaml: %v", err)
	}
	return tpl
}

func readFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func reportAll(t *testing.T, found []string) {
	t.Helper()
	for _, p := range found {
		t.Error(p)
	}
}

// TestTemplate runs every check on the real template.yaml.
func TestTemplate(t *testing.T) {
	tpl := loadTemplate(t)
	for name, check := range map[string]func(*Template) []string{
		"functions (runtime, arm64, bootstrap, makefile build, explicit role)": CheckFunctions,
		"environment contract (config.RequiredVars)":                           CheckEnvironment,
		"tables match shared/dynamotables":                                     CheckTables,
		"IAM least privilege":                                                  CheckIAM,
		"each function reaches only its own tables and secrets":                CheckFunctionScopes,
		"no secret values in parameters":                                       CheckParameters,
		"log groups with retention, JSON logs":                                 CheckLogging,
		"agent task definition and roles":                                      CheckAgentTask,
		"HTTP API, routes, authorizer, schedule":                               CheckAPI,
		"outputs":                                                              CheckOutputs,
	} {
		t.Run(name, func(t *testing.T) { reportAll(t, check(tpl)) })
	}
}

func TestMakefileHasBuildTargets(t *testing.T) {
	reportAll(t, CheckMakefile(loadTemplate(t), readFile(t, "Makefile")))
}

func TestSamConfig(t *testing.T) {
	c, err := ParseSamConfig([]byte(readFile(t, "samconfig.toml")))
	if err != nil {
		t.Fatalf("parse samconfig.toml: %v", err)
	}
	tpl := loadTemplate(t)
	reportAll(t, CheckSamConfig(tpl, c))
	// The list form of parameter_overrides must parse into every pair (values with commas included).
	ov := c.ParameterOverrides("dev")
	if !strings.Contains(ov["AgentSubnetIds"], ",") || ov["LiveKitSecretArn"] == "" {
		t.Errorf("parameter_overrides not parsed as expected: %v", ov)
	}
}

// TestShortTagsParse pins the YAML normalisation the checks rely on.
func TestShortTagsParse(t *testing.T) {
	tpl, err := Parse([]byte(`
A: !Ref X
B: !GetAtt R.Arn
C: !Sub "${R.Arn}/index/*"
D: !If [Cond, !Ref X, !Ref AWS::NoValue]
E: !Join [",", !Ref L]
F: 3
G: "true"
`))
	if err != nil {
		t.Fatal(err)
	}
	r := tpl.Root
	if x, _ := refTarget(r["A"]); x != "X" {
		t.Errorf("!Ref: %v", r["A"])
	}
	if id, attr, _ := getAttTarget(r["B"]); id != "R" || attr != "Arn" {
		t.Errorf("!GetAtt: %v", r["B"])
	}
	if s, _ := subTemplate(r["C"]); s != "${R.Arn}/index/*" {
		t.Errorf("!Sub: %v", r["C"])
	}
	if b := branches(r["D"]); len(b) != 1 {
		t.Errorf("!If branches: %v", b)
	}
	if name, _, _ := intrinsic(r["E"]); name != "Fn::Join" {
		t.Errorf("!Join: %v", r["E"])
	}
	if r["F"] != 3 || r["G"] != "true" {
		t.Errorf("scalars: %#v %#v", r["F"], r["G"])
	}
}

// ---------------------------------------------------------------- the checks can fail

func res(t *testing.T, tpl *Template, id string) map[string]any {
	t.Helper()
	r, ok := tpl.Resource(id)
	if !ok {
		t.Fatalf("resource %s not in template.yaml", id)
	}
	return r.Props()
}

func globalEnv(tpl *Template) map[string]any {
	return asMap(path(tpl.Root, "Globals", "Function", "Environment", "Variables"))
}

func fnEnv(t *testing.T, tpl *Template, id string) map[string]any {
	return asMap(path(res(t, tpl, id), "Environment", "Variables"))
}

// policyStatements returns the statement list of a role's inline policy.
func policyStatements(t *testing.T, tpl *Template, role, policy string) []any {
	t.Helper()
	for _, p := range list(res(t, tpl, role)["Policies"]) {
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

// TestChecksDetectBrokenTemplates mutates fresh copies of the real template and expects each check
// to name the problem: proof that the checks above can fail.
func TestChecksDetectBrokenTemplates(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(t *testing.T, tpl *Template)
		check  func(*Template) []string
		want   string
	}{
		{"required variable missing everywhere", func(t *testing.T, tpl *Template) {
			delete(globalEnv(tpl), "SESSIONS_TABLE")
		}, CheckEnvironment, "SESSIONS_TABLE is required"},
		{"API-only variable missing", func(t *testing.T, tpl *Template) {
			delete(fnEnv(t, tpl, "ApiFunction"), "AGENT_SUBNETS")
		}, CheckEnvironment, "ApiFunction: environment variable AGENT_SUBNETS"},
		{"no LiveKit secret at all", func(t *testing.T, tpl *Template) {
			delete(globalEnv(tpl), "LIVEKIT_API_SECRET_ARN")
		}, CheckEnvironment, "LIVEKIT_API_SECRET or LIVEKIT_API_SECRET_ARN"},
		{"secret value in a function's environment", func(t *testing.T, tpl *Template) {
			fnEnv(t, tpl, "WebhookFunction")["LIVEKIT_API_SECRET"] = map[string]any{"Ref": "LiveKitSecretArn"}
		}, CheckEnvironment, "LIVEKIT_API_SECRET puts a secret"},
		{"process launcher deployed", func(t *testing.T, tpl *Template) {
			globalEnv(tpl)["AGENT_LAUNCHER"] = "process"
		}, CheckEnvironment, "AGENT_LAUNCHER must be"},
		{"variable the code never reads", func(t *testing.T, tpl *Template) {
			fnEnv(t, tpl, "ApiFunction")["STUDENT_TOKEN_TTL"] = "900"
		}, CheckEnvironment, "STUDENT_TOKEN_TTL is set but config.Load"},
		{"container name drifts from the task definition", func(t *testing.T, tpl *Template) {
			fnEnv(t, tpl, "ApiFunction")["AGENT_CONTAINER_NAME"] = "avatar"
		}, CheckEnvironment, "AGENT_CONTAINER_NAME"},

		{"Resource * on DynamoDB", func(t *testing.T, tpl *Template) {
			statementWithAction(t, tpl, "ApiFunctionRole", "tables", "dynamodb:PutItem")["Resource"] = "*"
		}, CheckIAM, `dynamodb:PutItem on Resource "*"`},
		{"wildcard action", func(t *testing.T, tpl *Template) {
			s := statementWithAction(t, tpl, "SweeperFunctionRole", "sessions", "dynamodb:Query")
			s["Action"] = append(list(s["Action"]), "dynamodb:*")
		}, CheckIAM, "wildcards"},
		{"RunTask on every task definition", func(t *testing.T, tpl *Template) {
			statementWithAction(t, tpl, "ApiFunctionRole", "agent-tasks", "ecs:RunTask")["Resource"] =
				map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition/*"}
		}, CheckIAM, "agent task definition family only"},
		{"PassRole without PassedToService", func(t *testing.T, tpl *Template) {
			delete(statementWithAction(t, tpl, "ApiFunctionRole", "agent-tasks", "iam:PassRole"), "Condition")
		}, CheckIAM, "iam:PassedToService"},
		{"PassRole on any role", func(t *testing.T, tpl *Template) {
			statementWithAction(t, tpl, "ApiFunctionRole", "agent-tasks", "iam:PassRole")["Resource"] =
				map[string]any{"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"}
		}, CheckIAM, "the agent's task and execution roles only"},
		{"StopTask outside the cluster", func(t *testing.T, tpl *Template) {
			s := statementWithAction(t, tpl, "WebhookFunctionRole", "agent-tasks", "ecs:StopTask")
			delete(s, "Condition")
		}, CheckIAM, "ecs:StopTask needs Condition ecs:cluster"},
		{"all secrets of the account", func(t *testing.T, tpl *Template) {
			statementWithAction(t, tpl, "WebhookFunctionRole", "livekit-secret", "secretsmanager:GetSecretValue")["Resource"] =
				map[string]any{"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*"}
		}, CheckIAM, "service-wide wildcard"},
		{"webhook granted the categories table", func(t *testing.T, tpl *Template) {
			s := asMap(policyStatements(t, tpl, "WebhookFunctionRole", "sessions")[0])
			s["Resource"] = append(list(s["Resource"]), map[string]any{"Fn::GetAtt": []any{"CategoriesTable", "Arn"}})
		}, CheckFunctionScopes, "WebhookFunction is not given"},
		{"sweeper reads the OpenAI secret", func(t *testing.T, tpl *Template) {
			s := statementWithAction(t, tpl, "SweeperFunctionRole", "livekit-secret", "secretsmanager:GetSecretValue")
			s["Resource"] = []any{s["Resource"], map[string]any{"Ref": "OpenAISecretArn"}}
		}, CheckFunctionScopes, "SweeperFunction is not given"},
		{"managed policy attached", func(t *testing.T, tpl *Template) {
			res(t, tpl, "ApiFunctionRole")["ManagedPolicyArns"] = []any{"arn:aws:iam::aws:policy/AdministratorAccess"}
		}, CheckIAM, "ManagedPolicyArns"},

		{"index key drifts from shared/dynamotables", func(t *testing.T, tpl *Template) {
			for _, g := range list(res(t, tpl, "SessionsTable")["GlobalSecondaryIndexes"]) {
				if asMap(g)["IndexName"] == "open_sessions" {
					asMap(list(asMap(g)["KeySchema"])[0])["AttributeName"] = "status"
				}
			}
		}, CheckTables, `index "open_sessions"`},
		{"index missing", func(t *testing.T, tpl *Template) {
			res(t, tpl, "SessionsTable")["GlobalSecondaryIndexes"] = list(res(t, tpl, "SessionsTable")["GlobalSecondaryIndexes"])[:1]
		}, CheckTables, "missing"},
		{"hash key renamed", func(t *testing.T, tpl *Template) {
			asMap(list(res(t, tpl, "CategoriesTable")["KeySchema"])[0])["AttributeName"] = "id"
		}, CheckTables, "KeySchema"},
		{"TTL dropped", func(t *testing.T, tpl *Template) {
			delete(res(t, tpl, "SessionsTable"), "TimeToLiveSpecification")
		}, CheckTables, "TimeToLiveSpecification"},
		{"provisioned billing", func(t *testing.T, tpl *Template) {
			res(t, tpl, "CategoriesTable")["BillingMode"] = "PROVISIONED"
		}, CheckTables, "BillingMode"},
		{"deletion protection hard-coded off", func(t *testing.T, tpl *Template) {
			res(t, tpl, "SessionsTable")["DeletionProtectionEnabled"] = false
		}, CheckTables, "DeletionProtectionEnabled"},

		{"secret value as a parameter", func(t *testing.T, tpl *Template) {
			asMap(tpl.Root["Parameters"])["OpenAIApiKey"] = map[string]any{"Type": "String", "NoEcho": true}
		}, CheckParameters, "OpenAIApiKey"},
		{"credential-shaped default", func(t *testing.T, tpl *Template) {
			asMap(tpl.Root["Parameters"])["BeyAvatarId"].(map[string]any)["Default"] = "sk-proj-0123456789abcdefghijklmnop"
		}, CheckParameters, "looks like a credential"},
		{"secret ARN parameter accepts anything", func(t *testing.T, tpl *Template) {
			delete(asMap(tpl.Root["Parameters"])["OpenAISecretArn"].(map[string]any), "AllowedPattern")
		}, CheckParameters, "AllowedPattern"},

		{"log group without retention", func(t *testing.T, tpl *Template) {
			delete(res(t, tpl, "WebhookFunctionLogGroup"), "RetentionInDays")
		}, CheckLogging, "RetentionInDays"},
		{"function without its own log group", func(t *testing.T, tpl *Template) {
			delete(asMap(res(t, tpl, "SweeperFunction")["LoggingConfig"]), "LogGroup")
		}, CheckLogging, "SweeperFunction: log group"},
		{"text logs", func(t *testing.T, tpl *Template) {
			asMap(path(tpl.Root, "Globals", "Function", "LoggingConfig"))["LogFormat"] = "Text"
		}, CheckLogging, "LogFormat"},

		{"x86_64", func(t *testing.T, tpl *Template) {
			asMap(path(tpl.Root, "Globals", "Function"))["Architectures"] = []any{"x86_64"}
		}, CheckFunctions, "Architectures"},
		{"wrong runtime for one function", func(t *testing.T, tpl *Template) {
			res(t, tpl, "WebhookFunction")["Runtime"] = "go1.x"
		}, CheckFunctions, "WebhookFunction: Runtime"},
		{"wrong handler", func(t *testing.T, tpl *Template) {
			res(t, tpl, "ApiFunction")["Handler"] = "main"
		}, CheckFunctions, "Handler"},
		{"SAM-generated role", func(t *testing.T, tpl *Template) {
			delete(res(t, tpl, "SweeperFunction"), "Role")
		}, CheckFunctions, "Role must be"},

		{"agent secret as plain environment", func(t *testing.T, tpl *Template) {
			c := asMap(list(res(t, tpl, "AgentTaskDefinition")["ContainerDefinitions"])[0])
			c["Environment"] = append(list(c["Environment"]), map[string]any{"Name": "OPENAI_API_KEY", "Value": "x"})
		}, CheckAgentTask, "OPENAI_API_KEY is a secret"},
		{"agent task role writes", func(t *testing.T, tpl *Template) {
			s := asMap(policyStatements(t, tpl, "AgentTaskRole", "read-categories")[0])
			s["Action"] = append(list(s["Action"]), "dynamodb:PutItem")
		}, CheckAgentTask, "dynamodb:PutItem is extra"},
		{"agent task role reaches the sessions table", func(t *testing.T, tpl *Template) {
			s := asMap(policyStatements(t, tpl, "AgentTaskRole", "read-categories")[0])
			s["Resource"] = []any{s["Resource"], map[string]any{"Fn::GetAtt": []any{"SessionsTable", "Arn"}}}
		}, CheckAgentTask, "only use the categories table"},
		{"x86 agent", func(t *testing.T, tpl *Template) {
			asMap(res(t, tpl, "AgentTaskDefinition")["RuntimePlatform"])["CpuArchitecture"] = "X86_64"
		}, CheckAgentTask, "ARM64"},

		{"webhook behind the authorizer", func(t *testing.T, tpl *Template) {
			ev := asMap(asMap(res(t, tpl, "WebhookFunction")["Events"])["LiveKitWebhook"])
			asMap(path(ev, "Properties", "Auth"))["Authorizer"] = "CognitoAuthorizer"
		}, CheckAPI, "must have no authorizer"},
		{"student route without authorizer", func(t *testing.T, tpl *Template) {
			ev := asMap(asMap(res(t, tpl, "ApiFunction")["Events"])["EndSession"])
			asMap(path(ev, "Properties", "Auth"))["Authorizer"] = "NONE"
		}, CheckAPI, "must use the Cognito authorizer"},
		{"sweeper not scheduled", func(t *testing.T, tpl *Template) {
			delete(res(t, tpl, "SweeperFunction"), "Events")
		}, CheckAPI, "Schedule"},
		{"webhook output missing", func(t *testing.T, tpl *Template) {
			delete(asMap(tpl.Root["Outputs"]), "WebhookUrl")
		}, CheckOutputs, "WebhookUrl"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tpl := loadTemplate(t)
			if before := c.check(tpl); len(before) > 0 {
				t.Fatalf("the real template already fails this check: %v", before)
			}
			c.mutate(t, tpl)
			found := c.check(tpl)
			for _, p := range found {
				if strings.Contains(p, c.want) {
					return
				}
			}
			t.Errorf("mutation not detected: want a problem containing %q, got %q", c.want, found)
		})
	}
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
  # Pin`, `# Pin`, "not given: BeyAvatarId"},
		{"value outside AllowedValues", `"AgentMemory=1024"`, `"AgentMemory=1000"`, "not one of"},
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
