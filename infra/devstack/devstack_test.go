package devstack

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

// A Start that fails after the agent launcher exists (here: an invalid cost-guard variable, read when
// the API is configured) returns its error after stopping what it started; it used to panic in its own
// cleanup instead, hiding the error.
func TestStartFailingLateReturnsItsError(t *testing.T) {
	t.Setenv("STUDENT_DAILY_SESSION_LIMIT", "not-a-number")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Start(ctx, Options{
		APIAddr: "127.0.0.1:0", PlaygroundAddr: "127.0.0.1:0", LogDir: t.TempDir(), EnvFile: os.DevNull,
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err == nil {
		r.Stop()
		t.Fatal("Start succeeded with STUDENT_DAILY_SESSION_LIMIT=not-a-number")
	}
	if r != nil {
		t.Errorf("Start returned a Running with its error %v", err)
	}
	if !strings.Contains(err.Error(), "STUDENT_DAILY_SESSION_LIMIT") {
		t.Errorf("error does not name the variable: %v", err)
	}
}
