package templatecheck

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// The transform and the agent's schema are read once per test binary; each test parses its own copy.
var (
	deployedOnce sync.Once
	deployedJSON []byte
	deployedErr  error
	schemaOnce   sync.Once
	agentSchema  AgentSchema
	schemaErr    error
)

// loadTemplate returns a fresh copy of template.yaml as deployed (after the SAM transform).
func loadTemplate(t *testing.T) *Template {
	t.Helper()
	deployedOnce.Do(func() { deployedJSON, deployedErr = Transform(filepath.Join(repoRoot(t), "template.yaml")) })
	if deployedErr != nil {
		t.Fatal(deployedErr)
	}
	tpl, err := Parse(deployedJSON)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func loadSchema(t *testing.T) AgentSchema {
	t.Helper()
	schemaOnce.Do(func() { agentSchema, schemaErr = LoadAgentSchema(repoRoot(t)) })
	if schemaErr != nil {
		t.Fatal(schemaErr)
	}
	return agentSchema
}

func readFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func reportAll(t *testing.T, found []string) {
	t.Helper()
	for _, p := range found {
		t.Error(p)
	}
}

// TestTemplate runs every check on template.yaml as deployed.
func TestTemplate(t *testing.T) {
	tpl, schema := loadTemplate(t), loadSchema(t)
	for _, name := range sortedKeys(Checks) {
		t.Run(name, func(t *testing.T) { reportAll(t, Checks[name](tpl, schema)) })
	}
}

func TestMakefileHasBuildTargets(t *testing.T) {
	reportAll(t, CheckMakefile(loadTemplate(t), readFile(t, "Makefile")))
}

func TestSamConfig(t *testing.T) {
	c, err := ParseSamConfig([]byte(readFile(t, "samconfig.toml")))
	if err != nil {
		t.Fatalf("parse samconfig.toml: %v", err)
	}
	reportAll(t, CheckSamConfig(loadTemplate(t), c))
	// The list form of parameter_overrides must parse into every pair (values with commas included).
	ov := c.ParameterOverrides("dev")
	if !strings.Contains(ov["AgentSubnetIds"], ",") || ov["LiveKitSecretArn"] == "" {
		t.Errorf("parameter_overrides not parsed as expected: %v", ov)
	}
}

// TestTransformIsTheDeployedForm pins what the checks rely on: SAM's resources are translated (the
// functions are AWS::Lambda::Function with Globals merged, the HTTP API carries an OpenAPI body).
func TestTransformIsTheDeployedForm(t *testing.T) {
	tpl := loadTemplate(t)
	if n := len(tpl.ResourcesOfType("AWS::Serverless::Function")); n != 0 {
		t.Errorf("%d SAM functions left after the transform", n)
	}
	api, ok := tpl.Resource("ApiFunction")
	if !ok || api.Type != typeFunction || str(api.Props()["Runtime"]) != "provided.al2023" {
		t.Errorf("ApiFunction after the transform: %v (Runtime comes from Globals)", api)
	}
	if _, ok := tpl.FunctionEnv(api)["SESSIONS_TABLE"]; !ok {
		t.Error("Globals environment not merged into ApiFunction")
	}
	if apis := tpl.ResourcesOfType(typeHTTPAPI); len(apis) != 1 || asMap(apis[0].Props()["Body"])["paths"] == nil {
		t.Errorf("HTTP API without an OpenAPI body: %v", apis)
	}
}

func TestTransformFailsClearlyWithoutPython(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Transform(filepath.Join(repoRoot(t), "template.yaml"))
	if err == nil || !strings.Contains(err.Error(), "cfn-lint") {
		t.Fatalf("want an error naming what to install, got %v", err)
	}
}

func TestTransformReportsTemplateErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "template.yaml")
	broken := strings.Replace(readFile(t, "template.yaml"), "Type: AWS::Serverless::HttpApi", "Type: AWS::Serverless::HttpApi\n    Properties: 3", 1)
	if err := os.WriteFile(p, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Transform(p); err == nil {
		t.Fatal("a template SAM cannot translate was transformed without an error")
	}
}

// TestAgentSchemaComesFromTheAgent pins a few rows of agentimage's VARIABLES as read through node.
func TestAgentSchemaComesFromTheAgent(t *testing.T) {
	s := loadSchema(t)
	if !s["SESSION_ID"].Required || !s["OPENAI_API_KEY"].Secret || s["BEY_AVATAR_ID"].Secret {
		t.Errorf("schema rows: %+v", s)
	}
	if v := s["AGENT_MAX_DURATION_SECONDS"]; !v.Seconds || v.MaxSeconds != 86400 {
		t.Errorf("AGENT_MAX_DURATION_SECONDS: %+v", v)
	}
	// Per entry point: per-session values only for the direct entry, the worker's own only for it.
	for name, entry := range map[string]string{"SESSION_ID": DirectEntry, "LIVEKIT_AGENT_NAME": WorkerEntry, "ECS_AGENT_URI": WorkerEntry, "LIVEKIT_URL": ""} {
		if v, ok := s[name]; !ok || v.Entry != entry {
			t.Errorf("%s: entry %q, want %q (%+v)", name, v.Entry, entry, v)
		}
	}
}

// TestAgentTaskIgnoresWorkerOnlyRequirements: a variable only the worker entry requires is not
// demanded from the direct entry's task definition (and the same row for both entries would be).
func TestAgentTaskIgnoresWorkerOnlyRequirements(t *testing.T) {
	tpl := loadTemplate(t)
	schema := AgentSchema{}
	for k, v := range loadSchema(t) {
		schema[k] = v
	}
	schema["POOL_ONLY_SETTING"] = AgentVariable{Entry: WorkerEntry, Required: true}
	if found := CheckAgentTask(tpl, schema); len(found) > 0 {
		t.Errorf("worker-only requirement demanded from the direct task: %v", found)
	}
	schema["POOL_ONLY_SETTING"] = AgentVariable{Required: true}
	if found := strings.Join(CheckAgentTask(tpl, schema), "\n"); !strings.Contains(found, "the agent requires POOL_ONLY_SETTING") {
		t.Errorf("a requirement of both entries was not demanded: %q", found)
	}
}
