package templatecheck

import (
	"strconv"
	"time"

	"counselvideo/shared/service"
	"counselvideo/shared/webhook"
)

// CheckTimeBudget checks that the API function's timeout holds the API's worst case
// (service.TimeBudget: waiting for keys, setup, a launcher's own cleanup, undoing a failed setup,
// margin). A shorter timeout would cut the cleanup off and leave a `starting` session holding the
// student's lock.
// The webhook function's timeout likewise holds webhook.TimeBudget (a lost agent's replacement: pool
// wait, cold launch, cleanup); cut off, a failed replacement would leave the student in a silent room.
func CheckTimeBudget(t *Template) []string {
	var p problems
	checkBudget(t, &p, "ApiFunction", "the API's", "service.TimeBudget", service.TimeBudget())
	checkBudget(t, &p, "WebhookFunction", "the webhook's", "webhook.TimeBudget", webhook.TimeBudget())
	return p
}

func checkBudget(t *Template, p *problems, name, whose, source string, budget time.Duration) {
	r, ok := t.Resource(name)
	if !ok {
		p.add("%s: missing", name)
		return
	}
	secs, ok := seconds(r.Props()["Timeout"])
	if !ok {
		p.add("%s: Timeout must be a literal number of seconds (the time budget is checked against it)", name)
		return
	}
	if timeout := time.Duration(secs) * time.Second; budget > timeout {
		p.add("%s: Timeout %s is shorter than %s time budget %s (%s)", name, timeout, whose, budget, source)
	}
}

func seconds(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case float64:
		return int(n), n == float64(int(n))
	case string:
		i, err := strconv.Atoi(n)
		return i, err == nil
	}
	return 0, false
}
