package categories

import (
	"context"
	"sync"
	"time"
)

// CacheTTL is how long an API instance reuses the list of enabled categories. A category disabled
// or edited in the table keeps being accepted (and listed) for up to this long; a new or re-enabled
// one is accepted at once (an id missing from the list is looked up in the table).
const CacheTTL = time.Minute

// Cached is a Store that reads the enabled list at most once per TTL, so a warm create-room costs no
// category round trip.
type Cached struct {
	Store Store
	TTL   time.Duration // CacheTTL when zero
	Now   func() time.Time

	mu      sync.Mutex
	list    []Category
	fetched time.Time
}

// NewCached caches store's enabled list for CacheTTL.
func NewCached(store Store) *Cached { return &Cached{Store: store} }

func (c *Cached) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// enabled returns the cached list, reading it again when older than the TTL.
func (c *Cached) enabled(ctx context.Context) ([]Category, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ttl := c.TTL
	if ttl <= 0 {
		ttl = CacheTTL
	}
	if c.list != nil && c.now().Sub(c.fetched) < ttl {
		return c.list, nil
	}
	list, err := c.Store.ListEnabled(ctx)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []Category{}
	}
	c.list, c.fetched = list, c.now()
	return list, nil
}

func (c *Cached) GetEnabled(ctx context.Context, id string) (Category, error) {
	list, err := c.enabled(ctx)
	if err != nil {
		return Category{}, err
	}
	for _, cat := range list {
		if cat.ID == id {
			return cat, nil
		}
	}
	return c.Store.GetEnabled(ctx, id)
}

func (c *Cached) ListEnabled(ctx context.Context) ([]Category, error) {
	list, err := c.enabled(ctx)
	return append([]Category(nil), list...), err
}
