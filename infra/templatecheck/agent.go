package templatecheck

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"counselvideo/shared/config"
	"counselvideo/shared/dynamotables"
)

// ---------------------------------------------------------------- the agent task

// CheckAgentTask checks the agent's task definition against the agent's own VARIABLES table, as read
// by the direct entry (the image's CMD, node dist/main.js: the launcher's RunTask starts one task per
// session): every required variable the launcher does not set per session is given, every variable
// given is one that entry reads (worker-only variables are not), secrets come from Secrets Manager
// (…SecretArn parameters) and only secrets do; ARM64
// (the image's platform) and sizes from parameters; the execution role reads exactly those secrets;
// the task role only reads the categories table, flags session items and publishes safety alerts.
func CheckAgentTask(t *Template, schema AgentSchema) []string {
	var p problems
	td, c, ok := agentContainer(t)
	if !ok {
		return []string{"the API's AGENT_TASK_DEFINITION/AGENT_CONTAINER_NAME do not name a task definition and container of the template"}
	}
	props := td.Props()
	if str(path(props, "RuntimePlatform", "CpuArchitecture")) != "ARM64" {
		p.add("%s: RuntimePlatform.CpuArchitecture must be ARM64 (the image is built for linux/arm64)", td.ID)
	}
	for _, k := range []string{"Cpu", "Memory"} {
		if name, ok := refTarget(props[k]); !ok || t.Parameters()[name] == nil {
			p.add("%s: %s must be a parameter", td.ID, k)
		}
	}
	if props["Family"] == nil {
		p.add("%s: Family must be set (RunTask is granted on the family)", td.ID)
	}

	given, inEnv, inSecrets := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, e := range list(c["Environment"]) {
		given[str(asMap(e)["Name"])], inEnv[str(asMap(e)["Name"])] = true, true
	}
	secretParams := map[string]bool{}
	for _, sv := range list(c["Secrets"]) {
		s := asMap(sv)
		given[str(s["Name"])], inSecrets[str(s["Name"])] = true, true
		param := secretParamOfValueFrom(s["ValueFrom"])
		if param == "" || t.Parameters()[param] == nil {
			p.add("%s: secret %s: ValueFrom must be a …SecretArn parameter (optionally :json-key::)", td.ID, s["Name"])
			continue
		}
		secretParams[param] = true
	}
	perSession := launcherVariables()
	for _, name := range sortedKeys(perSession) {
		if v, ok := schema[name]; !ok || !v.ReadBy(DirectEntry) {
			p.add("the launcher sets %s per session, but the agent's VARIABLES has no such variable for the direct entry", name)
		}
	}
	for _, name := range sortedKeys(given) {
		v, known := schema[name]
		switch {
		case !known:
			p.add("%s: %s is set but the agent's VARIABLES (agentimage/src/config.ts) has no such variable", td.ID, name)
		case !v.ReadBy(DirectEntry):
			p.add("%s: %s is read only by the agent's %s entry; this task runs the direct entry (node dist/main.js)", td.ID, name, v.Entry)
		case perSession[name]:
			p.add("%s: %s is set per session by the launcher; the task definition must not set it", td.ID, name)
		case v.Secret && inEnv[name]:
			p.add("%s: %s is a secret; it belongs in Secrets (Secrets Manager), not Environment", td.ID, name)
		case !v.Secret && inSecrets[name]:
			p.add("%s: %s comes from Secrets but the agent does not treat it as a secret (it would not be scrubbed from logs)", td.ID, name)
		}
	}
	for _, name := range sortedKeys(schema) {
		if v := schema[name]; v.Required && v.ReadBy(DirectEntry) && !perSession[name] && !given[name] {
			p.add("%s: the agent requires %s; set it in the task definition", td.ID, name)
		}
	}

	_, categories := tableIDs(t)
	sts, _ := statements(t)
	if role, _, ok := getAttTarget(props["ExecutionRoleArn"]); ok {
		granted := map[string]bool{}
		for _, s := range allows(sts, role) {
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
		sessionsTable, _ := tableIDs(t)
		topic, _ := refTarget(containerEnv(c)["SAFETY_ALERT_TOPIC_ARN"])
		for _, s := range allows(sts, role) {
			p = append(p, checkAgentTaskGrant(s, categories, sessionsTable, topic)...)
		}
	} else {
		p.add("%s: TaskRoleArn must be !GetAtt of a role of the template", td.ID)
	}
	p = append(p, checkSafetyWiring(t, c)...)
	return p
}

// checkAgentTaskGrant holds one statement of the agent's task role to the three things the agent's own
// code does: read its category (GetItem on the categories table), flag its session for a safety concern
// (UpdateItem on session items of the sessions table, the flag's attributes only, answering only what
// it updated) and alert the counseling staff (sns:Publish on the topic given as SAFETY_ALERT_TOPIC_ARN).
func checkAgentTaskGrant(s statement, categories, sessionsTable, topic string) []string {
	var p problems
	onlyOn := func(action, want string, ok func(any) bool) {
		for _, r := range s.resources() {
			if !ok(r) {
				p.add("%s: %s on %v; the agent may use it on %s only", s.where, action, r, want)
			}
		}
	}
	isArnOf := func(id string) func(any) bool {
		return func(r any) bool { x, attr, ok := getAttTarget(r); return ok && id != "" && x == id && attr == "Arn" }
	}
	for _, a := range s.actions() {
		switch a {
		case "dynamodb:GetItem":
			onlyOn(a, "the categories table", isArnOf(categories))
		case "dynamodb:UpdateItem":
			onlyOn(a, "the sessions table", isArnOf(sessionsTable))
			leading := list(path(s.body, "Condition", "ForAllValues:StringLike", "dynamodb:LeadingKeys"))
			if len(leading) != 1 || str(leading[0]) != dynamotables.SessionItemPrefix+"*" {
				p.add("%s: %s needs Condition ForAllValues:StringLike dynamodb:LeadingKeys [%q] (session items only)", s.where, a, dynamotables.SessionItemPrefix+"*")
			}
			allowed := map[string]bool{dynamotables.SessionsHashKey: true, dynamotables.SafetyFlagAttr: true, dynamotables.SafetyFlagCountAttr: true}
			attrs := list(path(s.body, "Condition", "ForAllValues:StringEquals", "dynamodb:Attributes"))
			for _, at := range attrs {
				if !allowed[str(at)] {
					p.add("%s: %s may touch %v; the agent writes only %s and %s", s.where, a, at, dynamotables.SafetyFlagAttr, dynamotables.SafetyFlagCountAttr)
				}
			}
			if len(attrs) == 0 {
				p.add("%s: %s needs Condition ForAllValues:StringEquals dynamodb:Attributes (the flag's attributes only)", s.where, a)
			}
			for _, rv := range list(path(s.body, "Condition", "StringEqualsIfExists", "dynamodb:ReturnValues")) {
				if v := str(rv); v != "NONE" && v != "UPDATED_NEW" {
					p.add("%s: %s may return %s: other attributes of the session would leave through it", s.where, a, v)
				}
			}
			if path(s.body, "Condition", "StringEqualsIfExists", "dynamodb:ReturnValues") == nil {
				p.add("%s: %s needs Condition StringEqualsIfExists dynamodb:ReturnValues [NONE, UPDATED_NEW]", s.where, a)
			}
		case "sns:Publish":
			onlyOn(a, "the topic given as SAFETY_ALERT_TOPIC_ARN", func(r any) bool { x, ok := refTarget(r); return ok && topic != "" && x == topic })
		default:
			p.add("%s: %s is extra: the agent's task role may only read its category, flag its session and alert the staff", s.where, a)
		}
	}
	return p
}

// checkSafetyWiring checks the crisis escalation's deployment: the agent writes to the stack's sessions
// table and publishes to an encrypted topic of the stack, and the sweeper's grace for flagged sessions
// is the agent's (one parameter), so the sweeper never cuts a session the agent extended.
func checkSafetyWiring(t *Template, c map[string]any) []string {
	var p problems
	env := containerEnv(c)
	sessionsTable, _ := tableIDs(t)
	if id, ok := refTarget(env["SESSIONS_TABLE"]); !ok || id != sessionsTable {
		p.add("agent container: SESSIONS_TABLE must be !Ref %s", sessionsTable)
	}
	topicID, _ := refTarget(env["SAFETY_ALERT_TOPIC_ARN"])
	if r, ok := t.Resource(topicID); !ok || r.Type != typeTopic {
		p.add("agent container: SAFETY_ALERT_TOPIC_ARN must be !Ref to an %s of the stack", typeTopic)
	} else if r.Props()["KmsMasterKeyId"] == nil {
		p.add("%s: the safety alerts must be encrypted at rest (KmsMasterKeyId)", r.ID)
	}
	agentGrace, _ := refTarget(env["AGENT_SAFETY_GRACE_SECONDS"])
	for _, r := range t.ResourcesOfType(typeFunction) {
		if Functions[r.ID] != config.Sweeper {
			continue
		}
		if g, _ := refTarget(t.FunctionEnv(r)["SESSION_SAFETY_GRACE_SECONDS"]); agentGrace == "" || g != agentGrace {
			p.add("%s: SESSION_SAFETY_GRACE_SECONDS must be !Ref the parameter the agent's AGENT_SAFETY_GRACE_SECONDS uses", r.ID)
		}
	}
	return p
}

// containerEnv maps a container definition's Environment names to their values.
func containerEnv(c map[string]any) map[string]any {
	out := map[string]any{}
	for _, e := range list(c["Environment"]) {
		out[str(asMap(e)["Name"])] = asMap(e)["Value"]
	}
	return out
}

var secretValueFrom = regexp.MustCompile(`^\$\{([A-Za-z0-9]+SecretArn)\}:[A-Za-z0-9_]+::$`)

// secretParamOfValueFrom returns P for !Ref P or !Sub "${P}:json-key::" where P ends with SecretArn.
func secretParamOfValueFrom(v any) string {
	if name, ok := refTarget(v); ok && strings.HasSuffix(name, "SecretArn") {
		return name
	}
	if s, ok := subTemplate(v); ok {
		if m := secretValueFrom.FindStringSubmatch(s); m != nil {
			return m[1]
		}
	}
	return ""
}

// ---------------------------------------------------------------- duration bounds

// CheckDurations checks every duration parameter (Number, name ending in Seconds) and every other
// Number parameter a function reads (the limits): MinValue and MaxValue are set, and every component
// the value reaches accepts both bounds: config.Load for a function's variable, the agent's VARIABLES
// (whole seconds up to maxSeconds) for the task's and for what the launcher passes on (PassedToAgent).
func CheckDurations(t *Template, schema AgentSchema) []string {
	var p problems
	readByFunction := map[string]bool{}
	for _, r := range t.ResourcesOfType(typeFunction) {
		for _, v := range t.FunctionEnv(r) {
			if ref, ok := refTarget(v); ok {
				readByFunction[ref] = true
			}
		}
	}
	for _, name := range sortedKeys(t.Parameters()) {
		def := t.Parameters()[name]
		if str(def["Type"]) != "Number" || !(strings.HasSuffix(name, "Seconds") || readByFunction[name]) {
			continue
		}
		lo, hasLo := num(def["MinValue"])
		hi, hasHi := num(def["MaxValue"])
		if !hasLo || !hasHi {
			p.add("parameter %s: a duration or limit needs MinValue and MaxValue (what every component accepts)", name)
			continue
		}
		bounds := []string{fmt.Sprint(lo), fmt.Sprint(hi)}
		for _, r := range t.ResourcesOfType(typeFunction) {
			for _, v := range sortedKeys(t.FunctionEnv(r)) {
				if ref, _ := refTarget(t.FunctionEnv(r)[v]); ref != name {
					continue
				}
				for _, b := range bounds {
					found, _ := loadProblems(Functions[r.ID], map[string]string{v: b})
					if slices.ContainsFunc(found, func(s string) bool { return strings.HasPrefix(s, v+" ") }) {
						p.add("parameter %s: %s %s=%s is refused by config.Load(%q)", name, r.ID, v, b, Functions[r.ID])
					}
				}
				if agentVar, ok := PassedToAgent[v]; ok {
					if spec := schema[agentVar]; !spec.Seconds || lo < 1 || hi > float64(spec.MaxSeconds) {
						p.add("parameter %s: %s reaches the agent per session as %s, which the agent accepts only as whole seconds from 1 to %d; the parameter allows %v-%v",
							name, v, agentVar, spec.MaxSeconds, lo, hi)
					}
				}
			}
		}
		for _, c := range agentContainers(t) {
			for _, e := range list(c["Environment"]) {
				v := str(asMap(e)["Name"])
				if ref, _ := refTarget(asMap(e)["Value"]); ref != name {
					continue
				}
				spec := schema[v]
				if !spec.Seconds || lo < 1 || hi > float64(spec.MaxSeconds) {
					p.add("parameter %s: the agent accepts %s only as whole seconds from 1 to %d, the parameter allows %v-%v",
						name, v, spec.MaxSeconds, lo, hi)
				}
			}
		}
	}
	return p
}

// ---------------------------------------------------------------- the agent image

var pinnedImage = regexp.MustCompile(`^\$\{([A-Za-z0-9]+)\.RepositoryUri\}:\$\{([A-Za-z0-9]+)\}$`)

// CheckImageRepository checks the image story: the agent runs ${<Repository>.RepositoryUri}:${<Tag
// parameter>} from this stack's repository, the repository's tags are immutable, its lifecycle
// expires only untagged images, and the tag parameter refuses moving tags such as latest.
func CheckImageRepository(t *Template) []string {
	var p problems
	_, c, ok := agentContainer(t)
	if !ok {
		return []string{"no agent container (see the agent task check)"}
	}
	image, _ := subTemplate(c["Image"])
	m := pinnedImage.FindStringSubmatch(image)
	if m == nil {
		return []string{fmt.Sprintf("agent container Image %v must be !Sub ${<Repository>.RepositoryUri}:${<TagParameter>}", c["Image"])}
	}
	repo, tagParam := m[1], m[2]
	r, ok := t.Resource(repo)
	if !ok || r.Type != typeECRRepo {
		return []string{fmt.Sprintf("agent image repository %s is not an %s of the template", repo, typeECRRepo)}
	}
	if mut := str(r.Props()["ImageTagMutability"]); mut != "IMMUTABLE" && mut != "IMMUTABLE_WITH_EXCLUSION" {
		p.add("%s: ImageTagMutability is %q: a pinned tag could be overwritten with another image", r.ID, mut)
	}
	var policy struct {
		Rules []struct {
			Selection struct {
				TagStatus string `json:"tagStatus"`
			} `json:"selection"`
			Action struct {
				Type string `json:"type"`
			} `json:"action"`
		} `json:"rules"`
	}
	text, isText := path(r.Props(), "LifecyclePolicy", "LifecyclePolicyText").(string)
	if err := json.Unmarshal([]byte(text), &policy); isText && err != nil {
		p.add("%s: LifecyclePolicyText is not JSON: %v", r.ID, err)
	}
	for i, rule := range policy.Rules {
		if rule.Action.Type == "expire" && rule.Selection.TagStatus != "untagged" {
			p.add("%s: lifecycle rule %d expires %q images; only untagged ones may expire (a running environment pins a tag)", r.ID, i+1, rule.Selection.TagStatus)
		}
	}
	def, ok := t.Parameters()[tagParam]
	if !ok {
		return append(p, fmt.Sprintf("image tag %s is not a parameter", tagParam))
	}
	re, err := regexp.Compile(`^(?:` + str(def["AllowedPattern"]) + `)$`)
	switch {
	case def["Default"] != nil:
		p.add("parameter %s: no default; every environment pins the tag it was tested with", tagParam)
	case str(def["AllowedPattern"]) == "" || err != nil:
		p.add("parameter %s: needs an AllowedPattern admitting commit ids and versions only", tagParam)
	case re.MatchString("latest") || !re.MatchString("1a2b3c4") || !re.MatchString("1.2.3"):
		p.add("parameter %s: AllowedPattern %q must refuse latest and admit a commit id (1a2b3c4) and a version (1.2.3)", tagParam, def["AllowedPattern"])
	}
	return p
}

// agentContainers are the agent's containers: the per-session task's and, with the pool, the worker's.
func agentContainers(t *Template) []map[string]any {
	var out []map[string]any
	if _, c, ok := agentContainer(t); ok {
		out = append(out, c)
	}
	if _, c, ok := workerContainer(t); ok {
		out = append(out, c)
	}
	return out
}
