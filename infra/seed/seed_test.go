package seed

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"counselvideo/shared/categories"
)

func TestShippedCategories(t *testing.T) {
	list, err := Load("categories.json")
	if err != nil {
		t.Fatal(err)
	}
	enabled, disabled := 0, 0
	ids, orders := map[string]bool{}, map[int]string{}
	for _, c := range list {
		if c.Enabled {
			enabled++
		} else {
			disabled++
		}
		if !strings.Contains(c.SystemPrompt, "988") {
			t.Errorf("%s: prompt does not give the 988 crisis line", c.Name)
		}
		if !strings.Contains(c.SystemPrompt, "911") {
			t.Errorf("%s: prompt does not mention 911", c.Name)
		}
		if c.ID != strings.ToLower(c.ID) {
			t.Errorf("%s: id %s is not lower case (the API lower-cases what students send)", c.Name, c.ID)
		}
		if ids[c.ID] {
			t.Errorf("duplicate id %s", c.ID)
		}
		ids[c.ID] = true
		if other, ok := orders[c.SortOrder]; ok && c.Enabled {
			t.Errorf("%s and %s share sort_order %d", c.Name, other, c.SortOrder)
		}
		if c.Enabled {
			orders[c.SortOrder] = c.Name
		}
		if strings.Contains(c.Description, "\n") {
			t.Errorf("%s: description is not one line", c.Name)
		}
	}
	if enabled < 5 {
		t.Errorf("%d enabled categories, want at least 5", enabled)
	}
	if disabled < 1 {
		t.Errorf("no disabled category (the tests need one)")
	}
}

func writeFile(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "categories.json")
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func good(id, name string) categories.Category {
	return categories.Category{ID: id, Name: name, Description: "d", SystemPrompt: strings.Repeat("Call or text 988. ", 15), Enabled: true}
}

func TestLoadRejectsBadFiles(t *testing.T) {
	a := good("5b9e0c74-d1a3-4e6f-8a52-c3f7e19b0d48", "A")
	b := good("c2f83a15-6e7d-4b90-a1c4-0d5e8f7b2a63", "B")
	dup := good(a.ID, "A again")
	bad := good("not-a-uuid", "Bad id")
	short := good("8e14b6d9-3a2f-4c58-9d07-e6b1a4c5f2d9", "Short")
	short.SystemPrompt = "Be nice."

	if list, err := Load(writeFile(t, []categories.Category{a, b})); err != nil || len(list) != 2 {
		t.Fatalf("good file: %v %v", list, err)
	}
	for name, tc := range map[string]struct {
		list  []categories.Category
		wants []string
	}{
		"duplicate id": {[]categories.Category{a, b, dup}, []string{"duplicate id " + a.ID}},
		"non-UUID":     {[]categories.Category{a, bad}, []string{`"Bad id"`, `"not-a-uuid" is not a UUID`}},
		"short prompt": {[]categories.Category{short, a}, []string{`"Short"`, "system_prompt is too short"}},
		"all at once":  {[]categories.Category{a, bad, short, dup}, []string{"duplicate id", "not a UUID", "too short"}},
	} {
		_, err := Load(writeFile(t, tc.list))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		for _, w := range tc.wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", name, err, w)
			}
		}
	}
	for name, content := range map[string]string{"empty list": "[]", "not JSON": "{categories", "object": `{"id":"x"}`} {
		p := filepath.Join(t.TempDir(), "c.json")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("missing file accepted")
	}
}

type fakePutter struct {
	put  []string
	fail string
}

func (f *fakePutter) Put(_ context.Context, c categories.Category) error {
	if c.Name == f.fail {
		return errors.New("throttled")
	}
	f.put = append(f.put, c.ID)
	return nil
}

func TestSeed(t *testing.T) {
	list, err := Load("categories.json")
	if err != nil {
		t.Fatal(err)
	}
	p := &fakePutter{}
	if err := Seed(context.Background(), p, list); err != nil {
		t.Fatal(err)
	}
	if len(p.put) != len(list) {
		t.Errorf("put %d of %d", len(p.put), len(list))
	}
	p = &fakePutter{fail: list[1].Name}
	err = Seed(context.Background(), p, list)
	if err == nil || !strings.Contains(err.Error(), list[1].Name) {
		t.Errorf("failing put: %v", err)
	}
}
