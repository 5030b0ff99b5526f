package config

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// getenv turns a map into Load's getenv.
func getenv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// baseEnv is what every function needs.
func baseEnv() map[string]string {
	return map[string]string{
		"LIVEKIT_URL":        "https://livekit.example.com",
		"LIVEKIT_API_KEY":    "APIkey",
		"LIVEKIT_API_SECRET": "secret",
		"SESSIONS_TABLE":     "sessions",
		"AGENT_LAUNCHER":     "ecs",
		"ECS_CLUSTER":        "agents",
	}
}

// apiEnv is a complete API environment with the ECS launcher.
func apiEnv() map[string]string {
	env := baseEnv()
	maps.Copy(env, map[string]string{
		"LIVEKIT_PUBLIC_URL":    "wss://livekit.example.com",
		"CATEGORIES_TABLE":      "categories",
		"COGNITO_ISSUER":        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Abc",
		"COGNITO_CLIENT_IDS":    "client1, client2",
		"AGENT_TASK_DEFINITION": "agent:3",
		"AGENT_CONTAINER_NAME":  "agent",
		"AGENT_SUBNETS":         "subnet-1,subnet-2",
		"AGENT_SECURITY_GROUPS": "sg-1",
	})
	return env
}

func with(env map[string]string, kv ...string) map[string]string {
	out := maps.Clone(env)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

// mustFail loads env and requires an error naming every one of names.
func mustFail(t *testing.T, fn Function, env map[string]string, names ...string) string {
	t.Helper()
	_, err := Load(fn, getenv(env))
	if err == nil {
		t.Fatalf("Load(%s) succeeded, want an error naming %v", fn, names)
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("Load(%s) error does not name %s: %v", fn, n, err)
		}
	}
	return err.Error()
}

func mustLoad(t *testing.T, fn Function, env map[string]string) Config {
	t.Helper()
	c, err := Load(fn, getenv(env))
	if err != nil {
		t.Fatalf("Load(%s): %v", fn, err)
	}
	return c
}

func TestLoadAPIValid(t *testing.T) {
	c := mustLoad(t, API, apiEnv())
	if c.LiveKit.URL != "https://livekit.example.com" || c.LiveKit.PublicURL != "wss://livekit.example.com" ||
		c.LiveKit.APIKey != "APIkey" || c.LiveKit.APISecret != "secret" {
		t.Errorf("livekit: %+v", c.LiveKit)
	}
	if c.SessionsTable != "sessions" || c.CategoriesTable != "categories" {
		t.Errorf("tables: %q %q", c.SessionsTable, c.CategoriesTable)
	}
	if !slices.Equal(c.Cognito.ClientIDs, []string{"client1", "client2"}) || c.Cognito.TokenUse != TokenUseAny ||
		c.Cognito.Issuer != "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Abc" {
		t.Errorf("cognito: %+v", c.Cognito)
	}
	want := ECS{Cluster: "agents", TaskDefinition: "agent:3", ContainerName: "agent",
		Subnets: []string{"subnet-1", "subnet-2"}, SecurityGroups: []string{"sg-1"}}
	got := c.Agent.ECS
	if c.Agent.Launcher != LauncherECS || got.Cluster != want.Cluster || got.TaskDefinition != want.TaskDefinition ||
		got.ContainerName != want.ContainerName || !slices.Equal(got.Subnets, want.Subnets) ||
		!slices.Equal(got.SecurityGroups, want.SecurityGroups) || got.AssignPublicIP {
		t.Errorf("agent: %+v", c.Agent)
	}
	if c.StudentTokenTTL != DefaultStudentTokenTTL || c.SessionMaxDuration != DefaultSessionMaxDuration || c.LogLevel != "info" {
		t.Errorf("defaults: ttl %v max %v level %q", c.StudentTokenTTL, c.SessionMaxDuration, c.LogLevel)
	}
	if len(c.CORSAllowedOrigins) != 0 {
		t.Errorf("CORS origins without the variable: %v", c.CORSAllowedOrigins)
	}
}

func TestLoadWebhookAndSweeperValid(t *testing.T) {
	for _, fn := range []Function{Webhook, Sweeper} {
		c := mustLoad(t, fn, baseEnv())
		if c.Agent.ECS.Cluster != "agents" || c.AgentJoinTimeout != DefaultAgentJoinTimeout {
			t.Errorf("%s: cluster %q join timeout %v", fn, c.Agent.ECS.Cluster, c.AgentJoinTimeout)
		}
		// The API-only variables are not required here.
		if c.CategoriesTable != "" || c.Cognito.Issuer != "" {
			t.Errorf("%s read API variables: %+v", fn, c)
		}
		// The process launcher needs no cluster.
		c = mustLoad(t, fn, with(baseEnv(), "AGENT_LAUNCHER", "process", "ECS_CLUSTER", ""))
		if c.Agent.Launcher != LauncherProcess {
			t.Errorf("%s: launcher %q", fn, c.Agent.Launcher)
		}
		mustFail(t, fn, with(baseEnv(), "ECS_CLUSTER", ""), "ECS_CLUSTER")
	}
}

// TestLoadWebhookLaunchSettings: the webhook launches replacements when the task definition is set;
// then every launch setting is required, named together; without it the cluster is enough.
func TestLoadWebhookLaunchSettings(t *testing.T) {
	if c := mustLoad(t, Webhook, baseEnv()); c.Agent.ECS.TaskDefinition != "" {
		t.Errorf("task definition without the variable: %+v", c.Agent.ECS)
	}
	mustFail(t, Webhook, with(baseEnv(), "AGENT_TASK_DEFINITION", "agent:3"),
		"AGENT_CONTAINER_NAME", "AGENT_SUBNETS", "AGENT_SECURITY_GROUPS")
	launch := with(apiEnv(), "LIVEKIT_PUBLIC_URL", "", "CATEGORIES_TABLE", "", "COGNITO_ISSUER", "", "COGNITO_CLIENT_IDS", "")
	c := mustLoad(t, Webhook, with(launch, "AGENT_CAPACITY_PROVIDER", "FARGATE_SPOT"))
	if e := c.Agent.ECS; e.TaskDefinition != "agent:3" || e.ContainerName != "agent" || !slices.Equal(e.Subnets, []string{"subnet-1", "subnet-2"}) ||
		!slices.Equal(e.SecurityGroups, []string{"sg-1"}) || e.CapacityProvider != "FARGATE_SPOT" || e.Cluster != "agents" {
		t.Errorf("webhook launch settings: %+v", e)
	}
	// The sweeper never launches.
	if c := mustLoad(t, Sweeper, with(baseEnv(), "AGENT_TASK_DEFINITION", "agent:3")); c.Agent.ECS.TaskDefinition != "" {
		t.Errorf("sweeper read the task definition: %+v", c.Agent.ECS)
	}
}

func TestLoadEmptyEnvNamesEveryVariable(t *testing.T) {
	common := []string{"LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "SESSIONS_TABLE", "AGENT_LAUNCHER"}
	for fn, extra := range map[Function][]string{
		API:     {"LIVEKIT_PUBLIC_URL", "CATEGORIES_TABLE", "COGNITO_ISSUER", "COGNITO_CLIENT_IDS"},
		Webhook: nil,
		Sweeper: nil,
	} {
		msg := mustFail(t, fn, map[string]string{}, append(slices.Clone(common), extra...)...)
		if !strings.HasPrefix(msg, "invalid configuration: ") {
			t.Errorf("%s: message %q", fn, msg)
		}
	}
}

func TestLoadNamesEveryInvalidVariableAtOnce(t *testing.T) {
	env := with(apiEnv(),
		"LIVEKIT_URL", "ftp://livekit.example.com",
		"LIVEKIT_PUBLIC_URL", "https://livekit.example.com",
		"LOG_LEVEL", "loud",
		"SESSION_MAX_DURATION_SECONDS", "an hour",
		"STUDENT_TOKEN_TTL_SECONDS", "-5",
		"COGNITO_TOKEN_USE", "refresh",
		"COGNITO_ISSUER", "cognito.example.com",
		"AGENT_ASSIGN_PUBLIC_IP", "maybe",
		"AGENT_SUBNETS", " , ",
		"CATEGORIES_TABLE", "   ",
	)
	msg := mustFail(t, API, env, "LIVEKIT_URL", "LIVEKIT_PUBLIC_URL", "LOG_LEVEL", "SESSION_MAX_DURATION_SECONDS",
		"STUDENT_TOKEN_TTL_SECONDS", "COGNITO_TOKEN_USE", "COGNITO_ISSUER", "AGENT_ASSIGN_PUBLIC_IP", "AGENT_SUBNETS",
		"CATEGORIES_TABLE")
	if n := strings.Count(msg, ";") + 1; n != 10 {
		t.Errorf("want 10 problems, got %d: %s", n, msg)
	}
}

func TestLoadURLSchemes(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		ok          bool
	}{
		{"LIVEKIT_URL", "http://localhost:7880", true},
		{"LIVEKIT_URL", "https://lk.example.com/", true},
		{"LIVEKIT_URL", "ws://localhost:7880", true},
		{"LIVEKIT_URL", "wss://lk.example.com", true},
		{"LIVEKIT_URL", "ftp://lk.example.com", false},
		{"LIVEKIT_URL", "localhost:7880", false},
		{"LIVEKIT_URL", "https://", false},
		{"LIVEKIT_URL", "lk.example.com", false},
		{"LIVEKIT_PUBLIC_URL", "wss://lk.example.com", true},
		{"LIVEKIT_PUBLIC_URL", "ws://localhost:7880", true},
		{"LIVEKIT_PUBLIC_URL", "https://lk.example.com", false},
		{"LIVEKIT_PUBLIC_URL", "http://localhost:7880", false},
		{"COGNITO_ISSUER", "http://localhost:9229/local_pool", true},
		{"COGNITO_ISSUER", "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X/", true},
		{"COGNITO_ISSUER", "wss://cognito.example.com/pool", false},
		{"COGNITO_ISSUER", "cognito.example.com/pool", false},
	} {
		_, err := Load(API, getenv(with(apiEnv(), tc.name, tc.value)))
		if tc.ok && err != nil {
			t.Errorf("%s=%s: %v", tc.name, tc.value, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), tc.name)) {
			t.Errorf("%s=%s: want an error naming it, got %v", tc.name, tc.value, err)
		}
	}
	// Trailing slashes are trimmed so paths can be appended.
	c := mustLoad(t, API, with(apiEnv(), "LIVEKIT_URL", "https://lk.example.com/", "LIVEKIT_PUBLIC_URL", "wss://lk.example.com/",
		"COGNITO_ISSUER", "https://issuer.example.com/pool/"))
	if c.LiveKit.URL != "https://lk.example.com" || c.LiveKit.PublicURL != "wss://lk.example.com" || c.Cognito.Issuer != "https://issuer.example.com/pool" {
		t.Errorf("trailing slash kept: %q %q %q", c.LiveKit.URL, c.LiveKit.PublicURL, c.Cognito.Issuer)
	}
}

func TestLoadDerivesCognitoIssuer(t *testing.T) {
	env := with(apiEnv(), "COGNITO_ISSUER", "", "COGNITO_USER_POOL_ID", "eu-west-1_AbC123", "AWS_REGION", "eu-west-1")
	c := mustLoad(t, API, env)
	if want := "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123"; c.Cognito.Issuer != want {
		t.Errorf("issuer %q, want %q", c.Cognito.Issuer, want)
	}
	// An explicit issuer wins over the pool id.
	c = mustLoad(t, API, with(env, "COGNITO_ISSUER", "http://localhost:9229/local_x"))
	if c.Cognito.Issuer != "http://localhost:9229/local_x" {
		t.Errorf("explicit issuer ignored: %q", c.Cognito.Issuer)
	}
	mustFail(t, API, with(env, "AWS_REGION", ""), "COGNITO_ISSUER", "COGNITO_USER_POOL_ID", "AWS_REGION")
	mustFail(t, API, with(env, "COGNITO_USER_POOL_ID", ""), "COGNITO_ISSUER")
}

func TestLoadTokenUse(t *testing.T) {
	for in, want := range map[string]string{"": TokenUseAny, "id": TokenUseID, "ACCESS": TokenUseAccess, " any ": TokenUseAny} {
		if c := mustLoad(t, API, with(apiEnv(), "COGNITO_TOKEN_USE", in)); c.Cognito.TokenUse != want {
			t.Errorf("COGNITO_TOKEN_USE=%q: %q, want %q", in, c.Cognito.TokenUse, want)
		}
	}
	mustFail(t, API, with(apiEnv(), "COGNITO_TOKEN_USE", "refresh"), "COGNITO_TOKEN_USE")
	mustFail(t, API, with(apiEnv(), "COGNITO_CLIENT_IDS", " , "), "COGNITO_CLIENT_IDS")
}

func TestLoadSeconds(t *testing.T) {
	vars := map[string]Function{
		"STUDENT_TOKEN_TTL_SECONDS":    API,
		"SESSION_MAX_DURATION_SECONDS": API,
		"AGENT_JOIN_TIMEOUT_SECONDS":   Sweeper,
		"SESSION_SAFETY_GRACE_SECONDS": Sweeper,
	}
	get := func(c Config, name string) time.Duration {
		switch name {
		case "STUDENT_TOKEN_TTL_SECONDS":
			return c.StudentTokenTTL
		case "SESSION_MAX_DURATION_SECONDS":
			return c.SessionMaxDuration
		case "SESSION_SAFETY_GRACE_SECONDS":
			return c.SafetyGrace
		default:
			return c.AgentJoinTimeout
		}
	}
	for name, fn := range vars {
		env := apiEnv()
		if fn != API {
			env = baseEnv()
		}
		if got := get(mustLoad(t, fn, with(env, name, " 90 ")), name); got != 90*time.Second {
			t.Errorf("%s=90: %v", name, got)
		}
		// 9300000000 s would overflow time.Duration into a negative value.
		for _, bad := range []string{"0", "-1", "1.5", "1m", "90s", "abc", "1e3", "604801", "9300000000", "18446744073"} {
			mustFail(t, fn, with(env, name, bad), name)
		}
	}
	// Webhook also reads the join timeout (and only the webhook/sweeper do).
	if c := mustLoad(t, Webhook, with(baseEnv(), "AGENT_JOIN_TIMEOUT_SECONDS", "42")); c.AgentJoinTimeout != 42*time.Second {
		t.Errorf("webhook join timeout %v", c.AgentJoinTimeout)
	}
}

func TestLoadSafetyGrace(t *testing.T) {
	// The sweeper holds flagged sessions open that much longer; the API's lock covers them.
	for fn, env := range map[Function]map[string]string{API: apiEnv(), Sweeper: baseEnv()} {
		if c := mustLoad(t, fn, env); c.SafetyGrace != DefaultSafetyGrace {
			t.Errorf("%s default safety grace %v", fn, c.SafetyGrace)
		}
		if c := mustLoad(t, fn, with(env, "SESSION_SAFETY_GRACE_SECONDS", "600")); c.SafetyGrace != 10*time.Minute {
			t.Errorf("%s safety grace %v", fn, c.SafetyGrace)
		}
		mustFail(t, fn, with(env, "SESSION_SAFETY_GRACE_SECONDS", "15m"), "SESSION_SAFETY_GRACE_SECONDS")
	}
	// The webhook has no use for it.
	if c := mustLoad(t, Webhook, with(baseEnv(), "SESSION_SAFETY_GRACE_SECONDS", "600")); c.SafetyGrace != 0 {
		t.Errorf("webhook read the safety grace: %v", c.SafetyGrace)
	}
}

func TestLoadLauncher(t *testing.T) {
	// ecs needs the ECS variables, named together.
	env := with(apiEnv(), "ECS_CLUSTER", "", "AGENT_TASK_DEFINITION", "", "AGENT_CONTAINER_NAME", "",
		"AGENT_SUBNETS", "", "AGENT_SECURITY_GROUPS", "")
	mustFail(t, API, env, "ECS_CLUSTER", "AGENT_TASK_DEFINITION", "AGENT_CONTAINER_NAME", "AGENT_SUBNETS", "AGENT_SECURITY_GROUPS")

	// process needs AGENT_COMMAND, and not the ECS variables.
	proc := with(env, "AGENT_LAUNCHER", "process")
	msg := mustFail(t, API, proc, "AGENT_COMMAND")
	if strings.Contains(msg, "ECS_CLUSTER") || strings.Contains(msg, "AGENT_SUBNETS") {
		t.Errorf("process launcher asked for ECS variables: %s", msg)
	}
	mustFail(t, API, with(proc, "AGENT_COMMAND", "   "), "AGENT_COMMAND")
	c := mustLoad(t, API, with(proc, "AGENT_COMMAND", "node  dist/agent.js --dev"))
	if c.Agent.Launcher != LauncherProcess || !slices.Equal(c.Agent.Command, []string{"node", "dist/agent.js", "--dev"}) {
		t.Errorf("process launcher: %+v", c.Agent)
	}

	mustFail(t, API, with(apiEnv(), "AGENT_LAUNCHER", "lambda"), "AGENT_LAUNCHER")
	if c := mustLoad(t, API, with(apiEnv(), "AGENT_LAUNCHER", "ECS")); c.Agent.Launcher != LauncherECS {
		t.Errorf("AGENT_LAUNCHER=ECS: %q", c.Agent.Launcher)
	}
	for in, want := range map[string]bool{"": false, "DISABLED": false, "false": false, "ENABLED": true, "true": true} {
		if c := mustLoad(t, API, with(apiEnv(), "AGENT_ASSIGN_PUBLIC_IP", in)); c.Agent.ECS.AssignPublicIP != want {
			t.Errorf("AGENT_ASSIGN_PUBLIC_IP=%q: %v", in, c.Agent.ECS.AssignPublicIP)
		}
	}
}

func TestLoadSecretAlternatives(t *testing.T) {
	c := mustLoad(t, API, with(apiEnv(), "LIVEKIT_API_SECRET", "", "LIVEKIT_API_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:lk"))
	if c.LiveKit.APISecret != "" || c.LiveKit.APISecretARN == "" {
		t.Errorf("secret ARN: %+v", c.LiveKit)
	}
	mustFail(t, Webhook, with(baseEnv(), "LIVEKIT_API_SECRET", " "), "LIVEKIT_API_SECRET", "LIVEKIT_API_SECRET_ARN")
}

func TestLoadOptionalValues(t *testing.T) {
	c := mustLoad(t, API, with(apiEnv(), "LOG_LEVEL", "DEBUG", "CORS_ALLOWED_ORIGINS", "https://a.example.com, ,https://b.example.com"))
	if c.LogLevel != "debug" {
		t.Errorf("log level %q", c.LogLevel)
	}
	if !slices.Equal(c.CORSAllowedOrigins, []string{"https://a.example.com", "https://b.example.com"}) {
		t.Errorf("origins %q", c.CORSAllowedOrigins)
	}
}

// STACK_NAME is every metric's Stack dimension: the stack's name in AWS, "local" elsewhere.
func TestLoadStackName(t *testing.T) {
	for _, fn := range []Function{API, Webhook, Sweeper} {
		env := apiEnv()
		if c := mustLoad(t, fn, env); c.StackName != DefaultStackName {
			t.Errorf("%s: default stack name %q", fn, c.StackName)
		}
		if c := mustLoad(t, fn, with(env, "STACK_NAME", " counselvideo-prod ")); c.StackName != "counselvideo-prod" {
			t.Errorf("%s: stack name %q", fn, c.StackName)
		}
		for _, bad := range []string{"1stack", "stack_name", "stäck", strings.Repeat("a", 129)} {
			mustFail(t, fn, with(env, "STACK_NAME", bad), "STACK_NAME")
		}
	}
}

func TestLoadCapacityProvider(t *testing.T) {
	if c := mustLoad(t, API, apiEnv()); c.Agent.ECS.CapacityProvider != "FARGATE" {
		t.Errorf("default capacity provider %q", c.Agent.ECS.CapacityProvider)
	}
	if c := mustLoad(t, API, with(apiEnv(), "AGENT_CAPACITY_PROVIDER", "fargate_spot")); c.Agent.ECS.CapacityProvider != "FARGATE_SPOT" {
		t.Errorf("spot %q", c.Agent.ECS.CapacityProvider)
	}
	mustFail(t, API, with(apiEnv(), "AGENT_CAPACITY_PROVIDER", "EC2"), "AGENT_CAPACITY_PROVIDER")
}

func TestLoadUnknownFunction(t *testing.T) {
	mustFail(t, Function("worker"), apiEnv(), `unknown function "worker"`)
}

// placeholder returns a valid value for a variable RequiredVars lists.
func placeholder(name string) string {
	switch name {
	case "LIVEKIT_URL":
		return "https://livekit.example.com"
	case "LIVEKIT_PUBLIC_URL":
		return "wss://livekit.example.com"
	case "COGNITO_ISSUER":
		return "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Abc"
	case "AGENT_LAUNCHER":
		return LauncherECS
	default:
		return "placeholder-" + strings.ToLower(name)
	}
}

// TestRequiredVarsMatchesLoad: an environment holding exactly RequiredVars (first alternatives) loads;
// dropping any one entry fails and names it; each other alternative also satisfies its entry.
func TestRequiredVarsMatchesLoad(t *testing.T) {
	for _, fn := range []Function{API, Webhook, Sweeper} {
		req := RequiredVars(fn)
		if len(req) == 0 {
			t.Fatalf("RequiredVars(%s) is empty", fn)
		}
		env := map[string]string{}
		for _, alts := range req {
			env[alts[0]] = placeholder(alts[0])
		}
		if _, err := Load(fn, getenv(env)); err != nil {
			t.Errorf("%s: the RequiredVars environment does not load: %v", fn, err)
		}
		for _, alts := range req {
			mustFail(t, fn, with(env, alts[0], ""), alts[0])
			for _, alt := range alts[1:] {
				e := with(env, alts[0], "", alt, placeholder(alt))
				if alt == "COGNITO_USER_POOL_ID" {
					e["AWS_REGION"] = "us-east-1" // set by the Lambda runtime itself
				}
				if _, err := Load(fn, getenv(e)); err != nil {
					t.Errorf("%s: %s instead of %s: %v", fn, alt, alts[0], err)
				}
			}
		}
	}
	if RequiredVars(Function("worker")) != nil {
		t.Error("RequiredVars of an unknown function is not nil")
	}
}

func TestLoadLimits(t *testing.T) {
	if c := mustLoad(t, API, apiEnv()); c.Limits != (Limits{}) {
		t.Errorf("unset limits %+v, want all 0 (unlimited)", c.Limits)
	}
	c := mustLoad(t, API, with(apiEnv(), "STUDENT_DAILY_SESSION_LIMIT", "3", "STUDENT_DAILY_MINUTES_LIMIT", " 90 ", "MAX_OPEN_SESSIONS", "0"))
	if c.Limits != (Limits{StudentDailySessions: 3, StudentDailyMinutes: 90}) {
		t.Errorf("limits %+v", c.Limits)
	}
	if c := mustLoad(t, API, with(apiEnv(), "STUDENT_DAILY_MINUTES_LIMIT", "1440", "MAX_OPEN_SESSIONS", "100000")); c.Limits.StudentDailyMinutes != 1440 || c.Limits.MaxOpenSessions != 100000 {
		t.Errorf("upper bounds %+v", c.Limits)
	}
	msg := mustFail(t, API, with(apiEnv(), "STUDENT_DAILY_SESSION_LIMIT", "-1", "STUDENT_DAILY_MINUTES_LIMIT", "1441", "MAX_OPEN_SESSIONS", "ten"),
		"STUDENT_DAILY_SESSION_LIMIT", "STUDENT_DAILY_MINUTES_LIMIT", "MAX_OPEN_SESSIONS")
	if n := strings.Count(msg, ";") + 1; n != 3 {
		t.Errorf("want 3 problems, got %d: %s", n, msg)
	}
	// The webhook and the sweeper release what a session holds from the session itself: they read no limits.
	if c := mustLoad(t, Sweeper, with(baseEnv(), "MAX_OPEN_SESSIONS", "ten")); c.Limits != (Limits{}) {
		t.Errorf("sweeper limits %+v", c.Limits)
	}
}

func TestLoadPool(t *testing.T) {
	c := mustLoad(t, API, apiEnv())
	if c.Agent.PoolAgentName != "" || c.Agent.PoolJoinTimeout != DefaultPoolJoinTimeout {
		t.Errorf("pool defaults: %q %v, want off and %v", c.Agent.PoolAgentName, c.Agent.PoolJoinTimeout, DefaultPoolJoinTimeout)
	}
	c = mustLoad(t, API, with(with(apiEnv(), "AGENT_POOL_AGENT_NAME", " counselor-v2.1_a "), "AGENT_POOL_JOIN_TIMEOUT_SECONDS", "5"))
	if c.Agent.PoolAgentName != "counselor-v2.1_a" || c.Agent.PoolJoinTimeout != 5*time.Second {
		t.Errorf("pool: %q %v", c.Agent.PoolAgentName, c.Agent.PoolJoinTimeout)
	}
	for _, bad := range []string{"counselor agent", "coun/selor", "ä", strings.Repeat("a", 65)} {
		mustFail(t, API, with(apiEnv(), "AGENT_POOL_AGENT_NAME", bad), "AGENT_POOL_AGENT_NAME")
	}
	for _, bad := range []string{"0", "6", "-1", "1.5", "3s", "abc"} {
		mustFail(t, API, with(apiEnv(), "AGENT_POOL_JOIN_TIMEOUT_SECONDS", bad), "AGENT_POOL_JOIN_TIMEOUT_SECONDS")
	}
	// Both bad at once: one error names both.
	mustFail(t, API, with(with(apiEnv(), "AGENT_POOL_AGENT_NAME", "a b"), "AGENT_POOL_JOIN_TIMEOUT_SECONDS", "9"), "AGENT_POOL_AGENT_NAME", "AGENT_POOL_JOIN_TIMEOUT_SECONDS")
	// The webhook dispatches a lost agent's replacement to the same pool; the sweeper never launches.
	pooled := with(with(baseEnv(), "AGENT_POOL_AGENT_NAME", "counselor"), "AGENT_POOL_JOIN_TIMEOUT_SECONDS", "2")
	if c := mustLoad(t, Webhook, pooled); c.Agent.PoolAgentName != "counselor" || c.Agent.PoolJoinTimeout != 2*time.Second {
		t.Errorf("webhook pool: %q %v", c.Agent.PoolAgentName, c.Agent.PoolJoinTimeout)
	}
	mustFail(t, Webhook, with(baseEnv(), "AGENT_POOL_JOIN_TIMEOUT_SECONDS", "9"), "AGENT_POOL_JOIN_TIMEOUT_SECONDS")
	if c := mustLoad(t, Sweeper, pooled); c.Agent.PoolAgentName != "" {
		t.Errorf("sweeper read the pool: %q", c.Agent.PoolAgentName)
	}
}
