// Package dynamotables defines the DynamoDB tables the code expects. The local stack creates them
// from these definitions and the template check compares template.yaml against them, so the key
// schema cannot drift between local and deployed.
package dynamotables

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Attribute and index names used by the stores.
const (
	CategoriesHashKey = "category_id"

	SessionsHashKey     = "pk"
	SessionsTTLAttr     = "expires_at"
	UserSessionsIndex   = "user_sessions"
	UserSessionsHashKey = "user_id"
	UserSessionsSortKey = "created_at"

	// OpenSessionsIndex is sparse: only sessions that are not yet terminal carry SweepBucketAttr,
	// so the sweeper reads open sessions without a scan.
	OpenSessionsIndex = "open_sessions"
	SweepBucketAttr   = "sweep_bucket"
	SweepBucketOpen   = "open"

	// SafetyFlagAttr and SafetyFlagCountAttr are the only attributes the agent writes, on session items
	// (prefix SessionItemPrefix) only: its task role is limited to them (template check).
	SessionItemPrefix   = "session#"
	SafetyFlagAttr      = "safety_flag"
	SafetyFlagCountAttr = "safety_flag_count"
)

// Categories is the counselor categories table.
func Categories(name string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(CategoriesHashKey), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(CategoriesHashKey), KeyType: types.KeyTypeHash},
		},
	}
}

// Sessions is the single table holding session records, active-session locks and webhook dedupe
// records (see docs/architecture.md).
func Sessions(name string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(SessionsHashKey), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(UserSessionsHashKey), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(UserSessionsSortKey), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(SweepBucketAttr), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(SessionsHashKey), KeyType: types.KeyTypeHash},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(UserSessionsIndex),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(UserSessionsHashKey), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(UserSessionsSortKey), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}, {
			IndexName: aws.String(OpenSessionsIndex),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(SweepBucketAttr), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(UserSessionsSortKey), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	}
}
