package templatecheck

import (
	"strings"
	"testing"
	"time"

	"counselvideo/shared/service"
	"counselvideo/shared/webhook"
)

// TestTimeBudget: the real template's API timeout holds the API's worst case, and a timeout one
// second short of it is reported.
func TestTimeBudget(t *testing.T) {
	reportAll(t, CheckTimeBudget(loadTemplate(t)))

	short := loadTemplate(t)
	props(t, short, "ApiFunction")["Timeout"] = int((service.TimeBudget() - time.Second) / time.Second)
	if found := CheckTimeBudget(short); len(found) != 1 || !strings.Contains(found[0], "shorter than the API's time budget") {
		t.Fatalf("a short timeout: %v", found)
	}
	shortHook := loadTemplate(t)
	props(t, shortHook, "WebhookFunction")["Timeout"] = int((webhook.TimeBudget() - time.Second) / time.Second)
	if found := CheckTimeBudget(shortHook); len(found) != 1 || !strings.Contains(found[0], "shorter than the webhook's time budget") {
		t.Fatalf("a short webhook timeout: %v", found)
	}
	unset := loadTemplate(t)
	delete(props(t, unset, "ApiFunction"), "Timeout")
	if found := CheckTimeBudget(unset); len(found) != 1 {
		t.Fatalf("no timeout (Lambda's default, 3 s, is too short): %v", found)
	}
}

// TestListTasksScopedToCluster: the API may list tasks only with the cluster condition.
func TestListTasksScopedToCluster(t *testing.T) {
	tpl := loadTemplate(t)
	delete(statementWithAction(t, tpl, "ApiFunctionRole", "agent-tasks", "ecs:ListTasks"), "Condition")
	found := strings.Join(CheckIAM(tpl), "\n")
	if !strings.Contains(found, "ecs:ListTasks needs Condition ecs:cluster") {
		t.Fatalf("unscoped ListTasks not reported: %s", found)
	}
}
