package app

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"counselvideo/shared/config"
)

// secretsManagerDouble answers GetSecretValue over the wire (JSON 1.1), as Secrets Manager does.
func secretsManagerDouble(t *testing.T, secrets map[string]string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" {
			http.Error(w, "unexpected target", http.StatusBadRequest)
			return
		}
		calls.Add(1)
		var in struct{ SecretId string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		v, ok := secrets[in.SecretId]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"ARN": in.SecretId, "SecretString": v})
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// awsConfigFor is the SDK configuration with Secrets Manager at the double.
func awsConfigFor(t *testing.T, srv *httptest.Server) aws.Config {
	t.Helper()
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", srv.URL)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	cfg, err := AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestResolveLiveKitSecret(t *testing.T) {
	const jsonARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:livekit-AbCdEf"
	const plainARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:plain-AbCdEf"
	srv, calls := secretsManagerDouble(t, map[string]string{
		jsonARN:  `{"api_key":"APIkey","api_secret":"s3cr3t-from-json"}`,
		plainARN: "s3cr3t-plain",
	})
	ctx := context.Background()
	awsCfg := awsConfigFor(t, srv)

	for arn, want := range map[string]string{jsonARN: "s3cr3t-from-json", plainARN: "s3cr3t-plain"} {
		cfg := config.Config{LiveKit: config.LiveKit{APISecretARN: arn}}
		if err := ResolveLiveKitSecret(ctx, &cfg, awsCfg); err != nil || cfg.LiveKit.APISecret != want {
			t.Fatalf("%s: got %q, %v", arn, cfg.LiveKit.APISecret, err)
		}
	}
	if calls.Load() != 2 {
		t.Fatalf("%d GetSecretValue calls", calls.Load())
	}

	// A secret set directly wins and no call is made.
	cfg := config.Config{LiveKit: config.LiveKit{APISecret: "direct", APISecretARN: jsonARN}}
	if err := ResolveLiveKitSecret(ctx, &cfg, awsCfg); err != nil || cfg.LiveKit.APISecret != "direct" || calls.Load() != 2 {
		t.Fatalf("direct secret: %q %v (calls %d)", cfg.LiveKit.APISecret, err, calls.Load())
	}

	// A missing secret is an error that names the variable, not the value.
	cfg = config.Config{LiveKit: config.LiveKit{APISecretARN: "arn:aws:secretsmanager:us-east-1:111122223333:secret:nope-XyZ123"}}
	err := ResolveLiveKitSecret(ctx, &cfg, awsCfg)
	if err == nil || !strings.Contains(err.Error(), "LIVEKIT_API_SECRET_ARN") {
		t.Fatalf("missing secret: %v", err)
	}
}

// TestSecretJSONMustHoldAStringField: JSON whose api_secret is not a string (or that is not an object,
// or lacks the field) is refused with a message naming the variable and the field, never the value;
// before, the raw JSON text silently became the HMAC key.
func TestSecretJSONMustHoldAStringField(t *testing.T) {
	bad := map[string]string{
		"number":    `{"api_secret": 987654321}`,
		"object":    `{"api_secret": {"value": "n3sted-s3cret"}}`,
		"array":     `{"api_secret": ["arr4y-s3cret"]}`,
		"null":      `{"api_secret": null}`,
		"missing":   `{"apiSecret": "wr0ng-key-s3cret"}`,
		"malformed": `{"api_secret": "unterm1nated-s3cret`,
	}
	secrets := map[string]string{}
	for name, v := range bad {
		secrets["arn:aws:secretsmanager:us-east-1:111122223333:secret:"+name] = v
	}
	srv, _ := secretsManagerDouble(t, secrets)
	ctx := context.Background()
	awsCfg := awsConfigFor(t, srv)
	for name := range bad {
		t.Run(name, func(t *testing.T) {
			cfg := config.Config{LiveKit: config.LiveKit{APISecretARN: "arn:aws:secretsmanager:us-east-1:111122223333:secret:" + name}}
			err := ResolveLiveKitSecret(ctx, &cfg, awsCfg)
			if err == nil {
				t.Fatalf("accepted; the HMAC key became %q", cfg.LiveKit.APISecret)
			}
			if cfg.LiveKit.APISecret != "" {
				t.Errorf("secret set despite the error")
			}
			msg := err.Error()
			if !strings.Contains(msg, "LIVEKIT_API_SECRET_ARN") || (name != "malformed" && !strings.Contains(msg, "api_secret")) {
				t.Errorf("message does not name the variable and field: %s", msg)
			}
			for _, leak := range []string{"987654321", "n3sted", "arr4y", "wr0ng", "unterm1nated"} {
				if strings.Contains(msg, leak) {
					t.Errorf("message quotes the secret: %s", msg)
				}
			}
		})
	}
}
