// Package categories holds the counselor categories a student can pick (academic, career, ...), each
// with the system prompt its agent is given.
package categories

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"counselvideo/shared/dynamotables"
)

type Category struct {
	ID           string `dynamodbav:"category_id" json:"id"`
	Name         string `dynamodbav:"name" json:"name"`
	Description  string `dynamodbav:"description" json:"description"`
	SystemPrompt string `dynamodbav:"system_prompt" json:"system_prompt"`
	Enabled      bool   `dynamodbav:"enabled" json:"enabled"`
	SortOrder    int    `dynamodbav:"sort_order" json:"sort_order"`
}

// ErrNotFound covers unknown and disabled categories alike: students cannot tell them apart.
var ErrNotFound = errors.New("category not found")

// Validate checks a category before it is seeded.
func (c Category) Validate() error {
	var problems []error
	if _, err := uuid.Parse(c.ID); err != nil {
		problems = append(problems, fmt.Errorf("id %q is not a UUID", c.ID))
	}
	if c.Name == "" {
		problems = append(problems, errors.New("name is empty"))
	}
	if c.Description == "" {
		problems = append(problems, errors.New("description is empty"))
	}
	if len(c.SystemPrompt) < 200 {
		problems = append(problems, errors.New("system_prompt is too short to guide a counselor"))
	}
	if err := errors.Join(problems...); err != nil {
		return fmt.Errorf("category %q: %w", c.Name, err)
	}
	return nil
}

type Store interface {
	// GetEnabled returns an enabled category or ErrNotFound.
	GetEnabled(ctx context.Context, id string) (Category, error)
	// ListEnabled returns enabled categories ordered by sort_order, then name.
	ListEnabled(ctx context.Context) ([]Category, error)
}

type DynamoAPI interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

type DynamoStore struct {
	db    DynamoAPI
	table string
}

func NewDynamoStore(db DynamoAPI, table string) *DynamoStore {
	return &DynamoStore{db: db, table: table}
}

func (d *DynamoStore) GetEnabled(ctx context.Context, id string) (Category, error) {
	out, err := d.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &d.table,
		Key:       map[string]types.AttributeValue{dynamotables.CategoriesHashKey: &types.AttributeValueMemberS{Value: id}},
	})
	if err != nil {
		return Category{}, fmt.Errorf("get category: %w", err)
	}
	if out.Item == nil {
		return Category{}, ErrNotFound
	}
	var c Category
	if err := attributevalue.UnmarshalMap(out.Item, &c); err != nil {
		return Category{}, fmt.Errorf("decode category: %w", err)
	}
	if !c.Enabled {
		return Category{}, ErrNotFound
	}
	return c, nil
}

// ListEnabled scans: the table holds a handful of rows, read far less often than sessions are created.
func (d *DynamoStore) ListEnabled(ctx context.Context) ([]Category, error) {
	var list []Category
	p := dynamodb.NewScanPaginator(d.db, &dynamodb.ScanInput{
		TableName:                 &d.table,
		FilterExpression:          aws.String("enabled = :t"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberBOOL{Value: true}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("scan categories: %w", err)
		}
		var batch []Category
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &batch); err != nil {
			return nil, fmt.Errorf("decode categories: %w", err)
		}
		list = append(list, batch...)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].SortOrder != list[j].SortOrder {
			return list[i].SortOrder < list[j].SortOrder
		}
		return list[i].Name < list[j].Name
	})
	return list, nil
}

// Put writes a category (used by the seeding command).
func (d *DynamoStore) Put(ctx context.Context, c Category) error {
	item, err := attributevalue.MarshalMap(c)
	if err != nil {
		return fmt.Errorf("marshal category: %w", err)
	}
	if _, err := d.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &d.table, Item: item}); err != nil {
		return fmt.Errorf("put category: %w", err)
	}
	return nil
}
