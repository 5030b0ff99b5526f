package templatecheck

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"counselvideo/infra/poolscaling"
	"counselvideo/shared/metrics"
)

// ---------------------------------------------------------------- metrics, alarms, dashboard

// EmittedMetric is a metric our code writes as EMF lines: CloudWatch knows it by namespace, name and
// one of its dimension sets.
type EmittedMetric struct {
	Namespace  string
	Name       string
	Unit       string
	Dimensions [][]string
	// By says which code writes it (for the messages).
	By string
}

// Emitted is what the code emits: the metrics and, for each bounded dimension, its values.
type Emitted struct {
	Metrics []EmittedMetric
	Values  map[string][]string
}

// StackDimensions take the stack's name as their value (the code is given STACK_NAME = the stack name).
var StackDimensions = []string{metrics.DimStack, poolscaling.DimensionName}

// GoEmitted is what the Go functions emit (shared/metrics).
func GoEmitted() Emitted {
	e := Emitted{Values: map[string][]string{}}
	for _, d := range metrics.Catalog() {
		e.Metrics = append(e.Metrics, EmittedMetric{Namespace: metrics.Namespace, Name: d.Name, Unit: string(d.Unit), Dimensions: d.Dimensions, By: "shared/metrics"})
	}
	for k, v := range metrics.DimensionValues {
		e.Values[k] = v
	}
	return e
}

// With is e and o together (the Go functions' and the agent's); a bounded dimension both use keeps
// the values of both.
func (e Emitted) With(o Emitted) Emitted {
	out := Emitted{Metrics: append(slices.Clone(e.Metrics), o.Metrics...), Values: map[string][]string{}}
	for _, src := range []map[string][]string{e.Values, o.Values} {
		for k, vs := range src {
			for _, v := range vs {
				if !slices.Contains(out.Values[k], v) {
					out.Values[k] = append(out.Values[k], v)
				}
			}
		}
	}
	return out
}

func (e Emitted) find(ns, name string) (EmittedMetric, bool) {
	for _, m := range e.Metrics {
		if m.Namespace == ns && m.Name == name {
			return m, true
		}
	}
	return EmittedMetric{}, false
}

// metricRef is one metric an alarm or a dashboard widget names.
type metricRef struct {
	where     string
	namespace any // a literal string unless someone wrote an intrinsic
	name      string
	dims      map[string]any // dimension name → value as written
}

func (r metricRef) custom() bool {
	s, literal := r.namespace.(string)
	return !literal || !strings.HasPrefix(s, "AWS/")
}

func (r metricRef) key() string {
	names := sortedKeys(r.dims)
	return fmt.Sprintf("%v|%s|%s", r.namespace, r.name, strings.Join(names, ","))
}

// alarmRefs returns the metrics an alarm watches: its single metric or its metric-math MetricStats.
func alarmRefs(r Resource) []metricRef {
	p := r.Props()
	dims := func(v any) map[string]any {
		out := map[string]any{}
		for _, d := range list(v) {
			out[str(asMap(d)["Name"])] = asMap(d)["Value"]
		}
		return out
	}
	if p["MetricName"] != nil {
		return []metricRef{{r.ID, p["Namespace"], str(p["MetricName"]), dims(p["Dimensions"])}}
	}
	var out []metricRef
	for _, q := range list(p["Metrics"]) {
		m := asMap(path(q, "MetricStat", "Metric"))
		if len(m) == 0 {
			continue // an expression
		}
		out = append(out, metricRef{r.ID + " " + str(asMap(q)["Id"]), m["Namespace"], str(m["MetricName"]), dims(m["Dimensions"])})
	}
	return out
}

// expressionIDs are the ids a metric-math expression uses (functions are upper case, ids start lower).
var expressionID = regexp.MustCompile(`\b[a-z][A-Za-z0-9_]*\b`)

// checkExpressions: every id an expression uses is the Id of a metric or expression next to it.
func checkExpressions(p *problems, where string, entries []map[string]any) {
	ids := map[string]bool{}
	for _, e := range entries {
		if id := str(e["Id"]) + str(e["id"]); id != "" {
			ids[id] = true
		}
	}
	for _, e := range entries {
		expr, _ := subTemplate(e["Expression"])
		if expr == "" {
			expr = str(e["Expression"]) + str(e["expression"])
		}
		for _, id := range expressionID.FindAllString(expr, -1) {
			if !ids[id] {
				p.add("%s: expression %q uses %q, which no metric or expression there has as its id", where, expr, id)
			}
		}
	}
}

// stackSentinel stands for ${AWS::StackName} in a dashboard body.
const stackSentinel = "<the stack name>"

var subVariable = regexp.MustCompile(`\$\{[^}]*\}`)

// dashboardRefs parses a dashboard's body (a Fn::Sub JSON string) and returns the metrics its widgets
// graph. The "." shorthand of the dashboard syntax is refused: every metric is spelled out.
func dashboardRefs(r Resource) ([]metricRef, map[string][]map[string]any, error) {
	body, ok := subTemplate(r.Props()["DashboardBody"])
	if !ok {
		body, ok = r.Props()["DashboardBody"].(string)
	}
	if !ok {
		return nil, nil, fmt.Errorf("%s: DashboardBody must be a JSON string (optionally in !Sub)", r.ID)
	}
	body = subVariable.ReplaceAllStringFunc(body, func(v string) string {
		if v == "${AWS::StackName}" {
			return stackSentinel
		}
		return "x"
	})
	var doc struct {
		Widgets []struct {
			Type       string `json:"type"`
			Properties struct {
				Title   string  `json:"title"`
				Metrics [][]any `json:"metrics"`
			} `json:"properties"`
		} `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		return nil, nil, fmt.Errorf("%s: DashboardBody is not JSON: %v", r.ID, err)
	}
	var out []metricRef
	widgets := map[string][]map[string]any{}
	for _, w := range doc.Widgets {
		key := fmt.Sprintf("%s widget %q", r.ID, w.Properties.Title)
		for i, m := range w.Properties.Metrics {
			where := fmt.Sprintf("%s metric %d", key, i)
			if len(m) > 0 {
				if opts, ok := m[len(m)-1].(map[string]any); ok {
					widgets[key] = append(widgets[key], opts)
				}
				if _, expression := m[0].(map[string]any); expression {
					continue
				}
			}
			var parts []string
			for _, e := range m {
				if s, ok := e.(string); ok {
					parts = append(parts, s)
				}
			}
			if len(parts) < 2 || len(parts)%2 != 0 || slices.Contains(parts, ".") {
				return nil, nil, fmt.Errorf("%s: want [namespace, name, dimension, value, ..., {options}] spelled out, got %v", where, m)
			}
			ref := metricRef{where, parts[0], parts[1], map[string]any{}}
			for j := 2; j < len(parts); j += 2 {
				ref.dims[parts[j]] = parts[j+1]
			}
			out = append(out, ref)
		}
	}
	return out, widgets, nil
}

// checkRef checks one reference to a custom metric against what the code emits: the namespace and
// name exist, the dimension names are exactly one of its dimension sets, stack dimensions carry the
// stack name (stack is how it is written where the reference is), bounded ones an emitted value.
func checkRef(p *problems, e Emitted, r metricRef, stack any) {
	ns, literal := r.namespace.(string)
	if !literal {
		p.add("%s: namespace %v must be a literal (the code's namespace)", r.where, r.namespace)
		return
	}
	m, ok := e.find(ns, r.name)
	if !ok {
		p.add("%s: %s %s is not a metric the code emits (shared/metrics, the agent's METRICS)", r.where, ns, r.name)
		return
	}
	names := sortedKeys(r.dims)
	if !slices.ContainsFunc(m.Dimensions, func(set []string) bool { return slices.Equal(sorted(set), names) }) {
		p.add("%s: %s %s with dimensions %v, but %s records it only under %v (CloudWatch keeps one metric per dimension set)",
			r.where, ns, r.name, names, m.By, m.Dimensions)
		return
	}
	for _, name := range names {
		v := r.dims[name]
		switch {
		case slices.Contains(StackDimensions, name):
			if !reflect.DeepEqual(v, stack) {
				p.add("%s: dimension %s is %v; it must be the stack's name, as the code is given it (STACK_NAME)", r.where, name, v)
			}
		case !slices.Contains(e.Values[name], str(v)):
			p.add("%s: dimension %s=%v is not a value the code emits (%v)", r.where, name, v, e.Values[name])
		}
	}
}

func sorted(s []string) []string { c := slices.Clone(s); slices.Sort(c); return c }

var stackRef = map[string]any{"Ref": "AWS::StackName"}

// alarmTopic is where every notifying alarm and the agent-task rule send: the given topic or the stack's.
var alarmTopic = map[string]any{"Fn::If": []any{"HasAlarmTopic", map[string]any{"Ref": "AlarmTopicArn"}, map[string]any{"Ref": "AlarmTopic"}}}

// CheckMetrics keeps the alarms and the dashboard in step with the metrics the code emits (e: the Go
// functions' and the agent's) and with each other: every custom metric they name is emitted under
// that namespace, name and dimension set, with the stack's name for Stack and Pool; every alarm's
// metric is on the dashboard; every alarm that does not scale something notifies the alarm topic (on
// ALARM and OK); the functions and the agent task are given the stack's name (STACK_NAME).
func CheckMetrics(t *Template, e Emitted) []string {
	var p problems
	onDashboard := map[string]bool{}
	dashboards := t.ResourcesOfType("AWS::CloudWatch::Dashboard")
	if len(dashboards) != 1 {
		p.add("want one CloudWatch dashboard, found %d", len(dashboards))
	}
	for _, d := range dashboards {
		refs, widgets, err := dashboardRefs(d)
		if err != nil {
			p.add("%v", err)
			continue
		}
		for _, w := range sortedKeys(widgets) {
			checkExpressions(&p, w, widgets[w])
		}
		for _, r := range refs {
			onDashboard[r.key()] = true
			if r.custom() {
				checkRef(&p, e, r, stackSentinel)
			}
		}
	}
	scaling := map[string]bool{}
	for _, r := range t.ResourcesOfType("AWS::ApplicationAutoScaling::ScalingPolicy") {
		scaling[r.ID] = true
	}
	for _, a := range t.ResourcesOfType("AWS::CloudWatch::Alarm") {
		var entries []map[string]any
		for _, q := range list(a.Props()["Metrics"]) {
			entries = append(entries, asMap(q))
		}
		checkExpressions(&p, a.ID, entries)
		refs := alarmRefs(a)
		if len(refs) == 0 {
			p.add("%s: watches no metric", a.ID)
		}
		for _, r := range refs {
			if r.custom() {
				checkRef(&p, e, r, stackRef)
			}
			if len(dashboards) == 1 && !onDashboard[r.key()] {
				p.add("%s: %v %s %v is not on the dashboard", r.where, r.namespace, r.name, sortedKeys(r.dims))
			}
		}
		if slices.ContainsFunc(list(a.Props()["AlarmActions"]), func(v any) bool { id, _ := refTarget(v); return scaling[id] }) {
			continue // a scaling alarm (the warm pool's): it acts, it does not page
		}
		for _, k := range []string{"AlarmActions", "OKActions"} {
			if got := list(a.Props()[k]); len(got) != 1 || !reflect.DeepEqual(got[0], alarmTopic) {
				p.add("%s: %s must be the alarm topic (!If [HasAlarmTopic, !Ref AlarmTopicArn, !Ref AlarmTopic]), got %v", a.ID, k, got)
			}
		}
	}
	for _, r := range t.ResourcesOfType(typeFunction) {
		if v := t.FunctionEnv(r)["STACK_NAME"]; !reflect.DeepEqual(v, stackRef) {
			p.add("%s: STACK_NAME must be !Ref AWS::StackName (the metrics' Stack dimension), got %v", r.ID, v)
		}
	}
	if td, c, ok := agentContainer(t); ok {
		var v any
		for _, e := range list(c["Environment"]) {
			if str(asMap(e)["Name"]) == "STACK_NAME" {
				v = asMap(e)["Value"]
			}
		}
		if !reflect.DeepEqual(v, stackRef) {
			p.add("%s: the agent's STACK_NAME must be !Ref AWS::StackName (its metrics' Stack dimension), got %v", td.ID, v)
		}
	}
	return p
}

// CheckAgentTaskRule checks the EventBridge rule on the agent cluster's stopped tasks (failed to start,
// or a container exited non-zero) and that it can reach the alarm topic: it targets the topic, and the
// stack's own topic lets events.amazonaws.com publish for this rule (and CloudWatch for the alarms).
func CheckAgentTaskRule(t *Template) []string {
	var p problems
	var rule Resource
	for _, r := range t.ResourcesOfType("AWS::Events::Rule") {
		if reflect.DeepEqual(path(r.Props(), "EventPattern", "source"), []any{"aws.ecs"}) {
			rule = r
		}
	}
	if rule.ID == "" {
		return []string{"no EventBridge rule on the agent tasks' state changes (source aws.ecs)"}
	}
	pat := asMap(rule.Props()["EventPattern"])
	want := map[string]any{
		"detail-type": []any{"ECS Task State Change"},
		"detail": map[string]any{
			"clusterArn": []any{map[string]any{"Fn::GetAtt": []any{"AgentCluster", "Arn"}}},
			"lastStatus": []any{"STOPPED"},
			"$or": []any{
				map[string]any{"stopCode": []any{"TaskFailedToStart"}},
				map[string]any{"containers": map[string]any{"exitCode": []any{map[string]any{"anything-but": 0.0}}}},
			},
		},
	}
	for k, v := range want {
		if !reflect.DeepEqual(pat[k], v) {
			p.add("%s: EventPattern %s is %v, want %v", rule.ID, k, pat[k], v)
		}
	}
	if targets := list(rule.Props()["Targets"]); len(targets) != 1 || !reflect.DeepEqual(asMap(targets[0])["Arn"], alarmTopic) {
		p.add("%s: its one target must be the alarm topic", rule.ID)
	}
	policyAllows := func(service string, condition map[string]any) bool {
		for _, r := range t.ResourcesOfType("AWS::SNS::TopicPolicy") {
			if !reflect.DeepEqual(list(r.Props()["Topics"]), []any{map[string]any{"Ref": "AlarmTopic"}}) {
				continue
			}
			for _, s := range list(path(r.Props(), "PolicyDocument", "Statement")) {
				st := asMap(s)
				if str(st["Effect"]) == "Allow" && str(path(st, "Principal", "Service")) == service &&
					slices.Contains(list(st["Action"]), "sns:Publish") && reflect.DeepEqual(st["Condition"], condition) {
					return true
				}
			}
		}
		return false
	}
	if !policyAllows("events.amazonaws.com", map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": map[string]any{"Fn::GetAtt": []any{rule.ID, "Arn"}}}}) {
		p.add("AlarmTopic's policy must let events.amazonaws.com publish for %s (aws:SourceArn)", rule.ID)
	}
	if !policyAllows("cloudwatch.amazonaws.com", map[string]any{"StringEquals": map[string]any{"aws:SourceAccount": map[string]any{"Ref": "AWS::AccountId"}}}) {
		p.add("AlarmTopic's policy must let cloudwatch.amazonaws.com of this account publish")
	}
	return p
}
