package templatecheck

import (
	"regexp"
	"strings"
)

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
		}
	}
	return out, p
}

// allows returns the Allow statements of a role.
func allows(sts []statement, role string) []statement {
	var out []statement
	for _, s := range sts {
		if role != "" && s.role == role && str(s.body["Effect"]) == "Allow" {
			out = append(out, s)
		}
	}
	return out
}

var subArnPrefix = regexp.MustCompile(`^\$\{([A-Za-z0-9]+)\.Arn\}`)

// named returns what an IAM resource names: X for !GetAtt X.Arn, !Ref X or !Sub "${X.Arn}/...", "".
func named(v any) string {
	if x, attr, ok := getAttTarget(v); ok && attr == "Arn" {
		return x
	}
	if x, ok := refTarget(v); ok {
		return x
	}
	if sub, ok := subTemplate(v); ok {
		if m := subArnPrefix.FindStringSubmatch(sub); m != nil {
			return m[1]
		}
	}
	return ""
}

// CheckIAM checks least privilege: inline policies only, no NotAction/NotResource, no wildcard
// actions, and every action is one the design grants, on this stack's resources only (the agent task
// family and its cluster's tasks, the two agent roles, the stack's tables and indexes, the named
// secrets, the stack's log groups and repository); Resource "*" only where IAM cannot scope the
// action. An action with no case below fails: granting a new one means adding its scope here.
func CheckIAM(t *Template) []string {
	sts, p := statements(t)
	ids := map[string]map[string]bool{}                          // resource type -> logical ids of the stack
	families, agentRoles := map[string]bool{}, map[string]bool{} // of the stack's task definitions
	for _, r := range t.Resources() {
		if ids[r.Type] == nil {
			ids[r.Type] = map[string]bool{}
		}
		ids[r.Type][r.ID] = true
		if r.Type == typeTaskDef {
			family, _ := subTemplate(r.Props()["Family"])
			families[family] = true
			for _, k := range []string{"TaskRoleArn", "ExecutionRoleArn"} {
				role, _, _ := getAttTarget(r.Props()[k])
				agentRoles[role] = true
			}
		}
	}
	clusterTask := func(r any) bool {
		s, _ := subTemplate(r)
		for id := range ids[typeCluster] {
			if strings.Contains(s, ":task/${"+id+"}/") {
				return true
			}
		}
		return false
	}
	param := func(suffix string) func(any) bool {
		return func(r any) bool {
			name, ok := refTarget(r)
			return ok && strings.HasSuffix(name, suffix) && t.Parameters()[name] != nil
		}
	}
	of := func(set map[string]bool) func(any) bool { return func(r any) bool { return set[named(r)] } }
	condition := func(s statement, key string) any {
		for _, op := range []string{"ArnEquals", "StringEquals"} {
			if v := path(s.body, "Condition", op, key); v != nil {
				return v
			}
		}
		return nil
	}
	onCluster := func(s statement) bool {
		id, _, _ := getAttTarget(condition(s, "ecs:cluster"))
		return ids[typeCluster][id]
	}

	for _, s := range sts {
		if str(s.body["Effect"]) != "Allow" {
			continue
		}
		if s.body["NotAction"] != nil || s.body["NotResource"] != nil {
			p.add("%s: NotAction/NotResource grant more than they name", s.where)
		}
		for _, action := range s.actions() {
			if action == "" || strings.Contains(action, "*") {
				p.add("%s: action %q: wildcards and intrinsics are not allowed in actions", s.where, action)
				continue
			}
			each := func(ok func(any) bool, want string) {
				for _, r := range s.resources() {
					if r == "*" {
						p.add("%s: %s on Resource \"*\" (it supports resource-level permissions)", s.where, action)
					} else if !ok(r) {
						p.add("%s: %s on %v; want %s", s.where, action, r, want)
					}
				}
			}
			need := func(holds bool, what string) {
				if !holds {
					p.add("%s: %s needs Condition %s", s.where, action, what)
				}
			}
			service, _, _ := strings.Cut(action, ":")
			switch {
			case action == "ecs:ListTasks": // its resource is a container instance, which Fargate tasks lack
				need(onCluster(s), "ecs:cluster = the stack's cluster")
			case actionsWithoutResourceLevelPermissions[action]:
			case action == "ecs:RunTask":
				each(func(r any) bool {
					sub, _ := subTemplate(r)
					_, family, _ := strings.Cut(sub, ":task-definition/")
					if i := strings.LastIndex(family, ":"); i > 0 {
						family = family[:i] // drop the revision
					}
					return family != "" && families[family]
				}, "a task definition family of the stack only (task-definition/<Family>:*)")
				need(onCluster(s), "ecs:cluster = the stack's cluster")
			case action == "ecs:StopTask" || action == "ecs:DescribeTasks":
				each(clusterTask, "tasks of the stack's cluster (task/${Cluster}/*)")
				need(onCluster(s), "ecs:cluster = the stack's cluster")
			case action == "ecs:UpdateTaskProtection": // a pool worker protecting its own task
				each(clusterTask, "tasks of the stack's cluster (task/${Cluster}/*)")
			case action == "ecs:TagResource":
				each(clusterTask, "tasks of the stack's cluster (task/${Cluster}/*)")
				need(condition(s, "ecs:CreateAction") == "RunTask", "ecs:CreateAction = RunTask")
			case action == "iam:PassRole":
				each(of(agentRoles), "the agent's task and execution roles only")
				need(condition(s, "iam:PassedToService") == "ecs-tasks.amazonaws.com", "iam:PassedToService = ecs-tasks.amazonaws.com")
			case service == "secretsmanager":
				each(param("SecretArn"), "the ARN parameters of the named secrets (…SecretArn)")
			case service == "kms":
				each(param("KeyArn"), "the KMS key parameter")
				need(condition(s, "kms:ViaService") != nil, "kms:ViaService")
			case service == "dynamodb":
				each(of(ids[typeTable]), "the stack's tables and their indexes")
			case service == "logs":
				each(of(ids[typeLogGroup]), "the stack's log groups")
			case service == "ecr":
				each(of(ids[typeECRRepo]), "the stack's ECR repository")
			case action == "sns:Publish":
				each(of(ids[typeTopic]), "the stack's SNS topics")
			default:
				p.add("%s: %s is not an action the design grants (add its scope to CheckIAM)", s.where, action)
			}
		}
	}
	return p
}

// CheckFunctionScopes checks that each function's role reaches only the tables and secrets that
// function is given in its environment (the webhook and sweeper never touch the categories table).
func CheckFunctionScopes(t *Template) []string {
	var p problems
	sts, _ := statements(t)
	for _, r := range t.ResourcesOfType(typeFunction) {
		role, _, _ := getAttTarget(r.Props()["Role"])
		given := map[string]bool{}
		for _, v := range t.FunctionEnv(r) {
			if id, ok := refTarget(v); ok {
				given[id] = true
			}
		}
		for _, s := range allows(sts, role) {
			for _, a := range s.actions() {
				if service, _, _ := strings.Cut(a, ":"); service != "dynamodb" && service != "secretsmanager" {
					continue
				}
				for _, res := range s.resources() {
					if !given[named(res)] {
						p.add("%s: %s on %v, which %s is not given in its environment", s.where, a, res, r.ID)
					}
				}
			}
		}
	}
	return p
}
