package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

func TestNewLevels(t *testing.T) {
	for level, want := range map[string][]string{
		"debug": {"DEBUG", "INFO", "WARN", "ERROR"},
		"info":  {"INFO", "WARN", "ERROR"},
		"WARN":  {"WARN", "ERROR"},
		"error": {"ERROR"},
		"":      {"INFO", "WARN", "ERROR"},
		"loud":  {"INFO", "WARN", "ERROR"},
	} {
		var buf bytes.Buffer
		l := New(&buf, level)
		l.Debug("d")
		l.Info("i")
		l.Warn("w")
		l.Error("e")
		var got []string
		for _, m := range lines(t, &buf) {
			got = append(got, m["level"].(string))
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("level %q logged %v, want %v", level, got, want)
		}
	}
}

func TestContextCarriesFields(t *testing.T) {
	var buf bytes.Buffer
	base := New(&buf, "info")
	ctx := context.Background()
	if From(ctx, base) != base {
		t.Fatal("From without a logger is not the base")
	}
	ctx = With(ctx, base, "request_id", "r1")
	ctx = With(ctx, base, "user_id", "u1")
	From(ctx, base).Info("hello", "k", "v")
	From(context.Background(), base).Info("bare")
	got := lines(t, &buf)
	if len(got) != 2 {
		t.Fatalf("%d lines", len(got))
	}
	if got[0]["request_id"] != "r1" || got[0]["user_id"] != "u1" || got[0]["k"] != "v" || got[0]["msg"] != "hello" {
		t.Errorf("first line %v", got[0])
	}
	if _, ok := got[1]["request_id"]; ok {
		t.Errorf("fields leaked to a bare context: %v", got[1])
	}
}
