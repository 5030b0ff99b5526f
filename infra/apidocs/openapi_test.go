// Package apidocs keeps docs/openapi.yaml, the frontend team's contract, in step with the code.
package apidocs

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"counselvideo/infra/localstack"
	"counselvideo/shared/httpapi"
	"counselvideo/shared/service"
	"counselvideo/shared/sessions"
)

type document struct {
	Paths      map[string]map[string]any `yaml:"paths"`
	Components struct {
		Schemas   map[string]schema `yaml:"schemas"`
		Responses map[string]struct {
			Headers map[string]any `yaml:"headers"`
		} `yaml:"responses"`
	} `yaml:"components"`
}

type schema struct {
	Required   []string          `yaml:"required"`
	Properties map[string]schema `yaml:"properties"`
	Enum       []string          `yaml:"enum"`
}

func load(t *testing.T) document {
	t.Helper()
	paths, err := localstack.FindPaths()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(paths.Root, "docs", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var d document
	if err := yaml.Unmarshal(raw, &d); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	return d
}

// jsonFields lists a struct's JSON field names (the API's wire names).
func jsonFields(v any) []string {
	var out []string
	rt := reflect.TypeOf(v)
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	d := load(t)
	var documented, served []string
	for path, ops := range d.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	for _, r := range httpapi.Routes() {
		served = append(served, r.Method+" "+r.Path)
	}
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("docs/openapi.yaml documents %v\nthe handler serves %v", documented, served)
	}
}

func TestOpenAPISchemasMatchCode(t *testing.T) {
	s := load(t).Components.Schemas
	errCodes := slices.Sorted(slices.Values(s["Error"].Properties["error"].Properties["code"].Enum))
	if want := slices.Sorted(slices.Values(httpapi.ErrorCodes)); !slices.Equal(errCodes, want) {
		t.Errorf("error codes: documented %v, code has %v", errCodes, want)
	}
	if got, want := keys(s["CreateRoomResponse"].Properties), jsonFields(service.Created{}); !slices.Equal(got, want) {
		t.Errorf("CreateRoomResponse: documented %v, service.Created has %v", got, want)
	}
	if got := slices.Sorted(slices.Values(s["CreateRoomResponse"].Required)); !slices.Equal(got, jsonFields(service.Created{})) {
		t.Errorf("CreateRoomResponse required %v", got)
	}
	if got, want := keys(s["Session"].Properties), jsonFields(sessions.Session{}); !slices.Equal(got, want) {
		t.Errorf("Session: documented %v, sessions.Session serializes %v", got, want)
	}
	status := slices.Sorted(slices.Values(s["Status"].Enum))
	want := []string{string(sessions.StatusActive), string(sessions.StatusEnded), string(sessions.StatusFailed), string(sessions.StatusStarting)}
	if !slices.Equal(status, want) {
		t.Errorf("Status enum %v, want %v", status, want)
	}
}
