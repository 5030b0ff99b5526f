package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
)

// ErrKeysUnavailable means the pool's signing keys could not be loaded (JWKS unreachable or too slow),
// so a token could not be checked: the caller should retry, the token may well be valid.
var ErrKeysUnavailable = errors.New("cognito signing keys unavailable")

// JWKS fetching. A request never waits longer than KeyWaitMax for keys; the fetch itself goes on in
// the background (up to fetchTimeout) and the next request uses what it brought, so a slow JWKS
// still loads. Failed fetches are retried at most every RetryAfter; an unknown kid with keys loaded
// refreshes at most every unknownKIDInterval (a flood of forged kids cannot hammer the JWKS).
const (
	KeyWaitMax         = 2 * time.Second
	RetryAfter         = 5 * time.Second
	fetchTimeout       = 10 * time.Second
	unknownKIDInterval = 30 * time.Second
	refreshInterval    = time.Hour
)

// keySet is the cached JWKS of one user pool.
type keySet struct {
	ctx    context.Context // ends background fetches
	url    string
	client *http.Client
	store  jwkset.Storage // what the last successful fetch loaded; keyfunc reads it
	now    func() time.Time

	mu           sync.Mutex
	loaded       bool      // a fetch succeeded at least once
	loadedAt     time.Time // of the last successful fetch
	attemptedAt  time.Time // of the last fetch started
	kidRefreshAt time.Time // of the last fetch started for an unknown kid
	inflight     chan struct{}
}

func newKeySet(ctx context.Context, url string, client *http.Client) *keySet {
	return &keySet{ctx: ctx, url: url, client: client, store: jwkset.NewMemoryStorage(), now: time.Now}
}

// fetch loads the JWKS into the store; jwkset does the request, the parsing and the replacement.
func (k *keySet) fetch(ctx context.Context) error {
	_, err := jwkset.NewStorageFromHTTP(k.url, jwkset.HTTPClientStorageOptions{
		Client: k.client, Ctx: ctx, HTTPTimeout: fetchTimeout, Storage: k.store,
	})
	return err
}

// startFetch starts a background fetch unless one is running, and returns its completion channel.
// The caller holds k.mu.
func (k *keySet) startFetch() chan struct{} {
	if k.inflight != nil {
		return k.inflight
	}
	done := make(chan struct{})
	k.inflight, k.attemptedAt = done, k.now()
	go func() {
		err := k.fetch(k.ctx)
		k.mu.Lock()
		if err == nil {
			k.loaded, k.loadedAt = true, k.now()
		}
		k.inflight = nil
		k.mu.Unlock()
		close(done)
	}()
	return done
}

// prefetch starts loading the keys (cold start) without waiting.
func (k *keySet) prefetch() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.startFetch()
}

// ensure makes the key with kid available in the store if it can: nil means the store can be asked
// (a kid still missing then is a bad token); ErrKeysUnavailable means no keys could be loaded in
// time to decide.
func (k *keySet) ensure(ctx context.Context, kid string) error {
	if _, err := k.store.KeyRead(ctx, kid); err == nil {
		k.refreshIfOld()
		return nil
	}
	k.mu.Lock()
	now := k.now()
	var done chan struct{}
	switch {
	case k.inflight != nil:
		done = k.inflight
	case !k.loaded && now.Sub(k.attemptedAt) >= RetryAfter:
		done = k.startFetch()
	case k.loaded && now.Sub(k.kidRefreshAt) >= unknownKIDInterval:
		k.kidRefreshAt = now // maybe a rotated key
		done = k.startFetch()
	}
	k.mu.Unlock()
	if done != nil {
		wait := time.NewTimer(KeyWaitMax)
		defer wait.Stop()
		select {
		case <-done:
		case <-wait.C:
		case <-ctx.Done():
		}
	}
	k.mu.Lock()
	loaded := k.loaded
	k.mu.Unlock()
	if !loaded {
		return fmt.Errorf("%w: the JWKS at %s did not load", ErrKeysUnavailable, k.url)
	}
	return nil
}

// refreshIfOld starts a background refresh of keys older than refreshInterval.
func (k *keySet) refreshIfOld() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.inflight == nil && k.now().Sub(k.loadedAt) >= refreshInterval && k.now().Sub(k.attemptedAt) >= RetryAfter {
		k.startFetch()
	}
}
