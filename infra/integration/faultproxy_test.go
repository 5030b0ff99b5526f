package integration

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"
)

// faultProxy is a reverse proxy in front of a real component (livekit-server, DynamoDB Local,
// cognito-local) that a test can make hold, slow down, drop or answer requests, to put a real
// dependency at the worst moment of an event order.
type faultProxy struct {
	*httptest.Server
	forward http.Handler

	mu   sync.Mutex
	rule func(w http.ResponseWriter, r *http.Request, forward func()) // nil: pass everything through
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{forward: httputil.NewSingleHostReverseProxy(u)}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		rule := p.rule
		p.mu.Unlock()
		if rule == nil {
			p.forward.ServeHTTP(w, r)
			return
		}
		rule(w, r, func() { p.forward.ServeHTTP(w, r) })
	}))
	t.Cleanup(p.Close)
	return p
}

// setRule installs how requests are treated from now on; nil passes them through.
func (p *faultProxy) setRule(rule func(w http.ResponseWriter, r *http.Request, forward func())) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rule = rule
}

// holdFirst holds the first request that match accepts until release is called (other requests
// pass); arrived is closed once it is held.
func (p *faultProxy) holdFirst(match func(*http.Request) bool) (arrived <-chan struct{}, release func()) {
	got, gate := make(chan struct{}), make(chan struct{})
	var once, releaseOnce sync.Once
	p.setRule(func(w http.ResponseWriter, r *http.Request, forward func()) {
		held := false
		if match(r) {
			once.Do(func() { held = true })
		}
		if held {
			close(got)
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		forward()
	})
	return got, func() { releaseOnce.Do(func() { close(gate) }) }
}

// drop closes the connection without an answer: the component is unreachable.
func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	w.WriteHeader(http.StatusBadGateway)
}

// slowly forwards after d (or gives up when the caller does).
func slowly(d time.Duration) func(w http.ResponseWriter, r *http.Request, forward func()) {
	return func(w http.ResponseWriter, r *http.Request, forward func()) {
		select {
		case <-time.After(d):
			forward()
		case <-r.Context().Done():
		}
	}
}

// waitClosed waits for ch; the deadline only guards against a hang.
func waitClosed(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(45 * time.Second):
		t.Fatalf("never happened: %s", what)
	}
}
