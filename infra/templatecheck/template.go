// Package templatecheck checks the deployment against the code, on the template as CloudFormation
// receives it: template.yaml after the SAM transform (the translator cfn-lint ships, run offline).
// What it checks is specific to this project: the environment contracts (shared/config for the
// functions, agentimage's VARIABLES table for the agent task), the tables against shared/dynamotables,
// the routes against the handler's route table, IAM scoped to this stack's resources, the Fargate size
// and duration limits, retained resources and the image tag story. Generic template validity is
// cfn-lint's job (lint_test.go). Every check returns the problems it found, so the tests can show that
// each check fails on a broken copy of the template.
package templatecheck

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Template is a CloudFormation template in its JSON form: map[string]any, []any and scalars, with
// intrinsics in long form ({"Ref": "X"}, {"Fn::Sub": "s"}, ...).
type Template struct {
	Root map[string]any
}

// Parse parses a template in JSON form.
func Parse(b []byte) (*Template, error) {
	var root map[string]any
	if err := json.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("template is not a JSON object: %w", err)
	}
	return &Template{Root: root}, nil
}

//go:embed transform.py
var transformScript string

// Transform runs the SAM transform on a template file and returns the deployed template as JSON: the
// same translator and the same offline preparation cfn-lint uses when it lints the file, so the checks
// and the lint see one template. It needs python3 with cfn-lint (which brings aws-sam-translator).
func Transform(templatePath string) ([]byte, error) {
	python, err := exec.LookPath("python3")
	if err != nil {
		return nil, fmt.Errorf("python3 not found: the template checks need python3 with cfn-lint 1.51.0 and its aws-sam-translator " +
			"(machines of this project's kind have them in the system Python; elsewhere: pip install cfn-lint==1.51.0)")
	}
	cmd := exec.Command(python, "-c", transformScript, templatePath)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("SAM transform of %s failed (%v): %s", templatePath, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Resource is one entry of Resources.
type Resource struct {
	ID   string
	Type string
	Body map[string]any // the whole entry (Type, Properties, Condition, DeletionPolicy, Metadata, ...)
}

// Props returns the resource's Properties (empty map if none).
func (r Resource) Props() map[string]any { return asMap(r.Body["Properties"]) }

// Resources returns the template's resources sorted by logical id.
func (t *Template) Resources() []Resource {
	var out []Resource
	for id, v := range asMap(t.Root["Resources"]) {
		m := asMap(v)
		out = append(out, Resource{ID: id, Type: str(m["Type"]), Body: m})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Resource returns the resource with the logical id, if any.
func (t *Template) Resource(id string) (Resource, bool) {
	m, ok := asMap(t.Root["Resources"])[id].(map[string]any)
	if !ok {
		return Resource{}, false
	}
	return Resource{ID: id, Type: str(m["Type"]), Body: m}, true
}

// ResourcesOfType returns the resources of one type, sorted by logical id.
func (t *Template) ResourcesOfType(typ string) []Resource {
	var out []Resource
	for _, r := range t.Resources() {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// Parameters returns the Parameters section.
func (t *Template) Parameters() map[string]map[string]any {
	out := map[string]map[string]any{}
	for k, v := range asMap(t.Root["Parameters"]) {
		out[k] = asMap(v)
	}
	return out
}

// FunctionEnv returns a Lambda function's environment variables.
func (t *Template) FunctionEnv(r Resource) map[string]any {
	return asMap(path(r.Props(), "Environment", "Variables"))
}

// ---- small helpers over the generic tree

func asMap(v any) map[string]any {
	if m, ok := v.(map[string]any); ok {
		return m
	}
	return map[string]any{}
}

func str(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

// num returns a JSON number (or a numeric string, as CloudFormation accepts both) as a float.
func num(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

// list returns v as a list; a single value is a one-element list (IAM's Action and Resource accept both).
func list(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	default:
		return []any{x}
	}
}

// path walks nested maps by keys.
func path(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// intrinsic returns the name and argument of a one-key intrinsic map.
func intrinsic(v any) (string, any, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", nil, false
	}
	for k, a := range m {
		if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
			return k, a, true
		}
	}
	return "", nil, false
}

// refTarget returns X for {"Ref": "X"}.
func refTarget(v any) (string, bool) {
	name, arg, ok := intrinsic(v)
	if !ok || name != "Ref" {
		return "", false
	}
	s, ok := arg.(string)
	return s, ok
}

// getAttTarget returns (A, B) for {"Fn::GetAtt": ["A", "B"]}.
func getAttTarget(v any) (string, string, bool) {
	name, arg, ok := intrinsic(v)
	if !ok || name != "Fn::GetAtt" {
		return "", "", false
	}
	a := list(arg)
	if len(a) != 2 {
		return "", "", false
	}
	return str(a[0]), str(a[1]), true
}

// subTemplate returns the template string of {"Fn::Sub": "s"} or {"Fn::Sub": ["s", {...}]}.
func subTemplate(v any) (string, bool) {
	name, arg, ok := intrinsic(v)
	if !ok || name != "Fn::Sub" {
		return "", false
	}
	if s, ok := arg.(string); ok {
		return s, true
	}
	if a, ok := arg.([]any); ok && len(a) > 0 {
		s, ok := a[0].(string)
		return s, ok
	}
	return "", false
}

// branches expands Fn::If into its two branches (recursively); AWS::NoValue branches are dropped.
// Any other value is returned as is. Checks apply to every branch: each can be deployed.
func branches(v any) []any {
	name, arg, ok := intrinsic(v)
	if !ok || name != "Fn::If" {
		if r, ok := refTarget(v); ok && r == "AWS::NoValue" {
			return nil
		}
		return []any{v}
	}
	a := list(arg)
	if len(a) != 3 {
		return []any{v}
	}
	return append(branches(a[1]), branches(a[2])...)
}

// isSet reports whether an environment value is present and not a literal empty string.
func isSet(v any) bool {
	if v == nil {
		return false
	}
	if s, ok := v.(string); ok {
		return strings.TrimSpace(s) != ""
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// FindRoot walks up from dir to the directory holding go.work (the repository root).
func FindRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.work above %s", dir)
		}
		dir = parent
	}
}
