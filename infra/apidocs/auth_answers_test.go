package apidocs

import (
	"strings"
	"testing"

	"counselvideo/shared/httpapi"
)

// TestOpenAPIDocumentsAuthAnswers: every route is authenticated, so each documents both ways the
// check can fail: 401 (bad token: sign in again) and 503 (keys unavailable: retry, stay signed in).
func TestOpenAPIDocumentsAuthAnswers(t *testing.T) {
	d := load(t)
	for _, r := range httpapi.Routes() {
		op, ok := d.Paths[r.Path][strings.ToLower(r.Method)].(map[string]any)
		if !ok {
			t.Errorf("%s %s not documented", r.Method, r.Path)
			continue
		}
		responses, _ := op["responses"].(map[string]any)
		for _, status := range []string{"401", "503"} {
			if _, ok := responses[status]; !ok {
				t.Errorf("%s %s does not document %s", r.Method, r.Path, status)
			}
		}
	}
}

// TestOpenAPIDocumentsCostGuards: the create-room routes document the cost guards' answers, 429 and
// 503, each with its Retry-After header.
func TestOpenAPIDocumentsCostGuards(t *testing.T) {
	d := load(t)
	for _, r := range httpapi.CreateRoomRoutes() {
		op, _ := d.Paths[r.Path][strings.ToLower(r.Method)].(map[string]any)
		responses, _ := op["responses"].(map[string]any)
		for status, component := range map[string]string{"429": "StudentLimitReached", "503": "CreateRoomUnavailable"} {
			ref, _ := responses[status].(map[string]any)["$ref"].(string)
			if ref != "#/components/responses/"+component {
				t.Errorf("%s %s: %s is %v, want the %s response", r.Method, r.Path, status, responses[status], component)
			}
		}
	}
	for _, component := range []string{"StudentLimitReached", "CreateRoomUnavailable"} {
		if d.Components.Responses[component].Headers["Retry-After"] == nil {
			t.Errorf("response %s does not document Retry-After", component)
		}
	}
}
