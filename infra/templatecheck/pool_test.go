package templatecheck

import (
	"net/http"
	"net/http/httptest"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"

	"counselvideo/infra/poolscaling"
)

func workerContainerDef(t *testing.T, tpl *Template) map[string]any {
	return asMap(list(props(t, tpl, "AgentWorkerTaskDefinition")["ContainerDefinitions"])[0])
}

func setWorkerEnv(t *testing.T, tpl *Template, name string, value any) {
	c := workerContainerDef(t, tpl)
	for _, e := range list(c["Environment"]) {
		if str(asMap(e)["Name"]) == name {
			asMap(e)["Value"] = value
			return
		}
	}
	c["Environment"] = append(list(c["Environment"]), map[string]any{"Name": name, "Value": value})
}

// dropWorkerEnv removes a variable from the worker container's environment.
func dropWorkerEnv(t *testing.T, tpl *Template, name string) {
	dropEnv(workerContainerDef(t, tpl), name)
}

func alarmQuery(t *testing.T, tpl *Template, alarm, id string) map[string]any {
	t.Helper()
	for _, q := range list(props(t, tpl, alarm)["Metrics"]) {
		if str(asMap(q)["Id"]) == id {
			return asMap(q)
		}
	}
	t.Fatalf("%s has no query %s", alarm, id)
	return nil
}

func step(t *testing.T, tpl *Template, policy string, i int) map[string]any {
	return asMap(list(path(props(t, tpl, policy), "StepScalingPolicyConfiguration", "StepAdjustments"))[i])
}

// The pool checks can fail: each case breaks a fresh copy of the deployed template (and the real
// template passes). The scaling cases are the drift check: template and poolscaling.Chosen differ.
func TestPoolChecksDetectBrokenTemplates(t *testing.T) {
	cases := []mutation{
		// Parameters, rules, conditions.
		{"pool on by default", func(t *testing.T, tpl *Template) {
			param(t, tpl, PoolMaxParameter)["Default"] = 28.0
		}, ignoreSchema(CheckAgentPool), "AgentPoolMaxWorkers: default must be 0"},
		{"no rule for a minimum with the pool off", func(t *testing.T, tpl *Template) {
			delete(asMap(tpl.Root["Rules"]), "AgentPoolOffMeansNoWorkers")
		}, ignoreSchema(CheckAgentPool), "AgentPoolMinWorkers=1 AgentPoolMaxWorkers=0 (a minimum with the pool off) passes"},
		{"no rule for a pool with no worker", func(t *testing.T, tpl *Template) {
			delete(asMap(tpl.Root["Rules"]), "AgentPoolOnNeedsAWorker")
		}, ignoreSchema(CheckAgentPool), "AgentPoolMinWorkers=0 AgentPoolMaxWorkers=28 (a pool that is on with no worker"},
		{"condition on the minimum", func(t *testing.T, tpl *Template) {
			asMap(tpl.Root["Conditions"])[PoolCondition] = map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{ref(PoolMinParameter), "0"}}}}
		}, ignoreSchema(CheckAgentPool), "condition HasAgentPool must be"},
		{"service without the pool's condition", func(t *testing.T, tpl *Template) {
			delete(res(t, tpl, "AgentPoolService"), "Condition")
		}, ignoreSchema(CheckAgentPool), "AgentPoolService: a pool resource needs Condition HasAgentPool"},
		{"scaling alarm without the pool's condition", func(t *testing.T, tpl *Template) {
			delete(res(t, tpl, "AgentPoolScaleInAlarm"), "Condition")
		}, ignoreSchema(CheckAgentPool), "AgentPoolScaleInAlarm: a pool resource needs Condition"},
		{"API dispatches to the pool with the pool off", func(t *testing.T, tpl *Template) {
			fnEnv(t, tpl, "ApiFunction")["AGENT_POOL_AGENT_NAME"] = ref(PoolAgentNameParameter)
		}, ignoreSchema(CheckAgentPool), "ApiFunction: AGENT_POOL_AGENT_NAME must be"},
		{"webhook without the join wait", func(t *testing.T, tpl *Template) {
			delete(fnEnv(t, tpl, "WebhookFunction"), "AGENT_POOL_JOIN_TIMEOUT_SECONDS")
		}, ignoreSchema(CheckAgentPool), "WebhookFunction: AGENT_POOL_JOIN_TIMEOUT_SECONDS must be"},

		// The service.
		{"desired count fixed in the template", func(t *testing.T, tpl *Template) {
			props(t, tpl, "AgentPoolService")["DesiredCount"] = map[string]any{"Ref": PoolMinParameter}
		}, ignoreSchema(CheckAgentPool), "DesiredCount is Application Auto Scaling's"},
		{"pool on Spot", func(t *testing.T, tpl *Template) {
			asMap(list(props(t, tpl, "AgentPoolService")["CapacityProviderStrategy"])[0])["CapacityProvider"] = "FARGATE_SPOT"
		}, ignoreSchema(CheckAgentPool), "CapacityProviderStrategy must be FARGATE alone"},
		{"pool on the cluster's default provider", func(t *testing.T, tpl *Template) {
			delete(props(t, tpl, "AgentPoolService"), "CapacityProviderStrategy")
		}, ignoreSchema(CheckAgentPool), "CapacityProviderStrategy must be FARGATE alone"},
		{"deployments stop workers before new ones run", func(t *testing.T, tpl *Template) {
			asMap(props(t, tpl, "AgentPoolService")["DeploymentConfiguration"])["MinimumHealthyPercent"] = 50.0
		}, ignoreSchema(CheckAgentPool), "MinimumHealthyPercent must be 100"},
		{"zone rebalancing left to ECS's default", func(t *testing.T, tpl *Template) {
			delete(props(t, tpl, "AgentPoolService"), "AvailabilityZoneRebalancing")
		}, ignoreSchema(CheckAgentPool), "AvailabilityZoneRebalancing must be DISABLED"},
		{"workers in other subnets than RunTask's", func(t *testing.T, tpl *Template) {
			asMap(path(props(t, tpl, "AgentPoolService"), "NetworkConfiguration", "AwsvpcConfiguration"))["Subnets"] = []any{"subnet-0123"}
		}, ignoreSchema(CheckAgentPool), "Subnets [subnet-0123], the RunTask path uses"},
		{"workers with a public IP the RunTask path lacks", func(t *testing.T, tpl *Template) {
			asMap(path(props(t, tpl, "AgentPoolService"), "NetworkConfiguration", "AwsvpcConfiguration"))["AssignPublicIp"] = "ENABLED"
		}, ignoreSchema(CheckAgentPool), "AssignPublicIp ENABLED"},

		// Scaling: the drift check against poolscaling.Chosen.
		{"maximum from the minimum", func(t *testing.T, tpl *Template) {
			props(t, tpl, "AgentPoolScalableTarget")["MaxCapacity"] = ref(PoolMinParameter)
		}, ignoreSchema(CheckAgentPool), "AgentPoolScalableTarget: MaxCapacity"},
		{"scale-out cooldown drifts", func(t *testing.T, tpl *Template) {
			asMap(props(t, tpl, "AgentPoolScaleOutPolicy")["StepScalingPolicyConfiguration"])["Cooldown"] = 300.0
		}, ignoreSchema(CheckAgentPool), "AgentPoolScaleOutPolicy (scale-out): Cooldown is 300, want 60"},
		{"scale-in aggregation drifts", func(t *testing.T, tpl *Template) {
			asMap(props(t, tpl, "AgentPoolScaleInPolicy")["StepScalingPolicyConfiguration"])["MetricAggregationType"] = "Average"
		}, ignoreSchema(CheckAgentPool), "MetricAggregationType is Average, want Minimum"},
		{"a step adds more than the deficit", func(t *testing.T, tpl *Template) {
			step(t, tpl, "AgentPoolScaleOutPolicy", 4)["ScalingAdjustment"] = 8.0
		}, ignoreSchema(CheckAgentPool), "step 5 is [5.5, 7.5) +8, want [5.5, 7.5) +6"},
		{"a step bound drifts", func(t *testing.T, tpl *Template) {
			step(t, tpl, "AgentPoolScaleInPolicy", 0)["MetricIntervalUpperBound"] = 2.0
		}, ignoreSchema(CheckAgentPool), "step 1 is [0, 2) -2, want [0, 1.5) -2"},
		{"last step bounded", func(t *testing.T, tpl *Template) {
			step(t, tpl, "AgentPoolScaleOutPolicy", len(poolscaling.ScaleOutSteps())-1)["MetricIntervalUpperBound"] = 200.0
		}, ignoreSchema(CheckAgentPool), "step 13 is [95.5, 200) +96, want [95.5, none) +96"},
		{"scale-out on one datapoint", func(t *testing.T, tpl *Template) {
			props(t, tpl, "AgentPoolScaleOutAlarm")["DatapointsToAlarm"] = 1.0
		}, ignoreSchema(CheckAgentPool), "AgentPoolScaleOutAlarm (scale-out): DatapointsToAlarm is 1, want 2"},
		{"scale-in window drifts", func(t *testing.T, tpl *Template) {
			props(t, tpl, "AgentPoolScaleInAlarm")["EvaluationPeriods"] = 18.0
		}, ignoreSchema(CheckAgentPool), "EvaluationPeriods is 18, want 30"},
		{"one-minute metric", func(t *testing.T, tpl *Template) {
			asMap(alarmQuery(t, tpl, "AgentPoolScaleOutAlarm", "running")["MetricStat"])["Period"] = 60.0
		}, ignoreSchema(CheckAgentPool), "query running Period 60, want 10"},
		{"busy counted as the average", func(t *testing.T, tpl *Template) {
			asMap(alarmQuery(t, tpl, "AgentPoolScaleInAlarm", "busy")["MetricStat"])["Stat"] = "Average"
		}, ignoreSchema(CheckAgentPool), "query busy Stat Average, want Sum"},
		{"expression without the headroom", func(t *testing.T, tpl *Template) {
			alarmQuery(t, tpl, "AgentPoolScaleOutAlarm", "deficit")["Expression"] = map[string]any{"Fn::Sub": "4 - (running - busy) / 1"}
		}, ignoreSchema(CheckAgentPool), `expression deficit is "4 - (running - busy) / 1", want "${AgentPoolHeadroom} - (running - busy) / 1"`},
		{"alarm on another pool's metric", func(t *testing.T, tpl *Template) {
			asMap(list(path(alarmQuery(t, tpl, "AgentPoolScaleInAlarm", "running"), "MetricStat", "Metric", "Dimensions"))[0])["Value"] = "counselvideo-prod"
		}, ignoreSchema(CheckAgentPool), "query running watches"},
		{"stat query returning data", func(t *testing.T, tpl *Template) {
			delete(alarmQuery(t, tpl, "AgentPoolScaleOutAlarm", "busy"), "ReturnData")
		}, ignoreSchema(CheckAgentPool), "query busy ReturnData true, want false"},
		{"missing data breaching", func(t *testing.T, tpl *Template) {
			props(t, tpl, "AgentPoolScaleInAlarm")["TreatMissingData"] = "breaching"
		}, ignoreSchema(CheckAgentPool), "TreatMissingData is breaching, want missing"},
		{"scale-in slack drifts", func(t *testing.T, tpl *Template) {
			props(t, tpl, "AgentPoolScaleInAlarm")["Threshold"] = 0.0
		}, ignoreSchema(CheckAgentPool), "AgentPoolScaleInAlarm (scale-in): Threshold is 0, want 1"},
		{"scaling alarm that also pages", func(t *testing.T, tpl *Template) {
			props(t, tpl, "AgentPoolScaleOutAlarm")["OKActions"] = []any{alarmTopic}
		}, ignoreSchema(CheckAgentPool), "a scaling alarm's only action is its policy"},
		{"no scale-in at all", func(t *testing.T, tpl *Template) {
			delete(asMap(tpl.Root["Resources"]), "AgentPoolScaleInAlarm")
		}, ignoreSchema(CheckAgentPool), "no scale-in alarm"},

		// The webhook's replacement of a lost agent.
		{"webhook replaces on another task definition", func(t *testing.T, tpl *Template) {
			fnEnv(t, tpl, "WebhookFunction")["AGENT_TASK_DEFINITION"] = ref("AgentWorkerTaskDefinition")
		}, ignoreSchema(CheckReplacementLaunch), "WebhookFunction: AGENT_TASK_DEFINITION is"},
		{"webhook replaces in other subnets", func(t *testing.T, tpl *Template) {
			fnEnv(t, tpl, "WebhookFunction")["AGENT_SUBNETS"] = "subnet-0123"
		}, ignoreSchema(CheckReplacementLaunch), "WebhookFunction: AGENT_SUBNETS is subnet-0123"},
		{"webhook cannot run a task", func(t *testing.T, tpl *Template) {
			s := statementWithAction(t, tpl, "WebhookFunctionRole", "agent-tasks", "ecs:RunTask")
			s["Action"] = "ecs:DescribeTasks"
		}, ignoreSchema(CheckReplacementLaunch), "it needs ecs:RunTask"},
		{"webhook runs any task definition", func(t *testing.T, tpl *Template) {
			statementWithAction(t, tpl, "WebhookFunctionRole", "agent-tasks", "ecs:RunTask")["Resource"] =
				map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition/*"}
		}, ignoreSchema(CheckIAM), "WebhookFunctionRole/agent-tasks: ecs:RunTask on"},

		// The worker task.
		{"worker runs the direct entry", func(t *testing.T, tpl *Template) {
			delete(workerContainerDef(t, tpl), "Command")
		}, CheckAgentWorkerTask, `Command is "", want "node dist/worker.js"`},
		{"worker without the crisis topic", func(t *testing.T, tpl *Template) {
			dropWorkerEnv(t, tpl, "SAFETY_ALERT_TOPIC_ARN")
		}, CheckAgentWorkerTask, "SAFETY_ALERT_TOPIC_ARN is <nil>, the per-session task's is"},
		{"worker's grace apart from the per-session task's", func(t *testing.T, tpl *Template) {
			setWorkerEnv(t, tpl, "AGENT_SAFETY_GRACE_SECONDS", ref("SessionMaxDurationSeconds"))
		}, CheckAgentWorkerTask, "AGENT_SAFETY_GRACE_SECONDS is"},
		{"worker given a per-session variable", func(t *testing.T, tpl *Template) {
			setWorkerEnv(t, tpl, "SESSION_ID", "x")
		}, CheckAgentWorkerTask, "SESSION_ID is read only by the agent's direct entry"},
		{"worker setting ECS's own variable", func(t *testing.T, tpl *Template) {
			setWorkerEnv(t, tpl, "ECS_AGENT_URI", "http://169.254.170.2")
		}, CheckAgentWorkerTask, "ECS_AGENT_URI is ECS's own"},
		{"worker protected for the default session length only", func(t *testing.T, tpl *Template) {
			dropWorkerEnv(t, tpl, "AGENT_MAX_DURATION_SECONDS")
		}, CheckAgentWorkerTask, "AGENT_MAX_DURATION_SECONDS must be map[Ref:SessionMaxDurationSeconds]"},
		{"worker given a duration the agent refuses", func(t *testing.T, tpl *Template) {
			setWorkerEnv(t, tpl, "AGENT_EARLY_AVATAR_NO_SHOW_SECONDS", ref("AgentJoinTimeoutSeconds"))
			param(t, tpl, "AgentJoinTimeoutSeconds")["MaxValue"] = 700000.0
		}, CheckDurations, "the agent accepts AGENT_EARLY_AVATAR_NO_SHOW_SECONDS only as whole seconds"},
		{"worker under another agent name", func(t *testing.T, tpl *Template) {
			setWorkerEnv(t, tpl, "LIVEKIT_AGENT_NAME", "counselor")
		}, CheckAgentWorkerTask, "LIVEKIT_AGENT_NAME must be !Ref AgentPoolAgentName"},
		{"worker on another image", func(t *testing.T, tpl *Template) {
			workerContainerDef(t, tpl)["Image"] = map[string]any{"Fn::Sub": "${AgentRepository.RepositoryUri}:worker"}
		}, CheckAgentWorkerTask, "container Image is"},
		{"worker with a secret missing", func(t *testing.T, tpl *Template) {
			c := workerContainerDef(t, tpl)
			c["Secrets"] = list(c["Secrets"])[:3]
		}, CheckAgentWorkerTask, "container Secrets is"},
		{"worker stop timeout shorter than its close", func(t *testing.T, tpl *Template) {
			workerContainerDef(t, tpl)["StopTimeout"] = 30.0
		}, CheckAgentWorkerTask, "StopTimeout 30"},
		{"worker stop timeout above Fargate's", func(t *testing.T, tpl *Template) {
			workerContainerDef(t, tpl)["StopTimeout"] = 300.0
		}, CheckAgentWorkerTask, "StopTimeout 300"},
		{"health check on another port", func(t *testing.T, tpl *Template) {
			setWorkerEnv(t, tpl, "AGENT_HEALTH_PORT", "9090")
		}, CheckAgentWorkerTask, "probing the worker's health endpoint on port 9090"},
		{"no health check", func(t *testing.T, tpl *Template) {
			delete(workerContainerDef(t, tpl), "HealthCheck")
		}, CheckAgentWorkerTask, "HealthCheck.Command must be a CMD"},
		{"worker logs into the per-session log group", func(t *testing.T, tpl *Template) {
			asMap(path(workerContainerDef(t, tpl), "LogConfiguration", "Options"))["awslogs-group"] = ref("AgentLogGroup")
		}, CheckAgentWorkerTask, "awslogs into a log group of its own"},
		{"execution role cannot write the worker's logs", func(t *testing.T, tpl *Template) {
			statementWithAction(t, tpl, "AgentExecutionRole", "logs", "logs:PutLogEvents")["Resource"] = map[string]any{"Fn::GetAtt": []any{"AgentLogGroup", "Arn"}}
		}, CheckAgentWorkerTask, "does not grant logs:PutLogEvents on AgentWorkerLogGroup"},
		{"worker without task protection", func(t *testing.T, tpl *Template) {
			r := props(t, tpl, "AgentWorkerTaskRole")
			r["Policies"] = list(r["Policies"])[:3]
		}, CheckAgentWorkerTask, "needs ecs:UpdateTaskProtection"},
		{"worker shares the per-session task role", func(t *testing.T, tpl *Template) {
			props(t, tpl, "AgentWorkerTaskDefinition")["TaskRoleArn"] = map[string]any{"Fn::GetAtt": []any{"AgentTaskRole", "Arn"}}
		}, CheckAgentWorkerTask, "TaskRoleArn must be !GetAtt a role of its own"},
		{"worker role writes sessions", func(t *testing.T, tpl *Template) {
			s := asMap(policyStatements(t, tpl, "AgentWorkerTaskRole", "read-categories")[0])
			s["Action"] = append(list(s["Action"]), "dynamodb:PutItem")
		}, CheckAgentWorkerTask, "dynamodb:PutItem is extra"},
		{"worker protects any task", func(t *testing.T, tpl *Template) {
			statementWithAction(t, tpl, "AgentWorkerTaskRole", "task-protection", "ecs:UpdateTaskProtection")["Resource"] = "*"
		}, ignoreSchema(CheckIAM), `ecs:UpdateTaskProtection on Resource "*"`},
		{"worker protects tasks of other clusters", func(t *testing.T, tpl *Template) {
			statementWithAction(t, tpl, "AgentWorkerTaskRole", "task-protection", "ecs:UpdateTaskProtection")["Resource"] =
				map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task/*"}
		}, ignoreSchema(CheckIAM), "ecs:UpdateTaskProtection on"},
		{"per-session agent may protect tasks", func(t *testing.T, tpl *Template) {
			s := asMap(policyStatements(t, tpl, "AgentTaskRole", "alert-staff")[0])
			s["Action"] = []any{"sns:Publish", "ecs:UpdateTaskProtection"}
		}, CheckAgentTask, "ecs:UpdateTaskProtection is extra"},
	}
	runMutations(t, cases)
}

// TestPoolTemplateIsChosenPolicy pins the drift check's reference: the template's scaling values are
// poolscaling.Chosen's, whatever the sizing (only the headroom's reference enters the alarms).
func TestPoolTemplateIsChosenPolicy(t *testing.T) {
	for _, s := range poolscaling.Recommended {
		out, in := s.Policy().Alarms("${" + PoolHeadroomParameter + "}")
		wantOut, wantIn := poolscaling.Chosen(0, 0, 0).Alarms("${" + PoolHeadroomParameter + "}")
		if !reflect.DeepEqual(out, wantOut) || !reflect.DeepEqual(in, wantIn) {
			t.Fatalf("the alarms depend on the sizing %+v; the template check compares with Chosen(0, 0, 0)", s)
		}
	}
}

// TestWorkerHealthCheckCommand runs the worker container's health check command (as ECS runs it:
// CMD, exec form) against stand-ins of the worker's health endpoint on a free port: 200 is healthy,
// the framework's 503 (not registered with LiveKit) and no listener are not.
func TestWorkerHealthCheckCommand(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node not found: the health check runs the image's node")
	}
	tpl := loadTemplate(t)
	c := workerContainerDef(t, tpl)
	command := strs(list(path(c, "HealthCheck", "Command")))
	port := str(containerEnv(c)["AGENT_HEALTH_PORT"])
	if len(command) < 2 || command[0] != "CMD" || port == "" {
		t.Fatalf("health check %v, port %q", command, port)
	}
	run := func(url string) error {
		args := slices.Clone(command[1:])
		for i := range args {
			args[i] = strings.ReplaceAll(args[i], "http://127.0.0.1:"+port+"/", url)
		}
		if slices.Equal(args, command[1:]) {
			t.Fatalf("the command does not probe http://127.0.0.1:%s/: %v", port, command)
		}
		return exec.Command(args[0], args[1:]...).Run()
	}
	for _, status := range []int{http.StatusOK, http.StatusServiceUnavailable} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/" {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			w.WriteHeader(status)
		}))
		err := run(srv.URL + "/")
		srv.Close()
		if healthy := err == nil; healthy != (status == http.StatusOK) {
			t.Errorf("endpoint answering %d: health check error %v", status, err)
		}
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	gone := srv.URL + "/"
	srv.Close()
	if err := run(gone); err == nil {
		t.Error("no endpoint listening: the health check passed")
	}
}
