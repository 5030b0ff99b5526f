// Package auth verifies the student's Cognito JWT. It makes the same checks as AWS's own verifier:
// RS256 signature against the pool's JWKS, issuer, expiry, token_use and app client.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"counselvideo/shared/config"
)

// Student is the authenticated caller.
type Student struct {
	ID   string // Cognito sub
	Name string // Cognito username
}

// ErrUnauthenticated covers every reason a token is refused; the reason stays in the wrapped error for logs.
var ErrUnauthenticated = errors.New("invalid or missing token")

const leeway = 30 * time.Second

// Verifier checks bearer tokens against one Cognito user pool.
type Verifier struct {
	issuer    string
	clientIDs []string
	tokenUse  string
	keySet    *keySet
	keys      keyfunc.Keyfunc
	parser    *jwt.Parser
}

// Options change how the verifier reaches the pool's keys; the zero value is production's.
type Options struct {
	// JWKSURL replaces <issuer>/.well-known/jwks.json. Tests point it at a proxy they can stop or
	// slow; the issuer claim is still checked against the configured issuer.
	JWKSURL string
}

// NewVerifier builds a verifier and starts loading the pool's JWKS in the background; the first
// requests wait for it at most KeyWaitMax (see keys.go). ctx ends background fetches.
func NewVerifier(ctx context.Context, c config.Cognito, opts Options) (*Verifier, error) {
	jwksURL := opts.JWKSURL
	if jwksURL == "" {
		jwksURL = c.Issuer + "/.well-known/jwks.json"
	}
	ks := newKeySet(ctx, jwksURL, &http.Client{Timeout: fetchTimeout})
	keys, err := keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: ks.store})
	if err != nil {
		return nil, fmt.Errorf("keyfunc: %w", err)
	}
	ks.prefetch()
	return &Verifier{
		issuer:    c.Issuer,
		clientIDs: c.ClientIDs,
		tokenUse:  c.TokenUse,
		keySet:    ks,
		keys:      keys,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{"RS256"}), // refuses alg none and HS256-with-public-key
			jwt.WithIssuer(c.Issuer),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(leeway),
		),
	}, nil
}

type cognitoClaims struct {
	jwt.RegisteredClaims
	TokenUse        string `json:"token_use"`
	ClientID        string `json:"client_id"`
	Username        string `json:"username"`
	CognitoUsername string `json:"cognito:username"`
}

// Authenticate checks an Authorization header value ("Bearer <jwt>").
func (v *Verifier) Authenticate(ctx context.Context, header string) (Student, error) {
	scheme, raw, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" { // the scheme is case-insensitive (RFC 9110)
		return Student{}, fmt.Errorf("%w: missing bearer token", ErrUnauthenticated)
	}
	var claims cognitoClaims
	if _, err := v.parser.ParseWithClaims(strings.TrimSpace(raw), &claims, v.keyFor(ctx)); err != nil {
		if errors.Is(err, ErrKeysUnavailable) {
			return Student{}, err // not the token's fault: the caller answers "retry", never "signed out"
		}
		return Student{}, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	if err := v.checkUseAndClient(claims); err != nil {
		return Student{}, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	if claims.Subject == "" {
		return Student{}, fmt.Errorf("%w: no sub", ErrUnauthenticated)
	}
	name := claims.CognitoUsername
	if name == "" {
		name = claims.Username
	}
	return Student{ID: claims.Subject, Name: name}, nil
}

// keyFor insists on a kid: Cognito always names its signing key, and a kid-less token must not fall
// back to whichever key the set happens to hold.
func (v *Verifier) keyFor(ctx context.Context) jwt.Keyfunc {
	keys := v.keys.KeyfuncCtx(ctx)
	return func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("token has no kid")
		}
		if err := v.keySet.ensure(ctx, kid); err != nil {
			return nil, err
		}
		return keys(t)
	}
}

func (v *Verifier) checkUseAndClient(c cognitoClaims) error {
	if v.tokenUse != config.TokenUseAny && c.TokenUse != v.tokenUse {
		return fmt.Errorf("token_use %q not accepted", c.TokenUse)
	}
	switch c.TokenUse {
	case config.TokenUseID:
		for _, aud := range c.Audience {
			if slices.Contains(v.clientIDs, aud) {
				return nil
			}
		}
		return errors.New("aud is not a configured client")
	case config.TokenUseAccess:
		if slices.Contains(v.clientIDs, c.ClientID) {
			return nil
		}
		return errors.New("client_id is not a configured client")
	default:
		return fmt.Errorf("unknown token_use %q", c.TokenUse)
	}
}
