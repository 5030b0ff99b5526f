// Package templatecheck checks template.yaml (the SAM template) and samconfig.toml against the code:
// the environment contract (shared/config), the table definitions (shared/dynamotables), least
// privilege, secrets only by ARN, logging and the Lambda runtime. Every check returns the problems it
// found, so the tests can show that each check fails on a broken copy of the template.
package templatecheck

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Template is a parsed CloudFormation/SAM template. Short-form intrinsics (!Ref X, !Sub s, !GetAtt
// A.B, !If [...], ...) are normalised to their long form ({"Ref": "X"}, {"Fn::Sub": "s"}, ...), so
// the tree holds only map[string]any, []any and scalars, exactly like the JSON form of the template.
type Template struct {
	Root map[string]any
}

// Load reads and parses a template file.
func Load(path string) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// Parse parses template YAML.
func Parse(b []byte) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	v, err := convert(&doc)
	if err != nil {
		return nil, err
	}
	root, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("template is not a mapping")
	}
	return &Template{Root: root}, nil
}

// convert turns a yaml.Node into plain values, expanding CloudFormation short tags.
func convert(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return convert(n.Content[0])
	case yaml.AliasNode:
		return convert(n.Alias)
	}

	tag := n.Tag
	intrinsic := ""
	if strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!") {
		switch name := strings.TrimPrefix(tag, "!"); name {
		case "Ref", "Condition":
			intrinsic = name
		default:
			intrinsic = "Fn::" + name
		}
		tag = "" // resolve the value itself as if untagged
	}

	var v any
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			val, err := convert(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k] = val
		}
		v = m
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			val, err := convert(c)
			if err != nil {
				return nil, err
			}
			s = append(s, val)
		}
		v = s
	case yaml.ScalarNode:
		if intrinsic != "" {
			// Intrinsic arguments in short form are strings (!Ref X, !GetAtt A.B, !Sub "...").
			v = n.Value
			break
		}
		c := *n
		c.Tag = tag
		if err := c.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
	default:
		return nil, fmt.Errorf("line %d: unexpected YAML node kind %d", n.Line, n.Kind)
	}
	if intrinsic == "" {
		return v, nil
	}
	if intrinsic == "Fn::GetAtt" {
		// !GetAtt A.B is ["A", "B"] in long form.
		if s, ok := v.(string); ok {
			if i := strings.Index(s, "."); i > 0 {
				v = []any{s[:i], s[i+1:]}
			}
		}
	}
	return map[string]any{intrinsic: v}, nil
}

// Resource is one entry of Resources.
type Resource struct {
	ID   string
	Type string
	Body map[string]any // the whole resource entry (Type, Properties, Condition, Metadata, ...)
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

// FunctionProps returns a SAM function's properties merged over Globals.Function (maps merge
// recursively, as SAM does for Environment.Variables and LoggingConfig; other values are replaced).
func (t *Template) FunctionProps(r Resource) map[string]any {
	globals := asMap(asMap(t.Root["Globals"])["Function"])
	return mergeMaps(globals, r.Props())
}

func mergeMaps(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		bm, bok := out[k].(map[string]any)
		om, ook := v.(map[string]any)
		if bok && ook && !isIntrinsic(bm) && !isIntrinsic(om) {
			out[k] = mergeMaps(bm, om)
			continue
		}
		out[k] = v
	}
	return out
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

func isIntrinsic(m map[string]any) bool {
	if len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

// intrinsic returns the name and argument of a one-key intrinsic map.
func intrinsic(v any) (string, any, bool) {
	m, ok := v.(map[string]any)
	if !ok || !isIntrinsic(m) {
		return "", nil, false
	}
	for k, a := range m {
		return k, a, true
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
