// Command seed-categories loads infra/seed/categories.json into CATEGORIES_TABLE. It uses the
// standard AWS environment (credentials, AWS_REGION, AWS_ENDPOINT_URL_DYNAMODB for local tables).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"counselvideo/infra/seed"
	"counselvideo/shared/app"
	"counselvideo/shared/categories"
)

func main() {
	file := flag.String("file", "infra/seed/categories.json", "categories file")
	flag.Parse()
	table := os.Getenv("CATEGORIES_TABLE")
	if table == "" {
		fmt.Fprintln(os.Stderr, "seed-categories: CATEGORIES_TABLE is required")
		os.Exit(2)
	}
	list, err := seed.Load(*file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "seed-categories:", err)
		os.Exit(1)
	}
	ctx := context.Background()
	awsCfg, err := app.AWSConfig(ctx)
	if err == nil {
		err = seed.Seed(ctx, categories.NewDynamoStore(dynamodb.NewFromConfig(awsCfg), table), list)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "seed-categories:", err)
		os.Exit(1)
	}
	fmt.Printf("seeded %d categories into %s\n", len(list), table)
}
