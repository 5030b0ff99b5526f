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
