package templatecheck

import (
	"fmt"
	"strings"
	"testing"
)

// readmeSection returns the README's section under heading (up to the next "## ").
func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	readme := readFile(t, "README.md")
	_, rest, ok := strings.Cut(readme, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README has no %q section", heading)
	}
	section, _, _ := strings.Cut(rest, "\n## ")
	return section
}

// TestReadmeDocumentsMetricsAndAlarms keeps the README's "Metrics and alarms" in step with the code
// (shared/metrics and the agent's METRICS) and the template: a row per emitted metric (unit and
// dimension sets as emitted), every bounded dimension value, every alarm and the agent-task rule.
func TestReadmeDocumentsMetricsAndAlarms(t *testing.T) {
	doc := readmeSection(t, "## Metrics and alarms")
	e := loadEmitted(t)
	for _, m := range e.Metrics {
		var sets []string
		for _, s := range m.Dimensions {
			sets = append(sets, strings.Join(s, ", "))
		}
		row := fmt.Sprintf("| `%s` | %s | %s |", m.Name, m.Unit, strings.Join(sets, "; "))
		if !strings.Contains(doc, row) {
			t.Errorf("README lacks the row %q (%s)", row, m.By)
		}
	}
	for dim, values := range e.Values {
		for _, v := range values {
			if !strings.Contains(doc, "`"+v+"`") {
				t.Errorf("README does not explain %s=%s", dim, v)
			}
		}
	}
	tpl := loadTemplate(t)
	for _, typ := range []string{"AWS::CloudWatch::Alarm", "AWS::Events::Rule"} {
		for _, r := range tpl.ResourcesOfType(typ) {
			if !strings.Contains(doc, "`"+r.ID+"`") {
				t.Errorf("README does not say what %s means and what to do", r.ID)
			}
		}
	}
}
