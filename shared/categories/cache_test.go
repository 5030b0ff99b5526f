package categories

import (
	"context"
	"errors"
	"testing"
	"time"
)

// countingStore is a Store over a slice that counts its reads.
type countingStore struct {
	list        []Category
	lists, gets int
	err         error
}

func (s *countingStore) ListEnabled(context.Context) ([]Category, error) {
	s.lists++
	var out []Category
	for _, c := range s.list {
		if c.Enabled {
			out = append(out, c)
		}
	}
	return out, s.err
}

func (s *countingStore) GetEnabled(_ context.Context, id string) (Category, error) {
	s.gets++
	for _, c := range s.list {
		if c.ID == id && c.Enabled {
			return c, nil
		}
	}
	return Category{}, ErrNotFound
}

func TestCachedReadsOncePerTTL(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	a, b := valid(), valid()
	b.ID, b.Name = "0b6a7c1e-3f4d-4a5b-9c8d-7e6f5a4b3c2d", "Academic"
	store := &countingStore{list: []Category{a, b}}
	c := &Cached{Store: store, Now: func() time.Time { return now }}

	for range 5 {
		if got, err := c.GetEnabled(ctx, a.ID); err != nil || got.Name != a.Name {
			t.Fatalf("GetEnabled: %+v %v", got, err)
		}
		if list, err := c.ListEnabled(ctx); err != nil || len(list) != 2 {
			t.Fatalf("ListEnabled: %v %v", list, err)
		}
	}
	if store.lists != 1 || store.gets != 0 {
		t.Fatalf("store read %d lists and %d items for 10 warm calls, want 1 list", store.lists, store.gets)
	}

	// Disabled in the table: still accepted within the TTL, refused once it passed.
	store.list[0].Enabled = false
	now = now.Add(CacheTTL - time.Second)
	if _, err := c.GetEnabled(ctx, a.ID); err != nil {
		t.Fatalf("within the TTL: %v", err)
	}
	now = now.Add(time.Second)
	if _, err := c.GetEnabled(ctx, a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after the TTL a disabled category is still accepted: %v", err)
	}
	if store.lists != 2 {
		t.Errorf("%d list reads, want 2", store.lists)
	}

	// Enabled since the list was read: accepted at once through the table.
	store.list[0].Enabled = true
	if _, err := c.GetEnabled(ctx, a.ID); err != nil {
		t.Fatalf("re-enabled category: %v", err)
	}
	if _, err := c.GetEnabled(ctx, "00000000-0000-4000-8000-000000000000"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown category: %v", err)
	}

	// A caller cannot change the cached list.
	list, _ := c.ListEnabled(ctx)
	list[0].Name = "changed"
	if again, _ := c.ListEnabled(ctx); again[0].Name == "changed" {
		t.Error("ListEnabled returned the cache itself")
	}
}

func TestCachedErrorsAreNotCached(t *testing.T) {
	store := &countingStore{list: []Category{valid()}, err: errors.New("boom")}
	c := NewCached(store)
	if _, err := c.ListEnabled(context.Background()); err == nil {
		t.Fatal("store error hidden")
	}
	store.err = nil
	if list, err := c.ListEnabled(context.Background()); err != nil || len(list) != 1 {
		t.Fatalf("after the store recovered: %v %v", list, err)
	}
}
