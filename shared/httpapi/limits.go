package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"counselvideo/shared/logging"
	"counselvideo/shared/sessions"
)

// limitRefusal answers create-room's refusals under the cost guards: 429 for a student who used
// their day, 503 when every slot is taken, both with Retry-After and a message the frontend can show
// as it is. False if err is neither.
func (a *API) limitRefusal(w http.ResponseWriter, r *http.Request, err error) bool {
	var student *sessions.StudentLimitError
	var capacity *sessions.CapacityError
	log := logging.From(r.Context(), a.Log)
	switch {
	case errors.As(err, &student):
		log.Info("create-room refused: student limit reached", "limit", student.Kind, "limit_value", student.Limit,
			"retry_after_seconds", seconds(student.RetryAfter))
		w.Header().Set("Retry-After", strconv.FormatInt(seconds(student.RetryAfter), 10))
		writeError(w, r, http.StatusTooManyRequests, CodeStudentLimitReached, studentLimitMessage(student), "")
	case errors.As(err, &capacity):
		log.Warn("create-room refused: open-session capacity reached", "max_open_sessions", capacity.Max)
		w.Header().Set("Retry-After", strconv.FormatInt(seconds(capacity.RetryAfter), 10))
		writeError(w, r, http.StatusServiceUnavailable, CodeCapacityReached,
			"All counselors are busy right now. Please try again in "+about(capacity.RetryAfter)+".", "")
	default:
		return false
	}
	return true
}

func studentLimitMessage(e *sessions.StudentLimitError) string {
	again := "You can start a new session in " + about(e.RetryAfter) + "."
	if e.Kind == sessions.LimitDailyMinutes {
		return fmt.Sprintf("You have used your %s of sessions for the last 24 hours. %s", plural(e.Limit, "minute"), again)
	}
	return fmt.Sprintf("You have reached the limit of %s in 24 hours. %s", plural(e.Limit, "session"), again)
}

// seconds is a wait in whole seconds, rounded up (Retry-After's unit).
func seconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }

// about says a wait the way a person would, rounded up: "40 seconds", "12 minutes", "3 h 5 min".
func about(d time.Duration) string {
	if d < time.Minute {
		return plural(int(seconds(d)), "second")
	}
	minutes := int((d + time.Minute - 1) / time.Minute)
	if minutes < 60 {
		return plural(minutes, "minute")
	}
	if minutes%60 == 0 {
		return fmt.Sprintf("%d h", minutes/60)
	}
	return fmt.Sprintf("%d h %d min", minutes/60, minutes%60)
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}
