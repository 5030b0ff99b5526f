// Package seed loads the counselor categories shipped in infra/seed/categories.json into the
// categories table.
package seed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"counselvideo/shared/categories"
)

// Load reads and validates a categories file.
func Load(path string) ([]categories.Category, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read categories: %w", err)
	}
	var list []categories.Category
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%s holds no categories", path)
	}
	seen := map[string]bool{}
	var problems []error
	for _, c := range list {
		if err := c.Validate(); err != nil {
			problems = append(problems, err)
		}
		if seen[c.ID] {
			problems = append(problems, fmt.Errorf("duplicate id %s", c.ID))
		}
		seen[c.ID] = true
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	return list, nil
}

// Putter writes one category.
type Putter interface {
	Put(ctx context.Context, c categories.Category) error
}

// Seed writes every category (an upsert: re-running it updates prompts in place).
func Seed(ctx context.Context, store Putter, list []categories.Category) error {
	for _, c := range list {
		if err := store.Put(ctx, c); err != nil {
			return fmt.Errorf("seed %q: %w", c.Name, err)
		}
	}
	return nil
}
