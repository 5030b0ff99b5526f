// Package logging sets up structured JSON logs and carries per-request fields (request id, session id,
// user id) in the context so every line of a request has them.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"
)

// New returns a JSON logger at the given level ("debug", "info", "warn", "error").
func New(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

type ctxKey struct{}

// With returns a context whose logger carries the extra attributes.
func With(ctx context.Context, base *slog.Logger, args ...any) context.Context {
	l := From(ctx, base)
	return context.WithValue(ctx, ctxKey{}, l.With(args...))
}

// From returns the context's logger, or base when the context has none.
func From(ctx context.Context, base *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(ctxKey{}).(*slog.Logger); ok {
		return l
	}
	return base
}
