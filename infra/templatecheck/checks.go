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
	typeFunction  = "AWS::Serverless::Function"
	typeHTTPAPI   = "AWS::Serverless::HttpApi"
	typeRole      = "AWS::IAM::Role"
	typeTable     = "AWS::DynamoDB::Table"
	typeLogGroup  = "AWS::Logs::LogGroup"
	typeTaskDef   = "AWS::ECS::TaskDefinition"
	typeCluster   = "AWS::ECS::Cluster"
	typeECRRepo   = "AWS::ECR::Repository"
	lambdaRuntime = "provided.al2023"
)

// All runs every template check.
func All(t *Template) []string {
	var out []string
	for _, c := range []func(*Template) []string{
		CheckFunctions, CheckEnvironment, CheckTables, CheckIAM, CheckFunctionScopes, CheckParameters, CheckLogging,
		CheckAgentTask, CheckAPI, CheckOutputs, CheckTimeBudget,
	} {
		out = append(out, c(t)...)
	}
	return out
}

type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// ---------------------------------------------------------------- functions: runtime, arch, handler, build

// CheckFunctions checks that exactly the expected functions exist, built by `sam build` through the
// Makefile, as arm64 provided.al2023 `bootstrap` binaries with an explicit least-privilege role.
func CheckFunctions(t *Template) []string {
	var p problems
	seen := map[string]bool{}
	for _, r := range t.ResourcesOfType(typeFunction) {
		seen[r.ID] = true
		if _, ok := Functions[r.ID]; !ok {
			p.add("%s: function not in the deployment contract (templatecheck.Functions)", r.ID)
		}
		f := t.FunctionProps(r)
		if got := str(f["Runtime"]); got != lambdaRuntime {
			p.add("%s: Runtime is %q, want %q", r.ID, got, lambdaRuntime)
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
		if got := str(f["CodeUri"]); got != "." && got != "./" {
			p.add("%s: CodeUri is %q, want . (the go.work workspace and Makefile at the root)", r.ID, got)
		}
		if f["MemorySize"] == nil || f["Timeout"] == nil {
			p.add("%s: MemorySize and Timeout must be set", r.ID)
		}
		if n, ok := f["Timeout"].(int); ok && hasHTTPEvent(r) && n > 29 {
			p.add("%s: Timeout %d s exceeds the HTTP API's 30 s integration limit", r.ID, n)
		}
		// Without an explicit role SAM generates one with AWSLambdaBasicExecutionRole (logs on "*").
		role, attr, ok := getAttTarget(f["Role"])
		if rr, exists := t.Resource(role); !ok || attr != "Arn" || !exists || rr.Type != typeRole {
			p.add("%s: Role must be !GetAtt <an AWS::IAM::Role of this template>.Arn", r.ID)
		}
		if f["Policies"] != nil {
			p.add("%s: Policies must not be used (the explicit Role holds the permissions)", r.ID)
		}
	}
	for id := range Functions {
		if !seen[id] {
			p.add("%s: function missing from the template", id)
		}
	}
	return p
}

func hasHTTPEvent(r Resource) bool {
	for _, e := range asMap(r.Props()["Events"]) {
		if str(asMap(e)["Type"]) == "HttpApi" {
			return true
		}
	}
	return false
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

// ---------------------------------------------------------------- environment contract

var secretEnvName = regexp.MustCompile(`(?i)(SECRET|PASSWORD|PASSWD|PRIVATE_KEY|CREDENTIALS?)$`)

// varsRead records every variable config.Load asks for when fn runs with the ECS launcher, so the
// list comes from the code itself.
func varsRead(fn config.Function) map[string]bool {
	read := map[string]bool{}
	_, _ = config.Load(fn, func(name string) string {
		read[name] = true
		if name == "AGENT_LAUNCHER" {
			return config.LauncherECS
		}
		return "set"
	})
	return read
}

// CheckEnvironment checks that every variable config.RequiredVars lists for a function is set for
// that function (Globals merged), with the ECS launcher, and that no secret value is in the environment.
func CheckEnvironment(t *Template) []string {
	var p problems
	for _, r := range t.ResourcesOfType(typeFunction) {
		fn, ok := Functions[r.ID]
		if !ok {
			continue
		}
		env := asMap(path(t.FunctionProps(r), "Environment", "Variables"))
		for _, alternatives := range config.RequiredVars(fn) {
			if !slices.ContainsFunc(alternatives, func(n string) bool { return isSet(env[n]) }) {
				p.add("%s: environment variable %s is required by config.RequiredVars(%q) but not set",
					r.ID, strings.Join(alternatives, " or "), fn)
			}
		}
		read := varsRead(fn)
		for name := range env {
			if !read[name] {
				p.add("%s: environment variable %s is set but config.Load(%q) never reads it (a typo or a stale setting)", r.ID, name, fn)
			}
		}
		if v, ok := env["AGENT_LAUNCHER"].(string); isSet(env["AGENT_LAUNCHER"]) && (!ok || v != config.LauncherECS) {
			p.add("%s: AGENT_LAUNCHER must be %q in the deployed stack", r.ID, config.LauncherECS)
		}
		for name, v := range env {
			if strings.HasSuffix(name, "_ARN") {
				continue
			}
			if secretEnvName.MatchString(name) {
				p.add("%s: %s puts a secret in the function's environment; pass a Secrets Manager ARN (%s_ARN)", r.ID, name, name)
			}
			if strings.Contains(name, "API_KEY") {
				if s, literal := v.(string); literal && !strings.HasPrefix(s, "{{resolve:") {
					p.add("%s: %s is a literal; resolve it from Secrets Manager", r.ID, name)
				}
			}
		}
		for _, pair := range [][2]string{{"SESSIONS_TABLE", typeTable}, {"CATEGORIES_TABLE", typeTable},
			{"ECS_CLUSTER", typeCluster}, {"AGENT_TASK_DEFINITION", typeTaskDef}} {
			v, present := env[pair[0]]
			if !present {
				continue
			}
			id, ok := refTarget(v)
			if rr, exists := t.Resource(id); !ok || !exists || rr.Type != pair[1] {
				p.add("%s: %s must be !Ref to the stack's %s", r.ID, pair[0], pair[1])
			}
		}
		if name, present := env["AGENT_CONTAINER_NAME"]; present {
			td, _ := refTarget(env["AGENT_TASK_DEFINITION"])
			if !slices.Contains(containerNames(t, td), str(name)) {
				p.add("%s: AGENT_CONTAINER_NAME %v is not a container of %s", r.ID, name, td)
			}
		}
	}
	return p
}

func containerNames(t *Template, taskDef string) []string {
	r, _ := t.Resource(taskDef)
	var out []string
	for _, c := range list(r.Props()["ContainerDefinitions"]) {
		out = append(out, str(asMap(c)["Name"]))
	}
	return out
}

// tableIDs returns the logical ids of the sessions and categories tables, found through the API
// function's SESSIONS_TABLE and CATEGORIES_TABLE (so the check follows what the code is given).
func tableIDs(t *Template) (sessions, categories string) {
	for _, r := range t.ResourcesOfType(typeFunction) {
		env := asMap(path(t.FunctionProps(r), "Environment", "Variables"))
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
// types, indexes, projections, billing) and checks PITR, TTL and deletion protection.
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
		if c.ttl != "" {
			if str(ttl["AttributeName"]) != c.ttl || ttl["Enabled"] != true {
				p.add("%s: TimeToLiveSpecification must enable TTL on %q (the code writes expiring records)", r.ID, c.ttl)
			}
		}
	}
	return p
}

type keyElem struct{ Name, Type string }

func compareTable(r Resource, want *dynamodb.CreateTableInput) []string {
	var p problems
	props := r.Props()
	if got := str(props["BillingMode"]); got != string(want.BillingMode) {
		p.add("%s: BillingMode is %q, want %q", r.ID, got, want.BillingMode)
	}
	gotAttrs := map[string]string{}
	for _, a := range list(props["AttributeDefinitions"]) {
		gotAttrs[str(asMap(a)["AttributeName"])] = str(asMap(a)["AttributeType"])
	}
	wantAttrs := map[string]string{}
	for _, a := range want.AttributeDefinitions {
		wantAttrs[*a.AttributeName] = string(a.AttributeType)
	}
	if fmt.Sprint(sortedPairs(gotAttrs)) != fmt.Sprint(sortedPairs(wantAttrs)) {
		p.add("%s: AttributeDefinitions %v, want %v (shared/dynamotables)", r.ID, sortedPairs(gotAttrs), sortedPairs(wantAttrs))
	}
	if got, w := templateKeys(props["KeySchema"]), sdkKeys(want.KeySchema); fmt.Sprint(got) != fmt.Sprint(w) {
		p.add("%s: KeySchema %v, want %v (shared/dynamotables)", r.ID, got, w)
	}

	type index struct {
		keys       []keyElem
		projection string
		nonKey     []string
	}
	gotIdx := map[string]index{}
	for _, g := range list(props["GlobalSecondaryIndexes"]) {
		m := asMap(g)
		var nk []string
		for _, a := range list(path(m, "Projection", "NonKeyAttributes")) {
			nk = append(nk, str(a))
		}
		sort.Strings(nk)
		gotIdx[str(m["IndexName"])] = index{templateKeys(m["KeySchema"]), str(path(m, "Projection", "ProjectionType")), nk}
		if m["ProvisionedThroughput"] != nil {
			p.add("%s: index %s has ProvisionedThroughput on an on-demand table", r.ID, m["IndexName"])
		}
	}
	wantIdx := map[string]index{}
	for _, g := range want.GlobalSecondaryIndexes {
		nk := append([]string(nil), g.Projection.NonKeyAttributes...)
		sort.Strings(nk)
		wantIdx[*g.IndexName] = index{sdkKeys(g.KeySchema), string(g.Projection.ProjectionType), nk}
	}
	for name, w := range wantIdx {
		g, ok := gotIdx[name]
		if !ok {
			p.add("%s: global secondary index %q missing (shared/dynamotables)", r.ID, name)
			continue
		}
		if fmt.Sprint(g) != fmt.Sprint(w) {
			p.add("%s: index %q is %+v, want %+v (shared/dynamotables)", r.ID, name, g, w)
		}
	}
	for name := range gotIdx {
		if _, ok := wantIdx[name]; !ok {
			p.add("%s: index %q is not in shared/dynamotables", r.ID, name)
		}
	}
	if len(list(props["LocalSecondaryIndexes"])) != len(want.LocalSecondaryIndexes) {
		p.add("%s: LocalSecondaryIndexes differ from shared/dynamotables", r.ID)
	}
	return p
}

func templateKeys(v any) []keyElem {
	var out []keyElem
	for _, k := range list(v) {
		out = append(out, keyElem{str(asMap(k)["AttributeName"]), str(asMap(k)["KeyType"])})
	}
	return out
}

func sdkKeys(ks []types.KeySchemaElement) []keyElem {
	var out []keyElem
	for _, k := range ks {
		out = append(out, keyElem{*k.AttributeName, string(k.KeyType)})
	}
	return out
}

func sortedPairs(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+":"+v)
	}
	sort.Strings(out)
	return out
}

// ---------------------------------------------------------------- IAM least privilege

// statement is one IAM policy statement with where it came from.
type statement struct {
	where string // "<Role>/<PolicyName>"
	role  string
	body  map[string]any
}

func (s statement) actions() []string {
	var out []string
	for _, a := range list(s.body["Action"]) {
		out = append(out, str(a))
	}
	return out
}

func (s statement) resources() []any {
	var out []any
	for _, r := range list(s.body["Resource"]) {
		out = append(out, branches(r)...)
	}
	return out
}

// statements returns every identity-policy statement of the template (Fn::If branches expanded).
func statements(t *Template) ([]statement, problems) {
	var out []statement
	var p problems
	addDoc := func(where, role string, doc any) {
		for _, st := range list(asMap(doc)["Statement"]) {
			for _, b := range branches(st) {
				out = append(out, statement{where: where, role: role, body: asMap(b)})
			}
		}
	}
	for _, r := range t.Resources() {
		props := r.Props()
		switch r.Type {
		case typeRole:
			if props["ManagedPolicyArns"] != nil {
				p.add("%s: ManagedPolicyArns cannot be checked for least privilege; use inline policies", r.ID)
			}
			for _, pol := range list(props["Policies"]) {
				for _, b := range branches(pol) {
					addDoc(r.ID+"/"+str(asMap(b)["PolicyName"]), r.ID, asMap(b)["PolicyDocument"])
				}
			}
		case "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy":
			role := ""
			if roles := list(props["Roles"]); len(roles) == 1 {
				role, _ = refTarget(roles[0])
			}
			addDoc(r.ID, role, props["PolicyDocument"])
		case typeFunction:
			for _, pol := range list(props["Policies"]) {
				if _, isString := pol.(string); isString {
					p.add("%s: managed policy %v cannot be checked for least privilege", r.ID, pol)
					continue
				}
				addDoc(r.ID+"/Policies", "", asMap(pol))
				for k := range asMap(pol) {
					if strings.HasSuffix(k, "Policy") && k != "Statement" {
						p.add("%s: SAM policy template %s cannot be checked for least privilege", r.ID, k)
					}
				}
			}
		}
	}
	return out, p
}

var (
	subVar           = regexp.MustCompile(`\$\{[^}]*\}`)
	wildcardResource = regexp.MustCompile(`^[A-Za-z-]*[:/]?\*$`)
)

// broadARN reports whether an ARN (or a Sub template of one) grants a whole service, region or
// account: a wildcard region or account, or a resource part that is only "<type>/*" or "<type>:*".
func broadARN(arn string) bool {
	parts := strings.SplitN(subVar.ReplaceAllString(arn, "V"), ":", 6)
	if len(parts) < 6 || parts[0] != "arn" {
		return false
	}
	return strings.Contains(parts[2], "*") || parts[3] == "*" || parts[4] == "*" || wildcardResource.MatchString(parts[5])
}

// CheckIAM checks least privilege: no wildcard actions, no Resource "*" for an action that supports
// resource-level permissions, no service-wide ARN wildcards, and, per sensitive action, resources
// scoped to this stack (the agent task family, the cluster's tasks, the two agent roles, the stack's
// tables and indexes, the named secrets, the stack's log groups).
func CheckIAM(t *Template) []string {
	sts, found := statements(t)
	p := found
	c := iamContext(t)
	for _, s := range sts {
		if str(s.body["Effect"]) != "Allow" {
			continue
		}
		if s.body["NotAction"] != nil || s.body["NotResource"] != nil {
			p.add("%s: NotAction/NotResource grant more than they name", s.where)
		}
		actions := s.actions()
		for _, a := range actions {
			if a == "" || strings.Contains(a, "*") {
				p.add("%s: action %q: wildcards and intrinsics are not allowed in actions", s.where, a)
			}
		}
		for _, res := range s.resources() {
			lit, isLit := res.(string)
			if isLit && lit == "*" {
				for _, a := range actions {
					if !actionsWithoutResourceLevelPermissions[a] {
						p.add("%s: %s on Resource \"*\" (it supports resource-level permissions)", s.where, a)
					}
				}
				continue
			}
			text := lit
			if !isLit {
				text, _ = subTemplate(res)
			}
			if text != "" && broadARN(text) {
				p.add("%s: resource %q is a service-wide wildcard", s.where, text)
			}
		}
		for _, a := range actions {
			p = append(p, c.checkScoped(s, a)...)
		}
	}
	return p
}

type iamCtx struct {
	t          *Template
	family     string          // agent task definition family (Sub template or literal)
	clusters   map[string]bool // ECS clusters of the stack
	agentRoles map[string]bool // task role and execution role of the agent task definition
	tables     map[string]bool
	logGroups  map[string]bool
	repos      map[string]bool
}

func iamContext(t *Template) iamCtx {
	c := iamCtx{t: t, clusters: map[string]bool{}, agentRoles: map[string]bool{}, tables: map[string]bool{},
		logGroups: map[string]bool{}, repos: map[string]bool{}}
	for _, r := range t.Resources() {
		switch r.Type {
		case typeCluster:
			c.clusters[r.ID] = true
		case typeTable:
			c.tables[r.ID] = true
		case typeLogGroup:
			c.logGroups[r.ID] = true
		case typeECRRepo:
			c.repos[r.ID] = true
		case typeTaskDef:
			props := r.Props()
			if s, ok := subTemplate(props["Family"]); ok {
				c.family = s
			} else {
				c.family = str(props["Family"])
			}
			for _, k := range []string{"TaskRoleArn", "ExecutionRoleArn"} {
				if id, attr, ok := getAttTarget(props[k]); ok && attr == "Arn" {
					c.agentRoles[id] = true
				}
			}
		}
	}
	return c
}

func (c iamCtx) isSecretParam(v any) bool {
	name, ok := refTarget(v)
	return ok && strings.HasSuffix(name, "SecretArn") && c.t.Parameters()[name] != nil
}

func (c iamCtx) isParam(v any) bool {
	name, ok := refTarget(v)
	return ok && c.t.Parameters()[name] != nil
}

func (c iamCtx) getAttArnOf(v any, ids map[string]bool) bool {
	id, attr, ok := getAttTarget(v)
	return ok && attr == "Arn" && ids[id]
}

// clusterTaskARN reports whether v is arn:...:task/${<Cluster>}/* for a cluster of the stack.
func (c iamCtx) clusterTaskARN(v any) bool {
	s, ok := subTemplate(v)
	if !ok {
		return false
	}
	for id := range c.clusters {
		if strings.Contains(s, ":task/${"+id+"}/") {
			return true
		}
	}
	return false
}

func (c iamCtx) clusterCondition(s statement) bool {
	for _, op := range []string{"ArnEquals", "StringEquals"} {
		if c.getAttArnOf(path(s.body, "Condition", op, "ecs:cluster"), c.clusters) {
			return true
		}
	}
	return false
}

func (c iamCtx) checkScoped(s statement, action string) []string {
	var p problems
	service, _, _ := strings.Cut(action, ":")
	each := func(ok func(any) bool, want string) {
		for _, r := range s.resources() {
			if lit, isLit := r.(string); isLit && lit == "*" {
				continue // reported by CheckIAM
			}
			if !ok(r) {
				p.add("%s: %s on %v; want %s", s.where, action, r, want)
			}
		}
	}
	switch {
	case action == "ecs:RunTask":
		each(func(r any) bool {
			sub, ok := subTemplate(r)
			return ok && c.family != "" && strings.Contains(sub, ":task-definition/"+c.family+":")
		}, "the agent task definition family only (task-definition/"+c.family+":*)")
		if !c.clusterCondition(s) {
			p.add("%s: ecs:RunTask needs Condition ecs:cluster = the stack's cluster", s.where)
		}
	case action == "ecs:StopTask" || action == "ecs:DescribeTasks":
		each(c.clusterTaskARN, "tasks of the stack's cluster (task/${Cluster}/*)")
		if !c.clusterCondition(s) {
			p.add("%s: %s needs Condition ecs:cluster = the stack's cluster", s.where, action)
		}
	case action == "ecs:ListTasks":
		if !c.clusterCondition(s) {
			p.add("%s: ecs:ListTasks needs Condition ecs:cluster = the stack's cluster", s.where)
		}
	case action == "ecs:TagResource":
		each(c.clusterTaskARN, "tasks of the stack's cluster (task/${Cluster}/*)")
		if str(path(s.body, "Condition", "StringEquals", "ecs:CreateAction")) != "RunTask" {
			p.add("%s: ecs:TagResource needs Condition ecs:CreateAction = RunTask", s.where)
		}
	case action == "iam:PassRole":
		each(func(r any) bool { return c.getAttArnOf(r, c.agentRoles) }, "the agent's task and execution roles only")
		if str(path(s.body, "Condition", "StringEquals", "iam:PassedToService")) != "ecs-tasks.amazonaws.com" {
			p.add("%s: iam:PassRole needs Condition iam:PassedToService = ecs-tasks.amazonaws.com", s.where)
		}
	case service == "secretsmanager":
		each(c.isSecretParam, "the ARN parameters of the named secrets (…SecretArn)")
	case service == "kms":
		each(c.isParam, "the KMS key parameter")
		if path(s.body, "Condition", "StringEquals", "kms:ViaService") == nil {
			p.add("%s: %s needs Condition kms:ViaService", s.where, action)
		}
	case service == "dynamodb":
		each(func(r any) bool {
			if c.getAttArnOf(r, c.tables) {
				return true
			}
			sub, ok := subTemplate(r)
			if !ok {
				return false
			}
			for id := range c.tables {
				if strings.HasPrefix(sub, "${"+id+".Arn}/index/") {
					return true
				}
			}
			return false
		}, "the stack's tables and their indexes")
	case service == "logs":
		each(func(r any) bool { return c.getAttArnOf(r, c.logGroups) }, "the stack's log groups")
	case service == "ecr" && action != "ecr:GetAuthorizationToken":
		each(func(r any) bool { return c.getAttArnOf(r, c.repos) }, "the stack's ECR repository")
	case service == "ecs":
		p.add("%s: %s is not an action the design grants", s.where, action)
	}
	return p
}

var subArnPrefix = regexp.MustCompile(`^\$\{([A-Za-z0-9]+)\.Arn\}`)

// CheckFunctionScopes checks that each function's role reaches only the tables and secrets that
// function is given in its environment (the webhook and sweeper never touch the categories table).
func CheckFunctionScopes(t *Template) []string {
	var p problems
	sts, _ := statements(t)
	for _, r := range t.ResourcesOfType(typeFunction) {
		f := t.FunctionProps(r)
		role, _, _ := getAttTarget(f["Role"])
		given := map[string]bool{}
		for _, v := range asMap(path(f, "Environment", "Variables")) {
			if id, ok := refTarget(v); ok {
				given[id] = true
			}
		}
		for _, s := range sts {
			if s.role != role || role == "" || str(s.body["Effect"]) != "Allow" {
				continue
			}
			for _, a := range s.actions() {
				service, _, _ := strings.Cut(a, ":")
				if service != "dynamodb" && service != "secretsmanager" {
					continue
				}
				for _, res := range s.resources() {
					id := ""
					if x, attr, ok := getAttTarget(res); ok && attr == "Arn" {
						id = x
					} else if x, ok := refTarget(res); ok {
						id = x
					} else if sub, ok := subTemplate(res); ok {
						if m := subArnPrefix.FindStringSubmatch(sub); m != nil {
							id = m[1]
						}
					}
					if !given[id] {
						p.add("%s: %s on %v, which %s is not given in its environment", s.where, a, res, r.ID)
					}
				}
			}
		}
	}
	return p
}

// ---------------------------------------------------------------- parameters: no secret values

var (
	secretParamName = regexp.MustCompile(`(?i)(secret|password|passwd|apikey|api_key|credential|privatekey|private_key|accesskey)`)
	// secretLooking matches values shaped like credentials: OpenAI keys, AWS access keys, PEM blocks,
	// long random tokens (LiveKit secrets are 40+ base62 characters).
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
// Secrets Manager ARNs (validated by AllowedPattern), nothing is NoEcho, and no default or literal
// anywhere in the template looks like a credential.
func CheckParameters(t *Template) []string {
	var p problems
	for name, def := range t.Parameters() {
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

// CheckLogging checks JSON logs and one log group with retention per function, the roles' log
// permissions on exactly that group, retention on every log group, and awslogs for ECS containers.
func CheckLogging(t *Template) []string {
	var p problems
	logGroupOK := func(owner string, v any) (string, bool) {
		id, ok := refTarget(v)
		r, exists := t.Resource(id)
		if !ok || !exists || r.Type != typeLogGroup {
			p.add("%s: log group must be !Ref to an %s of the template", owner, typeLogGroup)
			return "", false
		}
		return id, true
	}
	used := map[string]string{}
	for _, r := range t.ResourcesOfType(typeFunction) {
		f := t.FunctionProps(r)
		if got := str(path(f, "LoggingConfig", "LogFormat")); got != "JSON" {
			p.add("%s: LoggingConfig.LogFormat is %q, want JSON", r.ID, got)
		}
		id, ok := logGroupOK(r.ID, path(f, "LoggingConfig", "LogGroup"))
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
	for _, r := range t.ResourcesOfType(typeTaskDef) {
		for _, c := range list(r.Props()["ContainerDefinitions"]) {
			lc := asMap(asMap(c)["LogConfiguration"])
			owner := r.ID + "/" + str(asMap(c)["Name"])
			if str(lc["LogDriver"]) != "awslogs" {
				p.add("%s: LogConfiguration.LogDriver must be awslogs", owner)
				continue
			}
			logGroupOK(owner, path(lc, "Options", "awslogs-group"))
		}
	}
	return p
}

func roleWritesLogGroup(t *Template, role, logGroup string) bool {
	sts, _ := statements(t)
	for _, s := range sts {
		if s.role != role || !slices.Contains(s.actions(), "logs:PutLogEvents") {
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

// ---------------------------------------------------------------- the agent task

// CheckAgentTask checks the agent's task definition (Fargate, ARM64, sizes as parameters, plain
// non-secret environment, secrets from Secrets Manager), its execution role (image, those secrets,
// logs) and its task role (read the categories table, nothing else), and the cluster's capacity.
func CheckAgentTask(t *Template) []string {
	var p problems
	tds := t.ResourcesOfType(typeTaskDef)
	if len(tds) != 1 {
		return []string{fmt.Sprintf("want exactly one %s (the agent), found %d", typeTaskDef, len(tds))}
	}
	td := tds[0]
	props := td.Props()
	if !slices.ContainsFunc(list(props["RequiresCompatibilities"]), func(v any) bool { return v == "FARGATE" }) {
		p.add("%s: RequiresCompatibilities must include FARGATE", td.ID)
	}
	if str(props["NetworkMode"]) != "awsvpc" {
		p.add("%s: NetworkMode must be awsvpc", td.ID)
	}
	if str(path(props, "RuntimePlatform", "CpuArchitecture")) != "ARM64" ||
		str(path(props, "RuntimePlatform", "OperatingSystemFamily")) != "LINUX" {
		p.add("%s: RuntimePlatform must be ARM64/LINUX", td.ID)
	}
	for _, k := range []string{"Cpu", "Memory"} {
		if name, ok := refTarget(props[k]); !ok || t.Parameters()[name] == nil {
			p.add("%s: %s must be a parameter", td.ID, k)
		}
	}
	if props["Family"] == nil {
		p.add("%s: Family must be set (RunTask is granted on the family)", td.ID)
	}

	secretParams := map[string]bool{}
	containers := list(props["ContainerDefinitions"])
	if len(containers) != 1 {
		p.add("%s: want one container (the agent), found %d", td.ID, len(containers))
	}
	for _, cv := range containers {
		c := asMap(cv)
		env := map[string]bool{}
		for _, e := range list(c["Environment"]) {
			env[str(asMap(e)["Name"])] = true
		}
		for _, name := range AgentEnv {
			if !env[name] {
				p.add("%s: container %s: environment variable %s missing", td.ID, c["Name"], name)
			}
		}
		for name := range env {
			if slices.Contains(AgentSecrets, name) || secretEnvName.MatchString(name) {
				p.add("%s: container %s: %s is a secret; it belongs in Secrets (Secrets Manager)", td.ID, c["Name"], name)
			}
		}
		var names []string
		for _, sv := range list(c["Secrets"]) {
			s := asMap(sv)
			names = append(names, str(s["Name"]))
			param := secretParamOfValueFrom(s["ValueFrom"])
			if param == "" || t.Parameters()[param] == nil {
				p.add("%s: secret %s: ValueFrom must be a …SecretArn parameter (optionally :json-key::)", td.ID, s["Name"])
				continue
			}
			secretParams[param] = true
		}
		sort.Strings(names)
		want := append([]string(nil), AgentSecrets...)
		sort.Strings(want)
		if !slices.Equal(names, want) {
			p.add("%s: container %s: Secrets %v, want %v", td.ID, c["Name"], names, want)
		}
	}

	_, categories := tableIDs(t)
	sts, _ := statements(t)
	if role, _, ok := getAttTarget(props["ExecutionRoleArn"]); ok {
		granted := map[string]bool{}
		for _, s := range sts {
			if s.role != role || str(s.body["Effect"]) != "Allow" {
				continue
			}
			for _, a := range s.actions() {
				if !executionRoleActions[a] {
					p.add("%s: the execution role may only pull the image, read the agent's secrets and write logs; %s is extra", s.where, a)
				}
				if a == "secretsmanager:GetSecretValue" {
					for _, r := range s.resources() {
						name, _ := refTarget(r)
						granted[name] = true
					}
				}
			}
		}
		if fmt.Sprint(sortedKeys(granted)) != fmt.Sprint(sortedKeys(secretParams)) {
			p.add("%s: execution role reads secrets %v, the container uses %v", td.ID, sortedKeys(granted), sortedKeys(secretParams))
		}
	} else {
		p.add("%s: ExecutionRoleArn must be !GetAtt of a role of the template", td.ID)
	}
	if role, _, ok := getAttTarget(props["TaskRoleArn"]); ok {
		for _, s := range sts {
			if s.role != role || str(s.body["Effect"]) != "Allow" {
				continue
			}
			for _, a := range s.actions() {
				if !dynamoReadActions[a] {
					p.add("%s: the agent's task role may only read the categories table; %s is extra", s.where, a)
				}
			}
			for _, r := range s.resources() {
				if id, attr, ok := getAttTarget(r); !ok || id != categories || attr != "Arn" {
					p.add("%s: the agent's task role may only use the categories table, not %v", s.where, r)
				}
			}
		}
	} else {
		p.add("%s: TaskRoleArn must be !GetAtt of a role of the template", td.ID)
	}

	for _, cl := range t.ResourcesOfType(typeCluster) {
		if !slices.ContainsFunc(list(cl.Props()["CapacityProviders"]), func(v any) bool { return v == "FARGATE" }) {
			p.add("%s: CapacityProviders must include FARGATE", cl.ID)
		}
	}
	if len(t.ResourcesOfType(typeCluster)) != 1 {
		p.add("want exactly one %s", typeCluster)
	}
	return p
}

var secretValueFrom = regexp.MustCompile(`^\$\{([A-Za-z0-9]+SecretArn)\}:[A-Za-z0-9_]+::$`)

// secretParamOfValueFrom returns P for !Ref P or !Sub "${P}:json-key::" where P ends with SecretArn.
func secretParamOfValueFrom(v any) string {
	if name, ok := refTarget(v); ok && strings.HasSuffix(name, "SecretArn") {
		return name
	}
	if s, ok := subTemplate(v); ok {
		m := secretValueFrom.FindStringSubmatch(s)
		if m != nil {
			return m[1]
		}
	}
	return ""
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ---------------------------------------------------------------- HTTP API, routes, schedule

// CheckAPI checks the HTTP API (JWT authorizer, CORS from a parameter), the routes and their
// authorization, and the sweeper's schedule.
func CheckAPI(t *Template) []string {
	var p problems
	apis := t.ResourcesOfType(typeHTTPAPI)
	if len(apis) != 1 {
		return []string{fmt.Sprintf("want exactly one %s, found %d", typeHTTPAPI, len(apis))}
	}
	api := apis[0]
	auth := asMap(api.Props()["Auth"])
	jwt := ""
	for name, a := range asMap(auth["Authorizers"]) {
		jc := asMap(asMap(a)["JwtConfiguration"])
		if jc["issuer"] != nil && jc["audience"] != nil {
			jwt = name
		}
	}
	if jwt == "" {
		p.add("%s: needs a JWT (Cognito) authorizer with issuer and audience", api.ID)
	}
	defaultAuth := str(auth["DefaultAuthorizer"])
	cors := api.Props()["CorsConfiguration"]
	corsOK := false
	for _, b := range branches(cors) {
		if name, ok := refTarget(asMap(b)["AllowOrigins"]); ok && t.Parameters()[name] != nil {
			corsOK = true
		}
	}
	if !corsOK {
		p.add("%s: CorsConfiguration.AllowOrigins must come from a parameter", api.ID)
	}

	type key struct{ fn, method, path string }
	got := map[key]string{} // -> authorizer in effect
	for _, r := range t.ResourcesOfType(typeFunction) {
		for _, ev := range asMap(r.Props()["Events"]) {
			e := asMap(ev)
			if str(e["Type"]) != "HttpApi" {
				continue
			}
			ep := asMap(e["Properties"])
			if id, _ := refTarget(ep["ApiId"]); id != api.ID {
				p.add("%s: HttpApi event must set ApiId: !Ref %s", r.ID, api.ID)
			}
			a := str(path(ep, "Auth", "Authorizer"))
			if a == "" {
				a = defaultAuth
			}
			got[key{r.ID, strings.ToUpper(str(ep["Method"])), str(ep["Path"])}] = a
		}
	}
	for _, rt := range Routes {
		k := key{rt.Function, rt.Method, rt.Path}
		a, ok := got[k]
		switch {
		case !ok:
			p.add("%s: route %s %s missing", rt.Function, rt.Method, rt.Path)
		case rt.Authorized && (a != jwt || jwt == ""):
			p.add("%s: route %s %s must use the Cognito authorizer (got %q)", rt.Function, rt.Method, rt.Path, a)
		case !rt.Authorized && a != "" && a != "NONE":
			p.add("%s: route %s %s must have no authorizer (got %q)", rt.Function, rt.Method, rt.Path, a)
		}
		delete(got, k)
	}
	for k := range got {
		p.add("%s: route %s %s is not in the route contract (templatecheck.Routes)", k.fn, k.method, k.path)
	}

	sweeper, _ := t.Resource("SweeperFunction")
	scheduled := false
	for _, ev := range asMap(sweeper.Props()["Events"]) {
		e := asMap(ev)
		if (str(e["Type"]) == "Schedule" || str(e["Type"]) == "ScheduleV2") &&
			str(path(e, "Properties", "Schedule"))+str(path(e, "Properties", "ScheduleExpression")) == SweeperSchedule {
			scheduled = true
		}
	}
	if !scheduled {
		p.add("SweeperFunction: needs a Schedule event %s", SweeperSchedule)
	}
	return p
}

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
