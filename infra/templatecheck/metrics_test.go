package templatecheck

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"counselvideo/infra/poolscaling"
)

var (
	emittedOnce sync.Once
	emitted     Emitted
	emittedErr  error
)

// loadEmitted is what the code emits: shared/metrics and the compiled agent's METRICS table.
func loadEmitted(t *testing.T) Emitted {
	t.Helper()
	emittedOnce.Do(func() {
		var agent Emitted
		agent, emittedErr = LoadAgentEmitted(repoRoot(t))
		emitted = GoEmitted().With(agent)
	})
	if emittedErr != nil {
		t.Fatal(emittedErr)
	}
	return emitted
}

// TestMetrics runs CheckMetrics on template.yaml as deployed.
func TestMetrics(t *testing.T) {
	reportAll(t, CheckMetrics(loadTemplate(t), loadEmitted(t)))
}

// TestAgentMetricsComeFromTheAgent pins rows of the agent's METRICS table as read through node; the
// pool metric the workers write is the one the scaling policy reads (infra/poolscaling).
func TestAgentMetricsComeFromTheAgent(t *testing.T) {
	e := loadEmitted(t)
	join, ok := e.find("CounselVideo", "AgentJoinTime")
	if !ok || !slices.EqualFunc(join.Dimensions, [][]string{{"Stack", "AgentSource"}}, slices.Equal) || join.By != "the agent's METRICS" {
		t.Errorf("AgentJoinTime: %+v", join)
	}
	pool, ok := e.find(poolscaling.Namespace, poolscaling.MetricName)
	if !ok || !slices.EqualFunc(pool.Dimensions, [][]string{{poolscaling.DimensionName}}, slices.Equal) {
		t.Errorf("the agent does not write the pool metric the scaling policy reads: %+v", pool)
	}
	if !slices.Contains(e.Values["ExitReason"], "student_left") || !slices.Contains(e.Values["AgentSource"], "pool") {
		t.Errorf("bounded values: %v", e.Values)
	}
	var raw struct {
		Metrics []struct {
			Name, Unit        string
			StorageResolution int `json:"storageResolution"`
		} `json:"metrics"`
	}
	if err := agentExport(repoRoot(t), "metrics", "METRICS", &raw); err != nil {
		t.Fatal(err)
	}
	for _, m := range raw.Metrics {
		if m.Name == poolscaling.MetricName && (m.StorageResolution != poolscaling.StorageResolution) {
			t.Errorf("%s: storage resolution %d, the policy needs %d", m.Name, m.StorageResolution, poolscaling.StorageResolution)
		}
	}
}

func TestLoadAgentEmittedRefusesAStaleBuild(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"agentimage/src", "agentimage/dist"} {
		if err := mkdirAll(filepath.Join(root, d)); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeFileAfter(filepath.Join(root, "agentimage/dist/metrics.js"), filepath.Join(root, "agentimage/src/metrics.ts")); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAgentEmitted(root); err == nil || !strings.Contains(err.Error(), "make agent-deps") {
		t.Fatalf("a build older than its source: %v", err)
	}
}

// dashboardBody replaces old by new in the dashboard's body.
func dashboardBody(t *testing.T, tpl *Template, old, new string) {
	t.Helper()
	p := props(t, tpl, "Dashboard")
	body, ok := subTemplate(p["DashboardBody"])
	if !ok || !strings.Contains(body, old) {
		t.Fatalf("dashboard body has no %s", old)
	}
	p["DashboardBody"] = map[string]any{"Fn::Sub": strings.Replace(body, old, new, 1)}
}

// The metrics check can fail: each case breaks a fresh copy of the deployed template.
func TestMetricsCheckDetectsBrokenTemplates(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(t *testing.T, tpl *Template)
		want   string
	}{
		{"alarm on a metric nothing produces", func(t *testing.T, tpl *Template) {
			props(t, tpl, "SweeperNotRunningAlarm")["MetricName"] = "SweeperRuns"
		}, "SweeperNotRunningAlarm: CounselVideo SweeperRuns is not a metric the code emits"},
		{"alarm on a dimension set the code does not record", func(t *testing.T, tpl *Template) {
			p := props(t, tpl, "StuckSessionsAlarm")
			p["Dimensions"] = append(list(p["Dimensions"]), map[string]any{"Name": "Reason", "Value": "max_duration"})
		}, "StuckSessionsAlarm: CounselVideo SessionsStuckOpen with dimensions [Reason Stack]"},
		{"alarm's Stack is not the stack name", func(t *testing.T, tpl *Template) {
			asMap(list(props(t, tpl, "CreateRoomLatencyAlarm")["Dimensions"])[0])["Value"] = "counselvideo-prod"
		}, "CreateRoomLatencyAlarm: dimension Stack is counselvideo-prod"},
		{"alarm on a metric-math metric nothing produces", func(t *testing.T, tpl *Template) {
			asMap(path(list(props(t, tpl, "FailedSessionsAlarm")["Metrics"])[1], "MetricStat", "Metric"))["MetricName"] = "SessionsStarted"
		}, "FailedSessionsAlarm created: CounselVideo SessionsStarted is not a metric"},
		{"alarm expression on an id it does not have", func(t *testing.T, tpl *Template) {
			asMap(list(props(t, tpl, "ApiServerErrorRateAlarm")["Metrics"])[2])["Expression"] = "100 * errors / count"
		}, `ApiServerErrorRateAlarm: expression "100 * errors / count" uses "count"`},
		{"dashboard expression on an id the widget does not have", func(t *testing.T, tpl *Template) {
			dashboardBody(t, tpl, `100 * ondemand / SERVICE_QUOTA(ondemand)`, `100 * vcpus / SERVICE_QUOTA(vcpus)`)
		}, `uses "vcpus"`},
		{"alarm notifying nobody", func(t *testing.T, tpl *Template) {
			delete(props(t, tpl, "SweeperThrottlesAlarm"), "AlarmActions")
		}, "SweeperThrottlesAlarm: AlarmActions must be the alarm topic"},
		{"alarm missing from the dashboard", func(t *testing.T, tpl *Template) {
			asMap(list(props(t, tpl, "ApiErrorsAlarm")["Dimensions"])[0])["Name"] = "Resource"
		}, "ApiErrorsAlarm: AWS/Lambda Errors [Resource] is not on the dashboard"},
		{"dashboard graphing a reason the code never writes", func(t *testing.T, tpl *Template) {
			dashboardBody(t, tpl, `"Reason", "room_finished"`, `"Reason", "finished"`)
		}, "dimension Reason=finished is not a value the code emits"},
		{"dashboard metric under another stack", func(t *testing.T, tpl *Template) {
			dashboardBody(t, tpl, `"SweepRuns", "Stack", "${AWS::StackName}"`, `"SweepRuns", "Stack", "prod"`)
		}, "dimension Stack is prod"},
		{"dashboard body not JSON", func(t *testing.T, tpl *Template) {
			dashboardBody(t, tpl, `{"widgets": [`, `{"widgets": `)
		}, "DashboardBody is not JSON"},
		{"functions not given the stack name", func(t *testing.T, tpl *Template) {
			fnEnv(t, tpl, "WebhookFunction")["STACK_NAME"] = "counselvideo"
		}, "WebhookFunction: STACK_NAME must be !Ref AWS::StackName"},
		{"agent task not given the stack name", func(t *testing.T, tpl *Template) {
			dropAgentEnv(t, tpl, "STACK_NAME")
		}, "the agent's STACK_NAME must be !Ref AWS::StackName"},
		{"dashboard on an agent exit reason the agent never writes", func(t *testing.T, tpl *Template) {
			dashboardBody(t, tpl, `"ExitReason", "avatar_timeout"`, `"ExitReason", "avatar_late"`)
		}, "dimension ExitReason=avatar_late is not a value the code emits"},
	}
	e := loadEmitted(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tpl := loadTemplate(t)
			if before := CheckMetrics(tpl, e); len(before) > 0 {
				t.Fatalf("the real template already fails this check: %v", before)
			}
			c.mutate(t, tpl)
			found := CheckMetrics(tpl, e)
			for _, p := range found {
				if strings.Contains(p, c.want) {
					return
				}
			}
			t.Errorf("mutation not detected: want a problem containing %q, got %q", c.want, found)
		})
	}
}

func mkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }

// writeFileAfter writes built, then src a little later: the build is older than its source.
func writeFileAfter(built, src string) error {
	if err := os.WriteFile(built, []byte("export const METRICS = {};"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(src, []byte("// newer"), 0o644); err != nil {
		return err
	}
	later := time.Now().Add(time.Minute)
	return os.Chtimes(src, later, later)
}
