package templatecheck

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"

	"counselvideo/shared/agents"
	"counselvideo/shared/config"
	"counselvideo/shared/httpapi"
)

// The deployment's side of the contracts. What the code defines is read from the code itself:
// config.RequiredVars and config.Load (functions), agentimage's VARIABLES (agent task), the launcher's
// per-session variables (agents.Session.Env), dynamotables, httpapi.Routes. What only the deployment
// defines (logical ids, the webhook route, outputs the guide relies on) is listed here, once.

// Functions maps each Lambda function (its logical id is also its Makefile target build-<id>) to the
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
	Throttle               Throttle
}

// Throttle is what a route's own throttling on the stage must be.
type Throttle int

const (
	// ThrottleDefault: the stage's default route settings apply.
	ThrottleDefault Throttle = iota
	// ThrottleTighter: its own settings, below the default (each create-room can start a task).
	ThrottleTighter
	// ThrottleOwn: its own settings, so student traffic and changes of the default never set them (the
	// LiveKit webhook).
	ThrottleOwn
)

// Routes are the HTTP API's routes: the student API's own route table (all behind the Cognito
// authorizer; the create-room routes throttled tighter) and the LiveKit webhook (no authorizer, its
// own throttling).
var Routes = func() []Route {
	var out []Route
	for _, r := range httpapi.Routes() {
		throttle := ThrottleDefault
		if slices.Contains(httpapi.CreateRoomRoutes(), r) {
			throttle = ThrottleTighter
		}
		out = append(out, Route{"ApiFunction", r.Method, r.Path, true, throttle})
	}
	return append(out, Route{"WebhookFunction", "POST", "/livekit/webhook", false, ThrottleOwn})
}()

// PassedToAgent maps the API's variables whose value the launcher hands to the agent per session
// (agents.Session.Env) to the agent's variable: the session's maximum duration, which the student's
// daily minutes can only shorten.
var PassedToAgent = map[string]string{"SESSION_MAX_DURATION_SECONDS": "AGENT_MAX_DURATION_SECONDS"}

// SweeperSchedule is the sweeper's schedule expression.
const SweeperSchedule = "rate(1 minute)"

// RequiredOutputs are the stack outputs the platform team's guide (docs/deploy.md) relies on.
var RequiredOutputs = []string{
	"ApiUrl", "WebhookUrl", "SessionsTableName", "CategoriesTableName", "AgentRepositoryUri",
}

// launcherVariables are the agent variables the launcher sets per session (container overrides).
func launcherVariables() map[string]bool {
	out := map[string]bool{}
	for name := range (agents.Session{}).Env() {
		out[name] = true
	}
	return out
}

// AgentVariable is one row of agentimage's VARIABLES table (src/config.ts).
type AgentVariable struct {
	// Entry is the one entry point that reads the variable ("direct": node dist/main.js, "worker":
	// node dist/worker.js); empty when both do. Required applies to the entries that read it.
	Entry      string   `json:"entry"`
	Required   bool     `json:"required"`
	Secret     bool     `json:"secret"`
	Default    any      `json:"default"`
	Seconds    bool     `json:"seconds"`
	MaxSeconds int      `json:"maxSeconds"`
	URL        []string `json:"url"`
}

// AgentSchema is the agent's environment contract by variable name.
type AgentSchema map[string]AgentVariable

// The agent's entry points, as VARIABLES names them.
const (
	DirectEntry = "direct"
	WorkerEntry = "worker"
)

// ReadBy reports whether the entry point reads the variable.
func (v AgentVariable) ReadBy(entry string) bool { return v.Entry == "" || v.Entry == entry }

// LoadAgentSchema prints the VARIABLES table of the compiled agent (agentimage/dist/config.js, built by
// `make agent-deps`) with node and parses it. A build older than src/config.ts is refused.
func LoadAgentSchema(root string) (AgentSchema, error) {
	var s AgentSchema
	if err := agentExport(root, "config", "VARIABLES", &s); err != nil {
		return nil, err
	}
	if len(s) == 0 {
		return nil, fmt.Errorf("VARIABLES of the agent is not a table of variables")
	}
	return s, nil
}

// LoadAgentEmitted reads the METRICS table of the compiled agent (agentimage/dist/metrics.js): what
// the agent's own lines emit, for the alarms and the dashboard.
func LoadAgentEmitted(root string) (Emitted, error) {
	var table struct {
		Metrics []struct {
			Namespace  string     `json:"namespace"`
			Name       string     `json:"name"`
			Unit       string     `json:"unit"`
			Dimensions [][]string `json:"dimensions"`
		} `json:"metrics"`
		DimensionValues map[string][]string `json:"dimensionValues"`
	}
	if err := agentExport(root, "metrics", "METRICS", &table); err != nil {
		return Emitted{}, err
	}
	if len(table.Metrics) == 0 {
		return Emitted{}, fmt.Errorf("METRICS of the agent lists no metric")
	}
	e := Emitted{Values: table.DimensionValues}
	for _, m := range table.Metrics {
		e.Metrics = append(e.Metrics, EmittedMetric{Namespace: m.Namespace, Name: m.Name, Unit: m.Unit, Dimensions: m.Dimensions, By: "the agent's METRICS"})
	}
	return e, nil
}

// agentExport prints one exported table of a compiled agent module (agentimage/dist/<module>.js)
// with node and decodes it into v. A build older than its source is refused.
func agentExport(root, module, export string, v any) error {
	src := filepath.Join(root, "agentimage", "src", module+".ts")
	built := filepath.Join(root, "agentimage", "dist", module+".js")
	si, err := os.Stat(src)
	if err != nil {
		return err
	}
	bi, err := os.Stat(built)
	if err != nil || bi.ModTime().Before(si.ModTime()) {
		return fmt.Errorf("%s is missing or older than %s: run `make agent-deps` (npm run build in agentimage)", built, src)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return fmt.Errorf("node not found: the agent's contract is read from its compiled modules (Node.js 20.9+)")
	}
	cmd := exec.Command(node, "--input-type=module", "-e",
		`const m = await import(process.argv[1]); process.stdout.write(JSON.stringify(m[process.argv[2]]));`, built, export)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		return fmt.Errorf("reading %s from %s: %v %s", export, built, err, stderr)
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("%s of %s: %v", export, built, err)
	}
	return nil
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

// What the agent's execution role may do: pull the image, read its secrets, write its logs.
var executionRoleActions = map[string]bool{
	"ecr:GetAuthorizationToken": true, "ecr:BatchCheckLayerAvailability": true,
	"ecr:GetDownloadUrlForLayer": true, "ecr:BatchGetImage": true,
	"secretsmanager:GetSecretValue": true, "kms:Decrypt": true,
	"logs:CreateLogStream": true, "logs:PutLogEvents": true,
}
