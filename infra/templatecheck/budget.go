package templatecheck

import (
	"strconv"
	"time"

	"counselvideo/shared/service"
)

// CheckTimeBudget checks that the API function's timeout holds the API's worst case
// (service.TimeBudget: waiting for keys, setup, a launcher's own cleanup, undoing a failed setup,
// margin). A shorter timeout would cut the cleanup off and leave a `starting` session holding the
// student's lock.
func CheckTimeBudget(t *Template) []string {
	var p problems
	r, ok := t.Resource("ApiFunction")
	if !ok {
		p.add("ApiFunction: missing")
		return p
	}
	secs, ok := seconds(r.Props()["Timeout"])
	if !ok {
		p.add("ApiFunction: Timeout must be a literal number of seconds (the time budget is checked against it)")
		return p
	}
	if timeout, budget := time.Duration(secs)*time.Second, service.TimeBudget(); budget > timeout {
		p.add("ApiFunction: Timeout %s is shorter than the API's time budget %s (service.TimeBudget)", timeout, budget)
	}
	return p
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
