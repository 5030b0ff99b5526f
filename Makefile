# One place for how things are built, run and tested. `make dev` and `make test` are the README's two commands.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO_LAMBDA_ENV   := CGO_ENABLED=0 GOOS=linux GOARCH=arm64
GO_LAMBDA_FLAGS := -tags lambda.norpc -trimpath -ldflags "-s -w"

.PHONY: help dev test tools agent-deps playground-deps bench capacity build clean \
        build-ApiFunction build-WebhookFunction build-SweeperFunction

help:
	@echo "make dev    run the whole system locally (LiveKit, DynamoDB Local, cognito-local, API, webhook, sweeper, agent)"
	@echo "make test   run every test (unit, integration on real local components, template checks, agent)"
	@echo "make bench  run the benchmarks and write bench/results/"
	@echo "make capacity  simulate the warm pool's scaling policy and write docs/capacity-model.md"

tools:
	./infra/scripts/install-tools.sh

agent-deps:
	cd agentimage && npm ci --no-audit --no-fund --loglevel=error && npm run build

playground-deps:
	cd playground && npm ci --no-audit --no-fund --loglevel=error

dev: tools agent-deps playground-deps
	go run ./infra/cmd/dev

test: tools agent-deps playground-deps
	./infra/scripts/test.sh

bench: tools agent-deps playground-deps
	./infra/scripts/bench.sh

# The warm pool's capacity model: the scaling policy of infra/poolscaling against simulated demand.
capacity:
	go run ./infra/cmd/poolsim -search -out docs/capacity-model.md

# SAM (BuildMethod: makefile) calls build-<LogicalId> with ARTIFACTS_DIR set; the same targets work by hand.
ARTIFACTS_DIR ?= $(CURDIR)/.aws-sam/manual
build-ApiFunction:
	$(GO_LAMBDA_ENV) go build $(GO_LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/api
build-WebhookFunction:
	$(GO_LAMBDA_ENV) go build $(GO_LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/webhook
build-SweeperFunction:
	$(GO_LAMBDA_ENV) go build $(GO_LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/sweeper

build:
	$(MAKE) build-ApiFunction ARTIFACTS_DIR=$(CURDIR)/.aws-sam/manual/ApiFunction
	$(MAKE) build-WebhookFunction ARTIFACTS_DIR=$(CURDIR)/.aws-sam/manual/WebhookFunction
	$(MAKE) build-SweeperFunction ARTIFACTS_DIR=$(CURDIR)/.aws-sam/manual/SweeperFunction

clean:
	rm -rf .aws-sam .bin
