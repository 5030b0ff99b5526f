package templatecheck

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"counselvideo/infra/poolscaling"
)

// ---------------------------------------------------------------- the warm pool

// The warm pool's side of the deployment contract (docs/deploy.md "Warm pool").
const (
	// PoolCondition holds every pool resource and the functions' AGENT_POOL_AGENT_NAME.
	PoolCondition = "HasAgentPool"
	// The pool's parameters.
	PoolMinParameter         = "AgentPoolMinWorkers"
	PoolMaxParameter         = "AgentPoolMaxWorkers"
	PoolHeadroomParameter    = "AgentPoolHeadroom"
	PoolAgentNameParameter   = "AgentPoolAgentName"
	PoolJoinTimeoutParameter = "AgentPoolJoinTimeoutSeconds"
	// WorkerCommand is the worker entry of the agent image (agentimage/src/worker.ts).
	workerCommand = "node dist/worker.js"
	// Fargate's longest stopTimeout; the worker's bounded close (45 s) needs at least minWorkerStop.
	maxFargateStopTimeout = 120
	minWorkerStop         = 60
)

// PoolVariables are the functions' warm-pool variables: the agent name the API dispatches to (and the
// webhook's replacement), set only with the pool on, and how long both wait for a worker to join.
var PoolVariables = map[string][]string{
	"AGENT_POOL_AGENT_NAME":           {"ApiFunction", "WebhookFunction"},
	"AGENT_POOL_JOIN_TIMEOUT_SECONDS": {"ApiFunction", "WebhookFunction"},
}

const (
	typeService        = "AWS::ECS::Service"
	typeScalableTarget = "AWS::ApplicationAutoScaling::ScalableTarget"
	typeScalingPolicy  = "AWS::ApplicationAutoScaling::ScalingPolicy"
	typeAlarm          = "AWS::CloudWatch::Alarm"
)

func ref(name string) map[string]any { return map[string]any{"Ref": name} }

// poolOnly is the value a function gets only with the pool on.
func poolOnly(v any) map[string]any {
	return map[string]any{"Fn::If": []any{PoolCondition, v, ref("AWS::NoValue")}}
}

// poolService returns the pool's ECS service (the only one: per-session agents are RunTask tasks).
func poolService(t *Template) (Resource, bool) {
	s := t.ResourcesOfType(typeService)
	if len(s) != 1 {
		return Resource{}, false
	}
	return s[0], true
}

// workerContainer returns the pool service's task definition and its one container.
func workerContainer(t *Template) (Resource, map[string]any, bool) {
	svc, ok := poolService(t)
	if !ok {
		return Resource{}, nil, false
	}
	id, _ := refTarget(svc.Props()["TaskDefinition"])
	td, ok := t.Resource(id)
	if !ok || td.Type != typeTaskDef {
		return Resource{}, nil, false
	}
	cs := list(td.Props()["ContainerDefinitions"])
	if len(cs) != 1 {
		return Resource{}, nil, false
	}
	return td, asMap(cs[0]), true
}

// CheckAgentPool checks the warm pool's deployment: its parameters and rules (Max 0 turns it off,
// then Min must be 0; on, Min >= 1), that every pool resource exists only with the pool on, the
// functions' pool variables, the ECS service (regular Fargate, desired count left to scaling,
// deployments that never shrink the pool, the RunTask path's network), and the scalable target,
// step scaling policies and alarms against infra/poolscaling.Chosen, value for value.
func CheckAgentPool(t *Template) []string {
	var p problems
	params := t.Parameters()
	for _, name := range []string{PoolMinParameter, PoolMaxParameter, PoolHeadroomParameter, PoolAgentNameParameter, PoolJoinTimeoutParameter} {
		if params[name] == nil {
			p.add("parameter %s missing (the warm pool)", name)
		}
	}
	if d, _ := num(params[PoolMaxParameter]["Default"]); params[PoolMaxParameter]["Default"] == nil || d != 0 {
		p.add("parameter %s: default must be 0 (pool off: a stack without pool settings behaves as before)", PoolMaxParameter)
	}
	want := map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{ref(PoolMaxParameter), "0"}}}}
	if got := asMap(t.Root["Conditions"])[PoolCondition]; !reflect.DeepEqual(got, want) {
		p.add("condition %s must be !Not [!Equals [!Ref %s, \"0\"]], got %v", PoolCondition, PoolMaxParameter, got)
	}
	p = append(p, checkPoolRules(t)...)

	// Every pool resource exists only with the pool on; with it off the stack is as before.
	for _, r := range t.Resources() {
		pool := r.Type == typeService || r.Type == typeScalableTarget || r.Type == typeScalingPolicy
		if r.Type == typeAlarm {
			for _, a := range list(r.Props()["AlarmActions"]) {
				if id, ok := refTarget(a); ok {
					if x, exists := t.Resource(id); exists && x.Type == typeScalingPolicy {
						pool = true
					}
				}
			}
		}
		if pool && str(r.Body["Condition"]) != PoolCondition {
			p.add("%s: a pool resource needs Condition %s (AgentPoolMaxWorkers 0 turns the pool off)", r.ID, PoolCondition)
		}
	}
	if td, _, ok := workerContainer(t); ok {
		if str(td.Body["Condition"]) != PoolCondition {
			p.add("%s: the worker task definition needs Condition %s", td.ID, PoolCondition)
		}
	}

	// The functions: the agent name only with the pool on, the join wait always.
	for name, fns := range PoolVariables {
		for _, fn := range fns {
			r, ok := t.Resource(fn)
			if !ok {
				continue
			}
			var want any = ref(PoolJoinTimeoutParameter)
			if name == "AGENT_POOL_AGENT_NAME" {
				want = poolOnly(ref(PoolAgentNameParameter))
			}
			if got := t.FunctionEnv(r)[name]; !reflect.DeepEqual(got, want) {
				p.add("%s: %s must be %v, got %v", fn, name, want, got)
			}
		}
	}

	svc, ok := poolService(t)
	if !ok {
		return append(p, fmt.Sprintf("want one %s (the warm pool), found %d", typeService, len(t.ResourcesOfType(typeService))))
	}
	p = append(p, checkPoolService(t, svc)...)
	p = append(p, checkPoolScaling(t, svc)...)
	return p
}

// checkPoolRules evaluates the template's Rules on pool bounds CloudFormation must refuse or accept.
func checkPoolRules(t *Template) []string {
	var p problems
	for _, c := range []struct {
		min, max string
		refused  bool
		why      string
	}{
		{"0", "0", false, "the pool off"},
		{"4", "28", false, "a pool of 4 to 28"},
		{"1", "0", true, "a minimum with the pool off"},
		{"0", "28", true, "a pool that is on with no worker (nothing would emit the metric)"},
	} {
		failed, err := t.FailedRules(t.ParameterValues(map[string]string{PoolMinParameter: c.min, PoolMaxParameter: c.max}))
		if err != nil {
			return append(p, err.Error())
		}
		switch {
		case c.refused && len(failed) == 0:
			p.add("%s=%s %s=%s (%s) passes the template's Rules; a rule must refuse it", PoolMinParameter, c.min, PoolMaxParameter, c.max, c.why)
		case !c.refused && len(failed) > 0:
			p.add("%s=%s %s=%s (%s) is refused by the Rules: %v", PoolMinParameter, c.min, PoolMaxParameter, c.max, c.why, failed)
		}
	}
	return p
}

func checkPoolService(t *Template, svc Resource) []string {
	var p problems
	s := svc.Props()
	clusterID, _ := refTarget(s["Cluster"])
	if r, ok := t.Resource(clusterID); !ok || r.Type != typeCluster {
		p.add("%s: Cluster must be !Ref the stack's cluster", svc.ID)
	}
	if s["DesiredCount"] != nil {
		p.add("%s: DesiredCount is Application Auto Scaling's: set in the template, every stack update would reset it", svc.ID)
	}
	if s["LaunchType"] != nil && str(s["LaunchType"]) != "FARGATE" {
		p.add("%s: LaunchType %v; the pool runs on regular Fargate", svc.ID, s["LaunchType"])
	}
	strategy := list(s["CapacityProviderStrategy"])
	if s["LaunchType"] == nil && (len(strategy) != 1 || str(asMap(strategy[0])["CapacityProvider"]) != "FARGATE") {
		p.add("%s: CapacityProviderStrategy must be FARGATE alone (not the cluster's default, which may be FARGATE_SPOT: a reclaimed worker ends its session), got %v", svc.ID, strategy)
	}
	dc := asMap(s["DeploymentConfiguration"])
	if lo, ok := num(dc["MinimumHealthyPercent"]); !ok || lo < 100 {
		p.add("%s: DeploymentConfiguration.MinimumHealthyPercent must be 100: a deployment starts new workers before it stops idle ones, the pool never shrinks", svc.ID)
	}
	if hi, ok := num(dc["MaximumPercent"]); !ok || hi <= 100 {
		p.add("%s: DeploymentConfiguration.MaximumPercent must be above 100 (room for the new revision's workers)", svc.ID)
	}
	if str(s["AvailabilityZoneRebalancing"]) != "DISABLED" {
		p.add("%s: AvailabilityZoneRebalancing must be DISABLED (new services default to ENABLED, which stops tasks to even out the zones)", svc.ID)
	}
	if s["LoadBalancers"] != nil {
		p.add("%s: no load balancer: workers only dial out to LiveKit", svc.ID)
	}
	// The same network as the per-session RunTask: what the API's launcher is given.
	api, _ := t.Resource("ApiFunction")
	env := t.FunctionEnv(api)
	aws := asMap(path(s, "NetworkConfiguration", "AwsvpcConfiguration"))
	if got, want := aws["Subnets"], joinedList(env["AGENT_SUBNETS"]); !reflect.DeepEqual(got, want) {
		p.add("%s: Subnets %v, the RunTask path uses %v (AGENT_SUBNETS)", svc.ID, got, want)
	}
	if got, want := list(aws["SecurityGroups"]), []any{env["AGENT_SECURITY_GROUPS"]}; !reflect.DeepEqual(got, want) {
		p.add("%s: SecurityGroups %v, the RunTask path uses %v (AGENT_SECURITY_GROUPS)", svc.ID, got, want)
	}
	if got, want := aws["AssignPublicIp"], env["AGENT_ASSIGN_PUBLIC_IP"]; !reflect.DeepEqual(got, want) {
		p.add("%s: AssignPublicIp %v, the RunTask path uses %v (AGENT_ASSIGN_PUBLIC_IP)", svc.ID, got, want)
	}
	return p
}

// joinedList returns X for !Join [",", X].
func joinedList(v any) any {
	if name, arg, ok := intrinsic(v); ok && name == "Fn::Join" {
		if a := list(arg); len(a) == 2 && a[0] == "," {
			return a[1]
		}
	}
	return nil
}

func checkPoolScaling(t *Template, svc Resource) []string {
	var p problems
	targets := t.ResourcesOfType(typeScalableTarget)
	if len(targets) != 1 {
		return []string{fmt.Sprintf("want one %s (the pool's desired count), found %d", typeScalableTarget, len(targets))}
	}
	target := targets[0]
	tp := target.Props()
	clusterID, _ := refTarget(svc.Props()["Cluster"])
	wantResource := map[string]any{"Fn::Sub": fmt.Sprintf("service/${%s}/${%s.Name}", clusterID, svc.ID)}
	for k, want := range map[string]any{
		"ServiceNamespace": "ecs", "ScalableDimension": "ecs:service:DesiredCount", "ResourceId": wantResource,
		"MinCapacity": ref(PoolMinParameter), "MaxCapacity": ref(PoolMaxParameter),
	} {
		if !reflect.DeepEqual(tp[k], want) {
			p.add("%s: %s is %v, want %v", target.ID, k, tp[k], want)
		}
	}
	if tp["RoleARN"] != nil {
		p.add("%s: RoleARN: use Application Auto Scaling's service-linked role (no role of ours to keep least-privileged)", target.ID)
	}

	scaleOut, scaleIn := poolscaling.Chosen(0, 0, 0).Alarms("${" + PoolHeadroomParameter + "}")
	found := map[string]bool{}
	for _, a := range t.ResourcesOfType(typeAlarm) {
		actions := list(a.Props()["AlarmActions"])
		var policy Resource
		for _, v := range actions {
			if id, ok := refTarget(v); ok {
				if r, exists := t.Resource(id); exists && r.Type == typeScalingPolicy {
					policy = r
				}
			}
		}
		if policy.ID == "" {
			continue
		}
		if len(actions) != 1 || a.Props()["OKActions"] != nil || a.Props()["InsufficientDataActions"] != nil {
			p.add("%s: a scaling alarm's only action is its policy", a.ID)
		}
		steps := list(path(policy.Props(), "StepScalingPolicyConfiguration", "StepAdjustments"))
		var first float64
		if len(steps) > 0 {
			first, _ = num(asMap(steps[0])["ScalingAdjustment"])
		}
		kind, spec := "scale-out", scaleOut
		if first < 0 {
			kind, spec = "scale-in", scaleIn
		}
		if found[kind] {
			p.add("%s: a second %s alarm", a.ID, kind)
		}
		found[kind] = true
		if id, _ := refTarget(policy.Props()["ScalingTargetId"]); id != target.ID {
			p.add("%s: ScalingTargetId must be !Ref %s", policy.ID, target.ID)
		}
		p = append(p, compareAlarm(a, spec, kind)...)
		p = append(p, comparePolicy(policy, spec, kind)...)
	}
	for _, kind := range []string{"scale-out", "scale-in"} {
		if !found[kind] {
			p.add("no %s alarm invoking a step scaling policy of the pool (poolscaling.Chosen)", kind)
		}
	}
	for _, r := range t.ResourcesOfType(typeScalingPolicy) {
		if !slices.ContainsFunc(t.ResourcesOfType(typeAlarm), func(a Resource) bool {
			return slices.ContainsFunc(list(a.Props()["AlarmActions"]), func(v any) bool { id, _ := refTarget(v); return id == r.ID })
		}) {
			p.add("%s: no alarm invokes this scaling policy", r.ID)
		}
	}
	return p
}

func secondsOf(d time.Duration) float64 { return d.Seconds() }

// compareAlarm holds a scaling alarm to the policy's AlarmSpec: its metric-math queries on the pool
// metric, period, datapoints, threshold, comparison and missing data.
func compareAlarm(a Resource, spec poolscaling.AlarmSpec, kind string) []string {
	var p problems
	ap := a.Props()
	where := fmt.Sprintf("%s (%s)", a.ID, kind)
	queries := list(ap["Metrics"])
	if len(queries) != len(spec.Queries) {
		p.add("%s: %d metric queries, poolscaling has %d", where, len(queries), len(spec.Queries))
	}
	byID := map[string]map[string]any{}
	for _, q := range queries {
		byID[str(asMap(q)["Id"])] = asMap(q)
	}
	wantMetric := map[string]any{
		"Namespace": poolscaling.Namespace, "MetricName": poolscaling.MetricName,
		"Dimensions": []any{map[string]any{"Name": poolscaling.DimensionName, "Value": stackRef}},
	}
	for _, q := range spec.Queries {
		got, ok := byID[q.ID]
		if !ok {
			p.add("%s: no metric query %q (poolscaling: %+v)", where, q.ID, q)
			continue
		}
		returns := true // CloudWatch's default
		if v, ok := got["ReturnData"].(bool); ok {
			returns = v
		}
		if returns != q.ReturnData {
			p.add("%s: query %s ReturnData %v, want %v", where, q.ID, returns, q.ReturnData)
		}
		if q.Stat != "" {
			ms := asMap(got["MetricStat"])
			if !reflect.DeepEqual(ms["Metric"], wantMetric) {
				p.add("%s: query %s watches %v, want %v", where, q.ID, ms["Metric"], wantMetric)
			}
			if str(ms["Stat"]) != q.Stat {
				p.add("%s: query %s Stat %v, want %s", where, q.ID, ms["Stat"], q.Stat)
			}
			if v, _ := num(ms["Period"]); v != secondsOf(spec.Period) {
				p.add("%s: query %s Period %v, want %v", where, q.ID, ms["Period"], secondsOf(spec.Period))
			}
			continue
		}
		expr, ok := subTemplate(got["Expression"])
		if !ok {
			expr = str(got["Expression"])
		}
		if expr != q.Expression {
			p.add("%s: expression %s is %q, want %q", where, q.ID, expr, q.Expression)
		}
	}
	for k, want := range map[string]float64{
		"EvaluationPeriods": float64(spec.EvaluationPeriods), "DatapointsToAlarm": float64(spec.EvaluationPeriods), "Threshold": spec.Threshold,
	} {
		if v, ok := num(ap[k]); !ok || v != want {
			p.add("%s: %s is %v, want %v", where, k, ap[k], want)
		}
	}
	for k, want := range map[string]string{"ComparisonOperator": poolscaling.ComparisonOperator, "TreatMissingData": poolscaling.TreatMissingData} {
		if str(ap[k]) != want {
			p.add("%s: %s is %v, want %s", where, k, ap[k], want)
		}
	}
	return p
}

// comparePolicy holds a step scaling policy to the AlarmSpec: adjustment type, cooldown, aggregation
// and every step (bounds and adjustment).
func comparePolicy(r Resource, spec poolscaling.AlarmSpec, kind string) []string {
	var p problems
	where := fmt.Sprintf("%s (%s)", r.ID, kind)
	if str(r.Props()["PolicyType"]) != "StepScaling" {
		p.add("%s: PolicyType is %v, want StepScaling", where, r.Props()["PolicyType"])
	}
	c := asMap(r.Props()["StepScalingPolicyConfiguration"])
	if str(c["AdjustmentType"]) != poolscaling.AdjustmentType {
		p.add("%s: AdjustmentType is %v, want %s", where, c["AdjustmentType"], poolscaling.AdjustmentType)
	}
	if v, ok := num(c["Cooldown"]); !ok || v != secondsOf(spec.Cooldown) {
		p.add("%s: Cooldown is %v, want %v", where, c["Cooldown"], secondsOf(spec.Cooldown))
	}
	if str(c["MetricAggregationType"]) != spec.MetricAggregationType {
		p.add("%s: MetricAggregationType is %v, want %s", where, c["MetricAggregationType"], spec.MetricAggregationType)
	}
	got := list(c["StepAdjustments"])
	if len(got) != len(spec.Steps) {
		p.add("%s: %d steps, poolscaling has %d", where, len(got), len(spec.Steps))
	}
	bound := func(v any) string {
		if f, ok := num(v); ok {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
		return "none"
	}
	want := func(f *float64) string {
		if f == nil {
			return "none"
		}
		return strconv.FormatFloat(*f, 'g', -1, 64)
	}
	for i := 0; i < min(len(got), len(spec.Steps)); i++ {
		g, s := asMap(got[i]), spec.Steps[i]
		adj, _ := num(g["ScalingAdjustment"])
		gotStep := fmt.Sprintf("[%s, %s) %+d", bound(g["MetricIntervalLowerBound"]), bound(g["MetricIntervalUpperBound"]), int(adj))
		wantStep := fmt.Sprintf("[%s, %s) %+d", want(s.Lower), want(s.Upper), s.Adjustment)
		if gotStep != wantStep {
			p.add("%s: step %d is %s, want %s", where, i+1, gotStep, wantStep)
		}
	}
	return p
}

// CheckAgentWorkerTask checks the pool's task definition: the worker entry with the agent's VARIABLES
// for that entry, the per-session task's image, size, roles' pattern, secrets and static environment
// (so the two paths serve a session alike), the agent name the functions dispatch to, a stop timeout
// covering the worker's bounded close, a health check on the worker's endpoint, its own log group,
// and a task role with the agent's grants plus scale-in protection of the cluster's tasks only.
func CheckAgentWorkerTask(t *Template, schema AgentSchema) []string {
	var p problems
	td, c, ok := workerContainer(t)
	if !ok {
		return []string{"the pool service's TaskDefinition must be !Ref a task definition of the template with one container"}
	}
	direct, dc, ok := agentContainer(t)
	if !ok {
		return []string{"no per-session agent task (see the agent task check)"}
	}
	if got := strings.Join(strs(list(c["Command"])), " "); got != workerCommand {
		p.add("%s: Command is %q, want %q (the worker entry)", td.ID, got, workerCommand)
	}
	props, dprops := td.Props(), direct.Props()
	for _, k := range []string{"Cpu", "Memory", "RuntimePlatform", "ExecutionRoleArn", "NetworkMode", "RequiresCompatibilities"} {
		if !reflect.DeepEqual(props[k], dprops[k]) {
			p.add("%s: %s is %v, the per-session task's is %v (one image, one size)", td.ID, k, props[k], dprops[k])
		}
	}
	if reflect.DeepEqual(props["Family"], dprops["Family"]) || props["Family"] == nil {
		p.add("%s: Family must be set and differ from the per-session task's (the API may RunTask only that one)", td.ID)
	}
	for _, k := range []string{"Image", "Secrets", "LinuxParameters"} {
		if !reflect.DeepEqual(c[k], dc[k]) {
			p.add("%s: container %s is %v, the per-session task's is %v", td.ID, k, c[k], dc[k])
		}
	}

	env := containerEnv(c)
	denv := containerEnv(dc)
	for _, name := range sortedKeys(denv) {
		if !reflect.DeepEqual(env[name], denv[name]) {
			p.add("%s: %s is %v, the per-session task's is %v (the same static environment on both paths)", td.ID, name, env[name], denv[name])
		}
	}
	// What the launcher passes a cold task per session, a worker takes as its static bound: the
	// session's maximum (a dispatch may carry a shorter one), from which its task protection lasts.
	api, _ := t.Resource("ApiFunction")
	bound := map[string]bool{}
	for fnVar, agentVar := range PassedToAgent {
		bound[agentVar] = true
		if want := t.FunctionEnv(api)[fnVar]; !reflect.DeepEqual(env[agentVar], want) {
			p.add("%s: %s must be %v, the API's %s (its task protection must outlast the longest session), got %v", td.ID, agentVar, want, fnVar, env[agentVar])
		}
	}
	given := map[string]bool{}
	for name := range env {
		given[name] = true
	}
	for _, sv := range list(c["Secrets"]) {
		given[str(asMap(sv)["Name"])] = true
	}
	for _, name := range sortedKeys(given) {
		v, known := schema[name]
		switch {
		case !known:
			p.add("%s: %s is set but the agent's VARIABLES (agentimage/src/config.ts) has no such variable", td.ID, name)
		case !v.ReadBy(WorkerEntry):
			p.add("%s: %s is read only by the agent's %s entry; this task runs the worker entry (%s)", td.ID, name, v.Entry, workerCommand)
		case name == "ECS_AGENT_URI":
			p.add("%s: ECS_AGENT_URI is ECS's own (task protection); the task definition must not set it", td.ID)
		case denv[name] == nil && v.Entry == "" && !v.Secret && !bound[name]:
			p.add("%s: %s is read by both entries; set it in the per-session task too (the same static environment)", td.ID, name)
		}
	}
	for _, name := range sortedKeys(schema) {
		if v := schema[name]; v.Required && v.ReadBy(WorkerEntry) && !given[name] {
			p.add("%s: the agent's worker entry requires %s; set it in the task definition", td.ID, name)
		}
	}
	if !reflect.DeepEqual(env["LIVEKIT_AGENT_NAME"], ref(PoolAgentNameParameter)) {
		p.add("%s: LIVEKIT_AGENT_NAME must be !Ref %s (the name the functions dispatch to), got %v", td.ID, PoolAgentNameParameter, env["LIVEKIT_AGENT_NAME"])
	}

	if v, ok := num(c["StopTimeout"]); !ok || v < minWorkerStop || v > maxFargateStopTimeout {
		p.add("%s: StopTimeout %v: the worker ends a session on SIGTERM within 45 s; want %d-%d s (Fargate's maximum)", td.ID, c["StopTimeout"], minWorkerStop, maxFargateStopTimeout)
	}
	port := str(env["AGENT_HEALTH_PORT"])
	if port == "" {
		port = scalarString(schema["AGENT_HEALTH_PORT"].Default)
	}
	hc := strings.Join(strs(list(path(c, "HealthCheck", "Command"))), " ")
	if !strings.HasPrefix(hc, "CMD ") || !strings.Contains(hc, ":"+port+"/") {
		p.add("%s: HealthCheck.Command must be a CMD probing the worker's health endpoint on port %s, got %q", td.ID, port, hc)
	}

	lc := asMap(c["LogConfiguration"])
	group, _ := refTarget(path(lc, "Options", "awslogs-group"))
	directGroup, _ := refTarget(path(asMap(dc["LogConfiguration"]), "Options", "awslogs-group"))
	if r, exists := t.Resource(group); str(lc["LogDriver"]) != "awslogs" || !exists || r.Type != typeLogGroup || group == directGroup {
		p.add("%s: awslogs into a log group of its own (not %s), got %v", td.ID, directGroup, lc)
	}
	sts, _ := statements(t)
	if role, _, _ := getAttTarget(props["ExecutionRoleArn"]); group != "" && !roleWritesLogGroup(t, role, group) {
		p.add("%s: the execution role %s does not grant logs:PutLogEvents on %s", td.ID, role, group)
	}

	role, _, ok := getAttTarget(props["TaskRoleArn"])
	directRole, _, _ := getAttTarget(dprops["TaskRoleArn"])
	if !ok || role == directRole {
		return append(p, fmt.Sprintf("%s: TaskRoleArn must be !GetAtt a role of its own (it adds task protection to the agent's grants)", td.ID))
	}
	sessionsTable, categories := tableIDs(t)
	topic, _ := refTarget(env["SAFETY_ALERT_TOPIC_ARN"])
	protects := false
	for _, s := range allows(sts, role) {
		var rest []string
		for _, a := range s.actions() {
			if a != "ecs:UpdateTaskProtection" {
				rest = append(rest, a)
				continue
			}
			protects = true
		}
		if len(rest) < len(s.actions()) {
			s.body = cloneWithActions(s.body, rest)
		}
		p = append(p, checkAgentTaskGrant(s, categories, sessionsTable, topic)...)
	}
	if !protects {
		p.add("%s: the worker's task role needs ecs:UpdateTaskProtection (a worker in a session protects its task from scale-in and deployments)", td.ID)
	}
	return p
}

// cloneWithActions is a statement body with another action list.
func cloneWithActions(body map[string]any, actions []string) map[string]any {
	out := map[string]any{}
	for k, v := range body {
		out[k] = v
	}
	var a []any
	for _, s := range actions {
		a = append(a, s)
	}
	out["Action"] = a
	return out
}

func strs(v []any) []string {
	out := make([]string, 0, len(v))
	for _, e := range v {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

// LaunchVariables are the launcher's settings the webhook shares with the API: it launches the
// replacement of an agent lost mid-session the way create-room launches (shared/config reads them for
// the webhook when AGENT_TASK_DEFINITION is set).
var LaunchVariables = []string{
	"AGENT_TASK_DEFINITION", "AGENT_CONTAINER_NAME", "AGENT_SUBNETS", "AGENT_SECURITY_GROUPS",
	"AGENT_ASSIGN_PUBLIC_IP", "AGENT_CAPACITY_PROVIDER",
}

// CheckReplacementLaunch checks that the webhook launches a lost agent's replacement exactly as the
// API launches (the same launch settings and pool variables), and that its role may do it: RunTask,
// with the rest of the API's ECS grants (CheckIAM holds their scope).
func CheckReplacementLaunch(t *Template) []string {
	var p problems
	api, okAPI := t.Resource("ApiFunction")
	hook, okHook := t.Resource("WebhookFunction")
	if !okAPI || !okHook {
		return []string{"ApiFunction or WebhookFunction missing"}
	}
	for _, name := range append(slices.Clone(LaunchVariables), "AGENT_POOL_AGENT_NAME", "AGENT_POOL_JOIN_TIMEOUT_SECONDS") {
		if a, w := t.FunctionEnv(api)[name], t.FunctionEnv(hook)[name]; !reflect.DeepEqual(a, w) {
			p.add("WebhookFunction: %s is %v, the API's is %v (a replacement launches as create-room does)", name, w, a)
		}
	}
	sts, _ := statements(t)
	role, _, _ := getAttTarget(hook.Props()["Role"])
	granted := map[string]bool{}
	for _, s := range allows(sts, role) {
		for _, a := range s.actions() {
			granted[a] = true
		}
	}
	for _, a := range []string{"ecs:RunTask", "ecs:TagResource", "ecs:ListTasks", "ecs:StopTask", "iam:PassRole"} {
		if !granted[a] {
			p.add("%s: the webhook launches replacements; it needs %s as the API has it", role, a)
		}
	}
	return p
}
