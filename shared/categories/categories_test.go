package categories

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func valid() Category {
	return Category{
		ID: "5b9e0c74-d1a3-4e6f-8a52-c3f7e19b0d48", Name: "Mental Well-being", Description: "A supportive listener.",
		SystemPrompt: strings.Repeat("You are a supportive listener. ", 10), Enabled: true, SortOrder: 30,
	}
}

func TestValidateAcceptsValid(t *testing.T) {
	if err := valid().Validate(); err != nil {
		t.Fatal(err)
	}
	c := valid()
	c.SystemPrompt = strings.Repeat("x", 200)
	if err := c.Validate(); err != nil {
		t.Errorf("200-character prompt: %v", err)
	}
}

func TestValidateNamesEachProblem(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Category)
		want   string
	}{
		{"non-UUID id", func(c *Category) { c.ID = "academic" }, `id "academic" is not a UUID`},
		{"empty id", func(c *Category) { c.ID = "" }, "is not a UUID"},
		{"empty name", func(c *Category) { c.Name = "" }, "name is empty"},
		{"empty description", func(c *Category) { c.Description = "" }, "description is empty"},
		{"short prompt", func(c *Category) { c.SystemPrompt = strings.Repeat("x", 199) }, "system_prompt is too short"},
	} {
		c := valid()
		tc.change(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
	// Every problem at once, under the category's name.
	err := Category{ID: "nope", Name: "Broken"}.Validate()
	if err == nil {
		t.Fatal("empty category accepted")
	}
	for _, want := range []string{`category "Broken"`, "not a UUID", "description is empty", "system_prompt is too short"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q missing from %v", want, err)
		}
	}
}

// fakeDynamo serves GetItem and a two-page Scan from a fixed item set.
type fakeDynamo struct {
	items []map[string]types.AttributeValue
	puts  []map[string]types.AttributeValue
	err   error
	scans []*dynamodb.ScanInput
}

func (f *fakeDynamo) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	id := in.Key["category_id"].(*types.AttributeValueMemberS).Value
	for _, it := range f.items {
		if it["category_id"].(*types.AttributeValueMemberS).Value == id {
			return &dynamodb.GetItemOutput{Item: it}, nil
		}
	}
	return &dynamodb.GetItemOutput{}, nil
}

func (f *fakeDynamo) Scan(_ context.Context, in *dynamodb.ScanInput, _ ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	f.scans = append(f.scans, in)
	if f.err != nil {
		return nil, f.err
	}
	var enabled []map[string]types.AttributeValue
	for _, it := range f.items {
		if it["enabled"].(*types.AttributeValueMemberBOOL).Value {
			enabled = append(enabled, it)
		}
	}
	half := len(enabled) / 2
	if in.ExclusiveStartKey == nil {
		return &dynamodb.ScanOutput{Items: enabled[:half], LastEvaluatedKey: map[string]types.AttributeValue{"category_id": &types.AttributeValueMemberS{Value: "page"}}}, nil
	}
	return &dynamodb.ScanOutput{Items: enabled[half:]}, nil
}

func (f *fakeDynamo) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	f.puts = append(f.puts, in.Item)
	return &dynamodb.PutItemOutput{}, f.err
}

func item(t *testing.T, c Category) map[string]types.AttributeValue {
	t.Helper()
	m, err := attributevalue.MarshalMap(c)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDynamoStore(t *testing.T) {
	f := &fakeDynamo{}
	for _, c := range []Category{
		{ID: "id-z", Name: "Zeta", SortOrder: 10, Enabled: true},
		{ID: "id-off", Name: "Off", SortOrder: 1, Enabled: false},
		{ID: "id-b", Name: "Beta", SortOrder: 20, Enabled: true},
		{ID: "id-a", Name: "Alpha", SortOrder: 10, Enabled: true},
		{ID: "id-c", Name: "Gamma", SortOrder: 5, Enabled: true},
	} {
		f.items = append(f.items, item(t, c))
	}
	s := NewDynamoStore(f, "cats")
	ctx := context.Background()
	c, err := s.GetEnabled(ctx, "id-b")
	if err != nil || c.Name != "Beta" || c.SortOrder != 20 {
		t.Errorf("GetEnabled: %+v %v", c, err)
	}
	for _, id := range []string{"id-off", "id-missing"} {
		if _, err := s.GetEnabled(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetEnabled(%s): %v", id, err)
		}
	}
	list, err := s.ListEnabled(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range list {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "Gamma,Alpha,Zeta,Beta" {
		t.Errorf("order %v, want sort_order then name: Gamma,Alpha,Zeta,Beta", names)
	}
	if len(f.scans) != 2 || *f.scans[0].TableName != "cats" || f.scans[0].FilterExpression == nil {
		t.Errorf("scans %d (want 2 pages) input %+v", len(f.scans), f.scans[0])
	}
	if err := s.Put(ctx, valid()); err != nil || len(f.puts) != 1 || f.puts[0]["system_prompt"] == nil {
		t.Errorf("Put: %v %v", err, f.puts)
	}
	f.err = errors.New("throttled")
	if _, err := s.GetEnabled(ctx, "id-b"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("GetEnabled on a store error: %v", err)
	}
	if _, err := s.ListEnabled(ctx); err == nil {
		t.Error("ListEnabled on a store error")
	}
}
