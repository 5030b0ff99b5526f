// Package webhooktest signs and posts LiveKit webhooks the way livekit-server does, for tests of the
// webhook handler (unit tests, integration tests, the Lambda under the emulator).
package webhooktest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/livekit/protocol/auth"
)

// Sign returns the Authorization value for body: an HS256 JWT from key/secret carrying the body's
// SHA-256, valid for five minutes.
func Sign(key, secret string, body []byte) (string, error) {
	sum := sha256.Sum256(body)
	return auth.NewAccessToken(key, secret).SetValidFor(5 * time.Minute).
		SetSha256(base64.StdEncoding.EncodeToString(sum[:])).ToJWT()
}

// Post sends body to h as LiveKit does (Content-Type application/webhook+json) and records the answer.
func Post(h http.Handler, body []byte, authorization string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/livekit/webhook", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/webhook+json")
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}
