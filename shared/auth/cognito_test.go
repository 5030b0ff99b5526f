package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"counselvideo/shared/config"
)

const (
	clientID = "client-web"
	subject  = "5f0c1d2e-aaaa-4bbb-8ccc-000000000001"
	username = "student1"
)

var (
	keyA = mustKey()
	keyB = mustKey()
)

func mustKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// issuer is a stand-in Cognito user pool: it serves <issuer>/.well-known/jwks.json and counts fetches.
type issuer struct {
	srv  *httptest.Server
	hits atomic.Int64
	down atomic.Bool // answer 503

	mu   sync.Mutex
	keys map[string]*rsa.PublicKey
}

func newIssuer(t testing.TB) *issuer {
	t.Helper()
	is := &issuer{keys: map[string]*rsa.PublicKey{"kA": &keyA.PublicKey}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /pool/.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		is.hits.Add(1)
		if is.down.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		is.mu.Lock()
		defer is.mu.Unlock()
		var set jwkset.JWKSMarshal
		for kid, pub := range is.keys {
			jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{
				ALG: jwkset.AlgRS256, KID: kid, USE: jwkset.UseSig,
			}})
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			set.Keys = append(set.Keys, jwk.Marshal())
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) url() string { return is.srv.URL + "/pool" }

func (is *issuer) addKey(kid string, pub *rsa.PublicKey) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys[kid] = pub
}

func (is *issuer) verifier(t testing.TB, tokenUse string) *Verifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // ends the JWKS refresh goroutine
	v, err := NewVerifier(ctx, config.Cognito{Issuer: is.url(), ClientIDs: []string{"other-client", clientID}, TokenUse: tokenUse}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	v.keySet.waitIdle(t)
	return v
}

// waitIdle waits until no fetch is running (the cold start's prefetch has finished).
func (k *keySet) waitIdle(t testing.TB) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		k.mu.Lock()
		idle := k.inflight == nil
		k.mu.Unlock()
		if idle {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("JWKS fetch never finished")
		}
	}
}

// clock is a settable time source for the key set.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func idClaims(iss string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"sub": subject, "iss": iss, "aud": clientID, "token_use": "id", "cognito:username": username,
		"iat": now.Unix(), "auth_time": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

func accessClaims(iss string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"sub": subject, "iss": iss, "client_id": clientID, "token_use": "access", "username": username,
		"scope": "aws.cognito.signin.user.admin", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

func sign(t testing.TB, key *rsa.PrivateKey, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func edit(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func TestAuthenticateAcceptsIDAndAccessTokens(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t, config.TokenUseAny)
	for name, claims := range map[string]jwt.MapClaims{"id": idClaims(is.url()), "access": accessClaims(is.url())} {
		st, err := v.Authenticate(context.Background(), "Bearer "+sign(t, keyA, "kA", claims))
		if err != nil {
			t.Fatalf("%s token: %v", name, err)
		}
		if st != (Student{ID: subject, Name: username}) {
			t.Errorf("%s token: %+v", name, st)
		}
	}
	// Keys are cached: verifying does not fetch the JWKS again.
	for range 20 {
		if _, err := v.Authenticate(context.Background(), "bearer  "+sign(t, keyA, "kA", idClaims(is.url()))); err != nil { // scheme is case-insensitive
			t.Fatal(err)
		}
	}
	if n := is.hits.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times for known keys, want 1", n)
	}
}

func TestAuthenticateRejects(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t, config.TokenUseAny)
	iss := is.url()
	now := time.Now()

	pubDER, err := x509.MarshalPKIXPublicKey(&keyA.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, idClaims(iss))
	hs.Header["kid"] = "kA"
	hsToken, err := hs.SignedString(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	none := jwt.NewWithClaims(jwt.SigningMethodNone, idClaims(iss))
	none.Header["kid"] = "kA"
	noneToken, err := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	valid := sign(t, keyA, "kA", idClaims(iss))
	tampered := valid[:len(valid)-4] + "AAAA"
	if tampered == valid {
		tampered = valid[:len(valid)-4] + "BBBB"
	}

	for name, header := range map[string]string{
		"empty header":            "",
		"no bearer scheme":        valid,
		"basic scheme":            "Basic " + valid,
		"bearer without token":    "Bearer ",
		"bearer blank":            "Bearer    ",
		"not a jwt":               "Bearer not.a.jwt",
		"alg none":                "Bearer " + noneToken,
		"HS256 with public key":   "Bearer " + hsToken,
		"bad signature":           "Bearer " + tampered,
		"signed by another key":   "Bearer " + sign(t, keyB, "kA", idClaims(iss)),
		"no kid, foreign key":     "Bearer " + sign(t, keyB, "", idClaims(iss)),
		"expired":                 "Bearer " + sign(t, keyA, "kA", edit(idClaims(iss), "exp", now.Add(-2*time.Minute).Unix())),
		"no exp":                  "Bearer " + sign(t, keyA, "kA", edit(idClaims(iss), "exp", nil)),
		"nbf in future":           "Bearer " + sign(t, keyA, "kA", edit(idClaims(iss), "nbf", now.Add(5*time.Minute).Unix())),
		"wrong iss":               "Bearer " + sign(t, keyA, "kA", edit(idClaims(iss), "iss", "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other")),
		"no iss":                  "Bearer " + sign(t, keyA, "kA", edit(idClaims(iss), "iss", nil)),
		"wrong aud":               "Bearer " + sign(t, keyA, "kA", edit(idClaims(iss), "aud", "someone-else")),
		"id token without aud":    "Bearer " + sign(t, keyA, "kA", edit(idClaims(iss), "aud", nil)),
		"id token with client_id": "Bearer " + sign(t, keyA, "kA", edit(idClaims(iss), "aud", nil, "client_id", clientID)),
		"wrong client_id":         "Bearer " + sign(t, keyA, "kA", edit(accessClaims(iss), "client_id", "someone-else")),
		"access token with aud":   "Bearer " + sign(t, keyA, "kA", edit(accessClaims(iss), "client_id", nil, "aud", clientID)),
		"refresh token_use":       "Bearer " + sign(t, keyA, "kA", edit(idClaims(iss), "token_use", "refresh")),
		"no token_use":            "Bearer " + sign(t, keyA, "kA", edit(idClaims(iss), "token_use", nil)),
		"no sub":                  "Bearer " + sign(t, keyA, "kA", edit(idClaims(iss), "sub", nil)),
		"no kid, pool key":        "Bearer " + sign(t, keyA, "", idClaims(iss)),
		"iat in future":           "Bearer " + sign(t, keyA, "kA", edit(idClaims(iss), "iat", now.Add(5*time.Minute).Unix())),
	} {
		st, err := v.Authenticate(context.Background(), header)
		if err == nil {
			t.Errorf("%s: accepted as %+v", name, st)
			continue
		}
		if !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: error %v does not wrap ErrUnauthenticated", name, err)
		}
		if st != (Student{}) {
			t.Errorf("%s: returned student %+v with the error", name, st)
		}
	}
	// A token just past exp but within the leeway still passes; the sanity check for the table above.
	if _, err := v.Authenticate(context.Background(), "Bearer "+sign(t, keyA, "kA", edit(idClaims(iss), "exp", now.Add(-10*time.Second).Unix()))); err != nil {
		t.Errorf("token expired 10 s ago (within leeway): %v", err)
	}
}

func TestAuthenticateTokenUseRestriction(t *testing.T) {
	is := newIssuer(t)
	id := "Bearer " + sign(t, keyA, "kA", idClaims(is.url()))
	access := "Bearer " + sign(t, keyA, "kA", accessClaims(is.url()))
	for _, tc := range []struct {
		use            string
		idOK, accessOK bool
	}{
		{config.TokenUseAny, true, true},
		{config.TokenUseID, true, false},
		{config.TokenUseAccess, false, true},
	} {
		v := is.verifier(t, tc.use)
		_, err := v.Authenticate(context.Background(), id)
		if (err == nil) != tc.idOK {
			t.Errorf("token_use=%s, id token: %v", tc.use, err)
		}
		_, err = v.Authenticate(context.Background(), access)
		if (err == nil) != tc.accessOK {
			t.Errorf("token_use=%s, access token: %v", tc.use, err)
		}
	}
}

func TestAuthenticateUsernameFallback(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t, config.TokenUseAny)
	// cognito:username wins over username; an id token may carry only cognito:username.
	st, err := v.Authenticate(context.Background(), "Bearer "+sign(t, keyA, "kA", edit(idClaims(is.url()), "username", "other")))
	if err != nil || st.Name != username {
		t.Fatalf("both usernames: %+v %v", st, err)
	}
	st, err = v.Authenticate(context.Background(), "Bearer "+sign(t, keyA, "kA", edit(accessClaims(is.url()), "username", nil)))
	if err != nil || st != (Student{ID: subject}) {
		t.Fatalf("no username: %+v %v", st, err)
	}
}

// TestUnknownKIDDoesNotHammerJWKS: a flood of tokens with unknown kids costs at most one extra fetch.
func TestUnknownKIDDoesNotHammerJWKS(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t, config.TokenUseAny)
	if n := is.hits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times at start, want 1", n)
	}
	var wg sync.WaitGroup
	var accepted atomic.Int64
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := sign(t, keyB, "unknown-"+string(rune('a'+i%26)), idClaims(is.url()))
			if _, err := v.Authenticate(context.Background(), "Bearer "+tok); err == nil {
				accepted.Add(1)
			}
		}()
	}
	wg.Wait()
	if accepted.Load() != 0 {
		t.Fatalf("%d tokens with unknown kids accepted", accepted.Load())
	}
	if n := is.hits.Load(); n > 2 {
		t.Errorf("50 unknown-kid requests caused %d JWKS fetches, want at most 2", n)
	}
	// Known keys still verify.
	if _, err := v.Authenticate(context.Background(), "Bearer "+sign(t, keyA, "kA", idClaims(is.url()))); err != nil {
		t.Errorf("known key after the flood: %v", err)
	}
}

// TestKeyRotationPickedUp: a key published after the verifier started is found on its first use.
func TestKeyRotationPickedUp(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t, config.TokenUseAny)
	tok := "Bearer " + sign(t, keyB, "kB", idClaims(is.url()))
	is.addKey("kB", &keyB.PublicKey)
	st, err := v.Authenticate(context.Background(), tok)
	if err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if st.ID != subject {
		t.Errorf("student %+v", st)
	}
	if n := is.hits.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2 (start + refresh on unknown kid)", n)
	}
	// The old key keeps working too.
	if _, err := v.Authenticate(context.Background(), "Bearer "+sign(t, keyA, "kA", idClaims(is.url()))); err != nil {
		t.Errorf("old key after rotation: %v", err)
	}
}

// TestJWKSDownAtStart: a cold start survives an unreachable JWKS; meanwhile a valid token gets
// ErrKeysUnavailable (retry), never ErrUnauthenticated (which signs the student out); once the JWKS
// answers again the next attempt after RetryAfter loads the keys and the token is accepted.
func TestJWKSDownAtStart(t *testing.T) {
	is := newIssuer(t)
	is.down.Store(true)
	v := is.verifier(t, config.TokenUseAny)
	clk := &clock{now: time.Now()}
	v.keySet.now = clk.Now
	good := "Bearer " + sign(t, keyA, "kA", idClaims(is.url()))
	_, err := v.Authenticate(context.Background(), good)
	if !errors.Is(err, ErrKeysUnavailable) || errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("JWKS down: %v, want ErrKeysUnavailable only", err)
	}
	// A token that is bad on its face is still refused as such.
	if _, err := v.Authenticate(context.Background(), "Bearer not-a-jwt"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("garbage token while the JWKS is down: %v", err)
	}
	is.down.Store(false)
	hits := is.hits.Load()
	if _, err := v.Authenticate(context.Background(), good); !errors.Is(err, ErrKeysUnavailable) || is.hits.Load() != hits {
		t.Fatalf("retried the JWKS before RetryAfter: %v (%d fetches)", err, is.hits.Load()-hits)
	}
	clk.Add(RetryAfter)
	if _, err := v.Authenticate(context.Background(), good); err != nil {
		t.Fatalf("after the JWKS came back: %v", err)
	}
}

// TestSlowJWKSStillLoads: a JWKS slower than KeyWaitMax makes the waiting request answer "retry",
// but the fetch goes on and the next request uses the keys it brought.
func TestSlowJWKSStillLoads(t *testing.T) {
	is := newIssuer(t)
	gate := make(chan struct{})
	slow := is.srv.Config.Handler
	is.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-gate // answers only when the test says so: slower than any wait
		slow.ServeHTTP(w, r)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := NewVerifier(ctx, config.Cognito{Issuer: is.url(), ClientIDs: []string{clientID}, TokenUse: config.TokenUseAny}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	good := "Bearer " + sign(t, keyA, "kA", idClaims(is.url()))
	if _, err := v.Authenticate(ctx, good); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("while the JWKS hangs: %v, want ErrKeysUnavailable", err)
	}
	close(gate)
	v.keySet.waitIdle(t)
	if _, err := v.Authenticate(ctx, good); err != nil {
		t.Fatalf("after the slow JWKS answered: %v", err)
	}
	if n := is.hits.Load(); n != 1 {
		t.Errorf("%d JWKS fetches, want the one slow fetch", n)
	}
}

// TestJWKSOverrideURL: Options.JWKSURL fetches keys elsewhere while the issuer claim stays checked.
func TestJWKSOverrideURL(t *testing.T) {
	is := newIssuer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := NewVerifier(ctx, config.Cognito{Issuer: "https://cognito-idp.example/pool", ClientIDs: []string{clientID}, TokenUse: config.TokenUseAny},
		Options{JWKSURL: is.url() + "/.well-known/jwks.json"})
	if err != nil {
		t.Fatal(err)
	}
	v.keySet.waitIdle(t)
	if _, err := v.Authenticate(ctx, "Bearer "+sign(t, keyA, "kA", idClaims("https://cognito-idp.example/pool"))); err != nil {
		t.Fatalf("token of the configured issuer: %v", err)
	}
	if _, err := v.Authenticate(ctx, "Bearer "+sign(t, keyA, "kA", idClaims(is.url()))); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("token of the JWKS host's issuer: %v", err)
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	is := newIssuer(b)
	v := is.verifier(b, config.TokenUseAny)
	header := "Bearer " + sign(b, keyA, "kA", idClaims(is.url()))
	ctx := context.Background()
	if _, err := v.Authenticate(ctx, header); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Authenticate(ctx, header); err != nil {
			b.Fatal(err)
		}
	}
	if n := is.hits.Load(); n != 1 {
		b.Fatalf("JWKS fetched %d times", n)
	}
}
