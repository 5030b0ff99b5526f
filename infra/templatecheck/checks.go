package templatecheck

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"counselvideo/shared/config"
	"counselvideo/shared/dynamotables"
)

const (
	typeFunction = "AWS::Lambda::Function"
	typeRole     = "AWS::IAM::Role"
	typeTable    = "AWS::DynamoDB::Table"
	typeLogGroup = "AWS::Logs::LogGroup"
	typeTaskDef  = "AWS::ECS::TaskDefinition"
	typeCluster  = "AWS::ECS::Cluster"
	typeECRRepo  = "AWS::ECR::Repository"
	typeUserPool = "AWS::Cognito::UserPool"
	typeHTTPAPI  = "AWS::ApiGatewayV2::Api"
	typeTopic    = "AWS::SNS::Topic"
)

// Check is one template check. The agent's contract is passed in because it is read from the agent.
type Check func(*Template, AgentSchema) []string

// Checks are every template check, by what they keep in step, but CheckMetrics (it also needs the
// agent's METRICS table: metrics_test.go runs it).
var Checks = map[string]Check{
	"functions (arm64 provided.al2023 bootstrap, makefile build, own role)": ignoreSchema(CheckFunctions),
	"function environments (shared/config)":                                 ignoreSchema(CheckEnvironment),
	"agent task (agentimage VARIABLES, secrets, roles)":                     CheckAgentTask,
	"duration and limit bounds (shared/config and the agent)":               CheckDurations,
	"Fargate CPU/memory rules":                                              ignoreSchema(CheckFargateRules),
	"tables (shared/dynamotables)":                                          ignoreSchema(CheckTables),
	"retained resources":                                                    ignoreSchema(CheckRetention),
	"agent image repository and tag":                                        ignoreSchema(CheckImageRepository),
	"IAM least privilege":                                                   ignoreSchema(CheckIAM),
	"each function reaches only its own tables and secrets":                 ignoreSchema(CheckFunctionScopes),
	"no secret values in parameters":                                        ignoreSchema(CheckParameters),
	"logging":                                                               ignoreSchema(CheckLogging),
	"HTTP API routes (httpapi.Routes) and schedule":                         ignoreSchema(CheckAPI),
	"route throttling (create-room tighter, the webhook its own)":           ignoreSchema(CheckThrottling),
	"agent task failure rule and the alarm topic's policy":                  ignoreSchema(CheckAgentTaskRule),
	"outputs": ignoreSchema(CheckOutputs),
	"API timeout holds the time budget (service.TimeBudget)":                                  ignoreSchema(CheckTimeBudget),
	"warm pool: service, scaling = infra/poolscaling.Chosen":                                  ignoreSchema(CheckAgentPool),
	"the webhook launches replacements as the API launches":                                   ignoreSchema(CheckReplacementLaunch),
	"warm pool: worker task (agentimage VARIABLES, same as the per-session task, protection)": CheckAgentWorkerTask,
}

func ignoreSchema(c func(*Template) []string) Check {
	return func(t *Template, _ AgentSchema) []string { return c(t) }
}

type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// ---------------------------------------------------------------- functions and their environment

// CheckFunctions checks that exactly the expected functions exist, built by `sam build` through the
// Makefile, as arm64 provided.al2023 `bootstrap` binaries, each with its own role of this template.
func CheckFunctions(t *Template) []string {
	var p problems
	seen := map[string]bool{}
	for _, r := range t.ResourcesOfType(typeFunction) {
		seen[r.ID] = true
		if _, ok := Functions[r.ID]; !ok {
			p.add("%s: function not in the deployment contract (templatecheck.Functions)", r.ID)
		}
		f := r.Props()
		if got := str(f["Runtime"]); got != "provided.al2023" {
			p.add("%s: Runtime is %q, want provided.al2023", r.ID, got)
		}
		if a := list(f["Architectures"]); len(a) != 1 || str(a[0]) != "arm64" {
			p.add("%s: Architectures is %v, want [arm64]", r.ID, f["Architectures"])
		}
		if got := str(f["Handler"]); got != "bootstrap" {
			p.add("%s: Handler is %q, want bootstrap", r.ID, got)
		}
		if got := str(path(r.Body, "Metadata", "BuildMethod")); got != "makefile" {
			p.add("%s: Metadata.BuildMethod is %q, want makefile (build-%s in the Makefile)", r.ID, got, r.ID)
		}
		role, attr, ok := getAttTarget(f["Role"])
		if rr, exists := t.Resource(role); !ok || attr != "Arn" || !exists || rr.Type != typeRole {
			p.add("%s: Role must be !GetAtt <an AWS::IAM::Role of this template>.Arn", r.ID)
		}
	}
	for _, id := range sortedKeys(Functions) {
		if !seen[id] {
			p.add("%s: function missing from the template", id)
		}
	}
	return p
}

var makeTargetRE = func(id string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^build-` + regexp.QuoteMeta(id) + `:.*\n((?:\t.*\n)+)`)
}

// CheckMakefile checks that the Makefile has the build-<LogicalId> target `sam build` calls for each
// function, writing $(ARTIFACTS_DIR)/bootstrap.
func CheckMakefile(t *Template, makefile string) []string {
	var p problems
	for _, r := range t.ResourcesOfType(typeFunction) {
		m := makeTargetRE(r.ID).FindStringSubmatch(makefile + "\n")
		if m == nil {
			p.add("Makefile: no build-%s target (sam build with BuildMethod makefile calls it)", r.ID)
			continue
		}
		if !strings.Contains(m[1], "$(ARTIFACTS_DIR)/bootstrap") {
			p.add("Makefile: build-%s does not write $(ARTIFACTS_DIR)/bootstrap", r.ID)
		}
	}
	return p
}

var secretEnvName = regexp.MustCompile(`(?i)(SECRET|PASSWORD|PASSWD|PRIVATE_KEY|CREDENTIALS?)$`)

// loadProblems runs config.Load for fn with the ECS launcher and every variable set to "set" unless
// env gives a value, and returns the problems it reports and the variables it read.
func loadProblems(fn config.Function, env map[string]string) (found []string, read map[string]bool) {
	read = map[string]bool{}
	_, err := config.Load(fn, func(name string) string {
		read[name] = true
		if v, ok := env[name]; ok {
			return v
		}
		if name == "AGENT_LAUNCHER" {
			return config.LauncherECS
		}
		return "set"
	})
	if err != nil {
		found = strings.Split(strings.TrimPrefix(err.Error(), "invalid configuration: "), "; ")
	}
	return found, read
}

// CheckEnvironment checks each function's environment against its contract: every variable
// config.RequiredVars lists is set, every variable set is one config.Load reads, the ECS launcher,
// no secret values, and the stack's own tables, cluster, task definition and container.
func CheckEnvironment(t *Template) []string {
	var p problems
	for _, r := range t.ResourcesOfType(typeFunction) {
		fn, ok := Functions[r.ID]
		if !ok {
			continue
		}
		env := t.FunctionEnv(r)
		for _, alternatives := range config.RequiredVars(fn) {
			if !slices.ContainsFunc(alternatives, func(n string) bool { return isSet(env[n]) }) {
				p.add("%s: environment variable %s is required by config.RequiredVars(%q) but not set",
					r.ID, strings.Join(alternatives, " or "), fn)
			}
		}
		_, read := loadProblems(fn, nil)
		for _, name := range sortedKeys(env) {
			if !read[name] {
				p.add("%s: environment variable %s is set but config.Load(%q) never reads it (a typo or a stale setting)", r.ID, name, fn)
			}
			if v := env[name]; name == "AGENT_LAUNCHER" && v != config.LauncherECS {
				p.add("%s: AGENT_LAUNCHER must be %q in the deployed stack", r.ID, config.LauncherECS)
			}
			if !strings.HasSuffix(name, "_ARN") && secretEnvName.MatchString(name) {
				p.add("%s: %s puts a secret in the function's environment; pass a Secrets Manager ARN (%s_ARN)", r.ID, name, name)
			}
			if s, literal := env[name].(string); literal && strings.Contains(name, "API_KEY") && !strings.HasPrefix(s, "{{resolve:") {
				p.add("%s: %s is a literal; resolve it from Secrets Manager", r.ID, name)
			}
		}
		for name, typ := range map[string]string{"SESSIONS_TABLE": typeTable, "CATEGORIES_TABLE": typeTable,
			"ECS_CLUSTER": typeCluster, "AGENT_TASK_DEFINITION": typeTaskDef} {
			if v, present := env[name]; present {
				id, ok := refTarget(v)
				if rr, exists := t.Resource(id); !ok || !exists || rr.Type != typ {
					p.add("%s: %s must be !Ref to the stack's %s", r.ID, name, typ)
				}
			}
		}
		if name, present := env["AGENT_CONTAINER_NAME"]; present {
			td, _ := refTarget(env["AGENT_TASK_DEFINITION"])
			if _, ok := container(t, td, str(name)); !ok {
				p.add("%s: AGENT_CONTAINER_NAME %v is not a container of %s", r.ID, name, td)
			}
		}
	}
	return p
}

// container returns the named container definition of a task definition.
func container(t *Template, taskDef, name string) (map[string]any, bool) {
	r, _ := t.Resource(taskDef)
	for _, c := range list(r.Props()["ContainerDefinitions"]) {
		if str(asMap(c)["Name"]) == name {
			return asMap(c), true
		}
	}
	return nil, false
}

// agentContainer returns the task definition the API launches and the container it overrides.
func agentContainer(t *Template) (Resource, map[string]any, bool) {
	api, _ := t.Resource("ApiFunction")
	env := t.FunctionEnv(api)
	td, _ := refTarget(env["AGENT_TASK_DEFINITION"])
	r, ok := t.Resource(td)
	if !ok || r.Type != typeTaskDef {
		return Resource{}, nil, false
	}
	c, ok := container(t, td, str(env["AGENT_CONTAINER_NAME"]))
	return r, c, ok
}

// tableIDs returns the logical ids of the sessions and categories tables, found through the functions'
// SESSIONS_TABLE and CATEGORIES_TABLE (so the checks follow what the code is given).
func tableIDs(t *Template) (sessions, categories string) {
	for _, r := range t.ResourcesOfType(typeFunction) {
		env := t.FunctionEnv(r)
		if s, ok := refTarget(env["SESSIONS_TABLE"]); ok && sessions == "" {
			sessions = s
		}
		if c, ok := refTarget(env["CATEGORIES_TABLE"]); ok && categories == "" {
			categories = c
		}
	}
	return sessions, categories
}

// ---------------------------------------------------------------- DynamoDB tables

// CheckTables compares the tables the functions are given with shared/dynamotables (keys, attribute
// types, indexes, projections, billing) and checks PITR, TTL and deletion protection from a parameter.
func CheckTables(t *Template) []string {
	var p problems
	sessions, categories := tableIDs(t)
	for _, c := range []struct {
		id   string
		want *dynamodb.CreateTableInput
		ttl  string
	}{
		{sessions, dynamotables.Sessions("sessions"), dynamotables.SessionsTTLAttr},
		{categories, dynamotables.Categories("categories"), ""},
	} {
		r, ok := t.Resource(c.id)
		if !ok || r.Type != typeTable {
			p.add("table %q (from the functions' environment) is not an %s of the template", c.id, typeTable)
			continue
		}
		p = append(p, compareTable(r, c.want)...)
		props := r.Props()
		if v, _ := path(props, "PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled").(bool); !v {
			p.add("%s: point-in-time recovery must be enabled", r.ID)
		}
		if _, _, isIntr := intrinsic(props["DeletionProtectionEnabled"]); !isIntr {
			p.add("%s: DeletionProtectionEnabled must follow a parameter (!If/!Ref), got %v", r.ID, props["DeletionProtectionEnabled"])
		}
		ttl := asMap(props["TimeToLiveSpecification"])
		if c.ttl != "" && (str(ttl["AttributeName"]) != c.ttl || ttl["Enabled"] != true) {
			p.add("%s: TimeToLiveSpecification must enable TTL on %q (the code writes expiring records)", r.ID, c.ttl)
		}
	}
	return p
}

// tableShape is what the template and dynamotables' CreateTable must agree on.
type tableShape struct {
	Billing    string
	Attributes []string            // "name:type", sorted
	Keys       []string            // "name:HASH", "name:RANGE" in order
	Indexes    map[string][]string // global index -> keys, then projection and its non-key attributes
	Local      int                 // local secondary indexes
}

func templateTableShape(props map[string]any) tableShape {
	keys := func(v any) []string {
		var out []string
		for _, k := range list(v) {
			out = append(out, str(asMap(k)["AttributeName"])+":"+str(asMap(k)["KeyType"]))
		}
		return out
	}
	s := tableShape{Billing: str(props["BillingMode"]), Keys: keys(props["KeySchema"]), Indexes: map[string][]string{},
		Local: len(list(props["LocalSecondaryIndexes"]))}
	for _, a := range list(props["AttributeDefinitions"]) {
		s.Attributes = append(s.Attributes, str(asMap(a)["AttributeName"])+":"+str(asMap(a)["AttributeType"]))
	}
	for _, g := range list(props["GlobalSecondaryIndexes"]) {
		idx := append(keys(asMap(g)["KeySchema"]), "projection:"+str(path(g, "Projection", "ProjectionType")))
		for _, a := range list(path(g, "Projection", "NonKeyAttributes")) {
			idx = append(idx, str(a))
		}
		s.Indexes[str(asMap(g)["IndexName"])] = idx
	}
	sort.Strings(s.Attributes)
	return s
}

func sdkTableShape(in *dynamodb.CreateTableInput) tableShape {
	keys := func(ks []types.KeySchemaElement) []string {
		var out []string
		for _, k := range ks {
			out = append(out, *k.AttributeName+":"+string(k.KeyType))
		}
		return out
	}
	s := tableShape{Billing: string(in.BillingMode), Keys: keys(in.KeySchema), Indexes: map[string][]string{},
		Local: len(in.LocalSecondaryIndexes)}
	for _, a := range in.AttributeDefinitions {
		s.Attributes = append(s.Attributes, *a.AttributeName+":"+string(a.AttributeType))
	}
	for _, g := range in.GlobalSecondaryIndexes {
		idx := append(keys(g.KeySchema), "projection:"+string(g.Projection.ProjectionType))
		s.Indexes[*g.IndexName] = append(idx, g.Projection.NonKeyAttributes...)
	}
	sort.Strings(s.Attributes)
	return s
}

func compareTable(r Resource, want *dynamodb.CreateTableInput) []string {
	var p problems
	got, w := templateTableShape(r.Props()), sdkTableShape(want)
	if got.Billing != w.Billing {
		p.add("%s: BillingMode is %q, want %q", r.ID, got.Billing, w.Billing)
	}
	if !slices.Equal(got.Attributes, w.Attributes) {
		p.add("%s: AttributeDefinitions %v, want %v (shared/dynamotables)", r.ID, got.Attributes, w.Attributes)
	}
	if !slices.Equal(got.Keys, w.Keys) {
		p.add("%s: KeySchema %v, want %v (shared/dynamotables)", r.ID, got.Keys, w.Keys)
	}
	for _, name := range sortedKeys(w.Indexes) {
		if g, ok := got.Indexes[name]; !ok {
			p.add("%s: global secondary index %q missing (shared/dynamotables)", r.ID, name)
		} else if !slices.Equal(g, w.Indexes[name]) {
			p.add("%s: index %q is %v, want %v (shared/dynamotables)", r.ID, name, g, w.Indexes[name])
		}
	}
	for _, name := range sortedKeys(got.Indexes) {
		if _, ok := w.Indexes[name]; !ok {
			p.add("%s: index %q is not in shared/dynamotables", r.ID, name)
		}
	}
	if got.Local != w.Local {
		p.add("%s: LocalSecondaryIndexes differ from shared/dynamotables", r.ID)
	}
	return p
}

// ---------------------------------------------------------------- retained resources

// retainedTypes hold data or the images environments pin: kept when the stack is deleted or they are
// replaced, deleted only when the create that made them rolls back (their names are fixed, so a kept
// leftover would make the retry of a failed first deploy fail on "already exists").
var retainedTypes = map[string]bool{typeTable: true, typeECRRepo: true, typeUserPool: true}

// CheckRetention checks DeletionPolicy RetainExceptOnCreate and UpdateReplacePolicy Retain on them.
func CheckRetention(t *Template) []string {
	var p problems
	for _, r := range t.Resources() {
		if !retainedTypes[r.Type] {
			continue
		}
		if got := str(r.Body["DeletionPolicy"]); got != "RetainExceptOnCreate" {
			p.add("%s: DeletionPolicy is %q, want RetainExceptOnCreate (kept on delete, removed when its own create rolls back)", r.ID, got)
		}
		if got := str(r.Body["UpdateReplacePolicy"]); got != "Retain" {
			p.add("%s: UpdateReplacePolicy is %q, want Retain", r.ID, got)
		}
	}
	return p
}

// ---------------------------------------------------------------- parameters: no secret values

var (
	secretParamName = regexp.MustCompile(`(?i)(secret|password|passwd|apikey|api_key|credential|privatekey|private_key|accesskey)`)
	// secretLooking matches values shaped like credentials: OpenAI keys, AWS access keys, PEM blocks.
	secretLooking    = regexp.MustCompile(`^sk-[A-Za-z0-9_-]{8,}|AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY`)
	randomToken      = regexp.MustCompile(`^[A-Za-z0-9+/=_-]{32,}$`)
	secretARNExample = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:counselvideo/livekit-AbCdEf"
)

// LooksSecret reports whether a literal value has the shape of a credential: an OpenAI key, an AWS
// access key, a PEM private key, or a long random token (LiveKit secrets are 40+ base62 characters)
// mixing digits, upper and lower case (which names like AGENT_STUDENT_JOIN_TIMEOUT_SECONDS do not).
func LooksSecret(v string) bool {
	if secretLooking.MatchString(v) {
		return true
	}
	return randomToken.MatchString(v) && strings.ContainsAny(v, "0123456789") &&
		strings.ToLower(v) != v && strings.ToUpper(v) != v
}

// CheckParameters checks that no parameter carries a secret value: secret-named parameters are
// Secrets Manager ARNs (validated by AllowedPattern), nothing is NoEcho, and no literal anywhere in
// the template looks like a credential.
func CheckParameters(t *Template) []string {
	var p problems
	for _, name := range sortedKeys(t.Parameters()) {
		def := t.Parameters()[name]
		if def["NoEcho"] != nil {
			p.add("parameter %s: NoEcho means a secret value is passed; take a Secrets Manager ARN instead", name)
		}
		if !secretParamName.MatchString(name) {
			continue
		}
		pattern := str(def["AllowedPattern"])
		re, err := regexp.Compile(`^(?:` + pattern + `)$`)
		switch {
		case !strings.HasSuffix(name, "Arn"):
			p.add("parameter %s: secrets are passed as Secrets Manager ARNs (name it …SecretArn)", name)
		case pattern == "" || err != nil:
			p.add("parameter %s: needs an AllowedPattern that only admits an ARN", name)
		case re.MatchString("sk-0123456789abcdef") || re.MatchString("not-an-arn"):
			p.add("parameter %s: AllowedPattern %q admits values that are not ARNs", name, pattern)
		case strings.HasSuffix(name, "SecretArn") && !re.MatchString(secretARNExample):
			p.add("parameter %s: AllowedPattern %q must admit a Secrets Manager ARN", name, pattern)
		}
		if strings.HasSuffix(name, "SecretArn") && str(def["Default"]) != "" {
			p.add("parameter %s: a secret ARN parameter has no default", name)
		}
	}
	walkStrings(t.Root, "", func(where, s string) {
		if LooksSecret(s) {
			p.add("%s: literal looks like a credential", where)
		}
	})
	return p
}

func walkStrings(v any, where string, f func(where, s string)) {
	switch x := v.(type) {
	case string:
		f(where, x)
	case map[string]any:
		for k, e := range x {
			walkStrings(e, where+"/"+k, f)
		}
	case []any:
		for i, e := range x {
			walkStrings(e, fmt.Sprintf("%s[%d]", where, i), f)
		}
	}
}

// ---------------------------------------------------------------- logging

// CheckLogging checks JSON logs and one log group per function that its own role writes, retention
// on every log group, and awslogs into a log group of the stack for the agent.
func CheckLogging(t *Template) []string {
	var p problems
	logGroup := func(owner string, v any) (string, bool) {
		id, ok := refTarget(v)
		if r, exists := t.Resource(id); !ok || !exists || r.Type != typeLogGroup {
			p.add("%s: log group must be !Ref to an %s of the template", owner, typeLogGroup)
			return "", false
		}
		return id, true
	}
	used := map[string]string{}
	for _, r := range t.ResourcesOfType(typeFunction) {
		f := r.Props()
		if got := str(path(f, "LoggingConfig", "LogFormat")); got != "JSON" {
			p.add("%s: LoggingConfig.LogFormat is %q, want JSON", r.ID, got)
		}
		// Lambda reads the EMF lines (no "level") as INFO: a stricter filter would drop the metrics.
		if got := str(path(f, "LoggingConfig", "ApplicationLogLevel")); !slices.Contains([]string{"TRACE", "DEBUG", "INFO"}, got) {
			p.add("%s: LoggingConfig.ApplicationLogLevel is %q; it must let INFO through (TRACE, DEBUG or INFO), or Lambda drops the metric lines", r.ID, got)
		}
		id, ok := logGroup(r.ID, path(f, "LoggingConfig", "LogGroup"))
		if !ok {
			continue
		}
		if other, dup := used[id]; dup {
			p.add("%s: log group %s is shared with %s (one per function)", r.ID, id, other)
		}
		used[id] = r.ID
		role, _, _ := getAttTarget(f["Role"])
		if !roleWritesLogGroup(t, role, id) {
			p.add("%s: role %s does not grant logs:PutLogEvents on %s", r.ID, role, id)
		}
	}
	for _, r := range t.ResourcesOfType(typeLogGroup) {
		if r.Props()["RetentionInDays"] == nil {
			p.add("%s: RetentionInDays must be set", r.ID)
		}
	}
	if td, c, ok := agentContainer(t); ok {
		lc := asMap(c["LogConfiguration"])
		if str(lc["LogDriver"]) != "awslogs" {
			p.add("%s: LogConfiguration.LogDriver must be awslogs", td.ID)
		} else {
			logGroup(td.ID, path(lc, "Options", "awslogs-group"))
		}
	}
	return p
}

func roleWritesLogGroup(t *Template, role, logGroup string) bool {
	sts, _ := statements(t)
	for _, s := range allows(sts, role) {
		if !slices.Contains(s.actions(), "logs:PutLogEvents") {
			continue
		}
		for _, r := range s.resources() {
			if id, attr, ok := getAttTarget(r); ok && id == logGroup && attr == "Arn" {
				return true
			}
		}
	}
	return false
}

// ---------------------------------------------------------------- HTTP API, routes, schedule

var integrationFunction = regexp.MustCompile(`/functions/\$\{([A-Za-z0-9]+)\.Arn\}/invocations$`)

// CheckAPI checks the deployed HTTP API (SAM's OpenAPI body): a JWT authorizer with issuer and
// audience, CORS origins from a parameter, exactly the routes of httpapi.Routes plus the webhook, each
// integrated with its function and authorized as the contract says; and the sweeper's schedule rule.
func CheckAPI(t *Template) []string {
	var p problems
	apis := t.ResourcesOfType(typeHTTPAPI)
	if len(apis) != 1 {
		return []string{fmt.Sprintf("want exactly one %s, found %d", typeHTTPAPI, len(apis))}
	}
	body := asMap(apis[0].Props()["Body"])
	jwt := ""
	for name, s := range asMap(path(body, "components", "securitySchemes")) {
		a := asMap(asMap(s)["x-amazon-apigateway-authorizer"])
		if str(a["type"]) == "jwt" && path(a, "jwtConfiguration", "issuer") != nil && path(a, "jwtConfiguration", "audience") != nil {
			jwt = name
		}
	}
	if jwt == "" {
		p.add("%s: needs a JWT (Cognito) authorizer with issuer and audience", apis[0].ID)
	}
	corsOK := false
	for _, b := range branches(body["x-amazon-apigateway-cors"]) {
		if name, ok := refTarget(asMap(b)["allowOrigins"]); ok && t.Parameters()[name] != nil {
			corsOK = true
		}
	}
	if !corsOK {
		p.add("%s: CORS allowOrigins must come from a parameter", apis[0].ID)
	}

	type deployed struct{ fn, auth string }
	got := map[string]deployed{} // "METHOD path"
	for pth, ops := range asMap(body["paths"]) {
		for method, op := range asMap(ops) {
			uri, _ := subTemplate(path(op, "x-amazon-apigateway-integration", "uri"))
			fn := ""
			if m := integrationFunction.FindStringSubmatch(uri); m != nil {
				fn = m[1]
			}
			auth := ""
			for _, s := range list(asMap(op)["security"]) {
				for name := range asMap(s) {
					auth = name
				}
			}
			got[strings.ToUpper(method)+" "+pth] = deployed{fn, auth}
		}
	}
	for _, rt := range Routes {
		key := rt.Method + " " + rt.Path
		d, ok := got[key]
		switch {
		case !ok:
			p.add("route %s missing", key)
		case d.fn != rt.Function:
			p.add("route %s goes to %q, want %s", key, d.fn, rt.Function)
		case rt.Authorized && (d.auth != jwt || jwt == ""):
			p.add("route %s must use the Cognito authorizer (got %q)", key, d.auth)
		case !rt.Authorized && d.auth != "" && d.auth != "NONE":
			p.add("route %s must have no authorizer (got %q)", key, d.auth)
		}
		delete(got, key)
	}
	for _, key := range sortedKeys(got) {
		p.add("route %s is not in the route contract (httpapi.Routes, templatecheck.Routes)", key)
	}

	scheduled := false
	for _, r := range t.ResourcesOfType("AWS::Events::Rule") {
		for _, target := range list(r.Props()["Targets"]) {
			if id, _, _ := getAttTarget(asMap(target)["Arn"]); id == "SweeperFunction" && str(r.Props()["ScheduleExpression"]) == SweeperSchedule {
				scheduled = true
			}
		}
	}
	if !scheduled {
		p.add("SweeperFunction: needs a schedule rule %s targeting it", SweeperSchedule)
	}
	return p
}

// CheckThrottling checks the HTTP API stage's throttling: a default for every route, and per route
// (Routes' Throttle) settings of its own, from parameters: the create-room routes' defaults below the
// stage's, the webhook's its own. Route settings for routes that do not exist are refused (a typo
// would leave the route at the default).
func CheckThrottling(t *Template) []string {
	var p problems
	stages := t.ResourcesOfType("AWS::ApiGatewayV2::Stage")
	if len(stages) != 1 {
		return []string{fmt.Sprintf("want exactly one AWS::ApiGatewayV2::Stage, found %d", len(stages))}
	}
	stage := stages[0]
	// limits reads a settings block's rate and burst: both must be parameters with a default.
	limits := func(where string, settings any) (rate, burst float64, ok bool) {
		ok = true
		for _, k := range []string{"ThrottlingRateLimit", "ThrottlingBurstLimit"} {
			name, isRef := refTarget(asMap(settings)[k])
			def, isNum := num(t.Parameters()[name]["Default"])
			if !isRef || !isNum {
				p.add("%s: %s must be !Ref to a Number parameter with a default", where, k)
				ok = false
			}
			if k == "ThrottlingRateLimit" {
				rate = def
			} else {
				burst = def
			}
		}
		return rate, burst, ok
	}
	defRate, defBurst, defOK := limits(stage.ID+" DefaultRouteSettings", stage.Props()["DefaultRouteSettings"])
	perRoute := asMap(stage.Props()["RouteSettings"])
	known := map[string]bool{}
	for _, rt := range Routes {
		key := rt.Method + " " + rt.Path
		known[key] = true
		settings, has := perRoute[key]
		switch {
		case rt.Throttle == ThrottleDefault:
			continue
		case !has:
			p.add("%s: route %s needs its own RouteSettings (throttling)", stage.ID, key)
			continue
		}
		rate, burst, ok := limits(stage.ID+" RouteSettings "+key, settings)
		if ok && defOK && rt.Throttle == ThrottleTighter && (rate >= defRate || burst >= defBurst) {
			p.add("%s: route %s is throttled at %v/s burst %v by default, not below the stage default %v/s burst %v",
				stage.ID, key, rate, burst, defRate, defBurst)
		}
	}
	for _, key := range sortedKeys(perRoute) {
		if !known[key] {
			p.add("%s: RouteSettings for %s, which is not a route of the API", stage.ID, key)
		}
	}
	return p
}

// ---------------------------------------------------------------- alarms and outputs

// CheckOutputs checks the outputs the deployment guide relies on.
func CheckOutputs(t *Template) []string {
	var p problems
	outs := asMap(t.Root["Outputs"])
	for _, name := range RequiredOutputs {
		if outs[name] == nil {
			p.add("output %s missing", name)
		}
	}
	if s, _ := subTemplate(path(outs, "WebhookUrl", "Value")); !strings.HasSuffix(s, "/livekit/webhook") {
		p.add("output WebhookUrl must end with /livekit/webhook")
	}
	return p
}
