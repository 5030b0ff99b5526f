package integration

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"counselvideo/shared/app"
)

// cognitoLocalKey is the fixed RSA key cognito-local signs with (shipped in its package; tests
// only). With it the test can mint tokens that are correctly signed but wrong in one claim.
func cognitoLocalKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(env.stack.Paths.NodeModules(), "cognito-local", "lib", "keys", "cognitoLocal.private.json"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct{ PEM string }
	if err := json.Unmarshal(raw, &k); err != nil {
		t.Fatal(err)
	}
	key, err := jwt.ParseRSAPrivateKeyFromPEM([]byte(k.PEM))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func idClaims(sub string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"sub": sub, "cognito:username": "forged", "token_use": "id", "aud": env.pool.ClientID,
		"iss": env.pool.Issuer, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

func sign(t *testing.T, method jwt.SigningMethod, kid string, claims jwt.MapClaims, key any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCreateRoomRejectsBadTokens: every way a token can be wrong is a 401 with the bearer challenge.
func TestCreateRoomRejectsBadTokens(t *testing.T) {
	api := startAPI(t, nil)
	st := newStudent(t)
	cat := enabledCategory(t)
	key := cognitoLocalKey(t)
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	// Sanity: a forged-but-correct token is accepted, so each case below fails for its one defect.
	if r, _ := createRoom(t, api, sign(t, jwt.SigningMethodRS256, "CognitoLocal", idClaims(st.sub+"-ok"), key), cat.ID); r.status != http.StatusOK {
		t.Fatalf("control token refused: %d %s", r.status, r.body)
	}
	with := func(k string, v any) jwt.MapClaims { c := idClaims(st.sub); c[k] = v; return c }
	without := func(k string) jwt.MapClaims { c := idClaims(st.sub); delete(c, k); return c }
	accessClaims := idClaims(st.sub)
	accessClaims["token_use"] = "access"
	accessClaims["client_id"] = "someone-else"
	delete(accessClaims, "aud")

	cases := map[string]string{
		"missing":             "",
		"garbage":             "not-a-jwt",
		"alg none":            sign(t, jwt.SigningMethodNone, "CognitoLocal", idClaims(st.sub), jwt.UnsafeAllowNoneSignatureType),
		"hs256 with pubkey":   sign(t, jwt.SigningMethodHS256, "CognitoLocal", idClaims(st.sub), pubPEM),
		"unknown kid":         sign(t, jwt.SigningMethodRS256, "other-kid", idClaims(st.sub), key),
		"bad signature":       sign(t, jwt.SigningMethodRS256, "CognitoLocal", idClaims(st.sub), otherKey),
		"expired":             sign(t, jwt.SigningMethodRS256, "CognitoLocal", with("exp", time.Now().Add(-time.Hour).Unix()), key),
		"no exp":              sign(t, jwt.SigningMethodRS256, "CognitoLocal", without("exp"), key),
		"not yet valid":       sign(t, jwt.SigningMethodRS256, "CognitoLocal", with("nbf", time.Now().Add(time.Hour).Unix()), key),
		"wrong issuer":        sign(t, jwt.SigningMethodRS256, "CognitoLocal", with("iss", "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_evil"), key),
		"wrong client":        sign(t, jwt.SigningMethodRS256, "CognitoLocal", with("aud", "someone-else"), key),
		"wrong token_use":     sign(t, jwt.SigningMethodRS256, "CognitoLocal", with("token_use", "refresh"), key),
		"access wrong client": sign(t, jwt.SigningMethodRS256, "CognitoLocal", accessClaims, key),
		"tampered payload":    tamper(st.tokens.ID),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			r, _ := createRoom(t, api, tok, cat.ID)
			if r.status != http.StatusUnauthorized {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if r.header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
				t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
			if e := r.errorBody(t); e.Code != "unauthorized" {
				t.Fatalf("code %q", e.Code)
			}
		})
	}

	// COGNITO_TOKEN_USE restricts the accepted kind.
	idOnly := startAPI(t, map[string]string{"COGNITO_TOKEN_USE": "id"})
	if r, _ := createRoom(t, idOnly, st.tokens.Access, cat.ID); r.status != http.StatusUnauthorized {
		t.Fatalf("access token accepted with COGNITO_TOKEN_USE=id: %d", r.status)
	}
	if r, _ := createRoom(t, idOnly, st.tokens.ID, cat.ID); r.status != http.StatusOK {
		t.Fatalf("id token refused with COGNITO_TOKEN_USE=id: %d %s", r.status, r.body)
	}
}

// tamper swaps the payload's sub while keeping the original signature.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	claims := jwt.MapClaims{}
	_, _, _ = jwt.NewParser().ParseUnverified(token, claims)
	claims["sub"] = "someone-else"
	raw, _ := json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

// TestCognitoKeysUnavailable: the JWKS is unreachable at cold start, then slow (2 s a fetch), then
// back. Meanwhile a valid token gets 503 with Retry-After and the error shape, never 401 (the frontend
// signs the student out on 401); the API recovers by itself, also through the slow JWKS; a token bad
// on its face is still 401; once loaded, the keys survive the JWKS going away again.
func TestCognitoKeysUnavailable(t *testing.T) {
	jwks := newFaultProxy(t, env.stack.Cognito.Endpoint)
	jwks.setRule(func(w http.ResponseWriter, _ *http.Request, _ func()) { drop(w) })
	api := startAPIWith(t, nil, app.Deps{JWKSURL: jwks.URL + "/" + env.pool.PoolID + "/.well-known/jwks.json"})
	st := newStudent(t)
	cat := enabledCategory(t)

	unavailable := func(r response) {
		t.Helper()
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503: %s", r.status, r.body)
		}
		if r.header.Get("Retry-After") == "" || r.header.Get("WWW-Authenticate") != "" {
			t.Fatalf("headers %v", r.header)
		}
		if e := r.errorBody(t); e.Code != "auth_unavailable" || strings.Contains(string(r.body), "127.0.0.1") {
			t.Fatalf("error %s", r.body)
		}
	}
	r, _ := createRoom(t, api, st.tokens.ID, cat.ID)
	unavailable(r)
	unavailable(do(t, http.MethodGet, api.URL+"/api/v1/counselor-categories", st.tokens.Access, "", nil))
	if r, _ := createRoom(t, api, "not-a-jwt", cat.ID); r.status != http.StatusUnauthorized {
		t.Fatalf("garbage token while the keys are unavailable: %d", r.status)
	}

	// Slow JWKS: requests keep answering 503 (never 401) until a fetch lands, then 200.
	jwks.setRule(slowly(2 * time.Second))
	attempts := 0
	eventually(t, "create-room succeeds through the slow JWKS", func() bool {
		attempts++
		r, _ := createRoom(t, api, st.tokens.ID, cat.ID)
		if r.status == http.StatusOK {
			return true
		}
		unavailable(r)
		time.Sleep(500 * time.Millisecond)
		return false
	})
	t.Logf("recovered after %d attempts through a 2 s JWKS", attempts)

	// Keys loaded: the JWKS going away again changes nothing for valid tokens, and bad ones stay 401.
	jwks.setRule(func(w http.ResponseWriter, _ *http.Request, _ func()) { drop(w) })
	if r := do(t, http.MethodGet, api.URL+"/api/v1/counselor-categories", st.tokens.ID, "", nil); r.status != http.StatusOK {
		t.Fatalf("with keys cached and the JWKS down: %d %s", r.status, r.body)
	}
	key := cognitoLocalKey(t)
	expired := idClaims(st.sub)
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	for name, tok := range map[string]string{
		"expired":     sign(t, jwt.SigningMethodRS256, "CognitoLocal", expired, key),
		"unknown kid": sign(t, jwt.SigningMethodRS256, "other-kid", idClaims(st.sub), key),
		"tampered":    tamper(st.tokens.ID),
	} {
		if r, _ := createRoom(t, api, tok, cat.ID); r.status != http.StatusUnauthorized {
			t.Fatalf("%s token: %d, want 401", name, r.status)
		}
	}
}
