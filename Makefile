# smtp-vault: `make run` starts everything locally, `make test` runs every
# test against real local servers. Built tools are cached under $(CACHE),
# keyed by their pins, so only a changed pin rebuilds the Vault server.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
CACHE ?= $(CURDIR)/.cache
export SMTP_VAULT_CACHE := $(CACHE)
BIN := $(CACHE)/bin
VAULT_KEY = $(shell cat scripts/vault/go.mod scripts/vault/go.sum scripts/vault/main.go | sha256sum | cut -c1-16)
GO_TEST_FLAGS ?=
# The S3-compatible server with Object Lock that keeps the audit bucket locally.
VERSITYGW_VERSION := v1.8.0

.PHONY: run test bench token vault versitygw tools functions lint clean

## run: build, start Vault + MailU stand-in + local gateway in the foreground
run: vault versitygw tools
	$(BIN)/gateway run

## test: every test, including those against the real local Vault and MailU stand-in
test: vault versitygw lint
	go test -count=1 -timeout 40m $(GO_TEST_FLAGS) ./...

## bench: function binary sizes and cold init, crypto benchmarks, retrieve beside its bare I/O, the sweep over 10,000 tenants, backup + restore + verify of 10,000 tenants
bench: vault versitygw
	go run ./scripts/bench
	go test -run '^$$' -bench . -benchmem ./shared/crypto/
	go test -run '^$$' -bench RetrieveVersusBareIO -benchtime 300x ./shared/api/
	go test -run '^$$' -bench BenchmarkSweep -benchtime 3x -timeout 30m ./shared/rotation/
	go test -run '^$$' -bench BackupRestoreVerify -benchtime 1x -timeout 30m ./shared/backup/

## token: print a bearer token for a demo admin: make token USER=<name>
token: tools
	@$(BIN)/gateway token -user "$(USER)"

## vault: build the Vault server once per pin (first build: 20-30 minutes)
vault:
	@mkdir -p $(BIN)
	@if [ ! -x "$(BIN)/vault-$(VAULT_KEY)" ]; then \
	  echo "building the Vault server (first time 20-30 minutes)..."; \
	  (cd scripts/vault && go build -trimpath -ldflags='-s -w' -o "$(BIN)/vault-$(VAULT_KEY).tmp" .); \
	  mv "$(BIN)/vault-$(VAULT_KEY).tmp" "$(BIN)/vault-$(VAULT_KEY)"; \
	fi
	@ln -sfn "vault-$(VAULT_KEY)" "$(BIN)/vault"

## versitygw: build the S3 server once per pin (about 2 minutes)
versitygw:
	@mkdir -p $(BIN)
	@if [ ! -x "$(BIN)/versitygw-$(VERSITYGW_VERSION)" ]; then \
	  echo "building versitygw $(VERSITYGW_VERSION) (about 2 minutes)..."; \
	  tmp=$$(mktemp -d); \
	  GOBIN=$$tmp go install -trimpath -ldflags='-s -w' github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION); \
	  mv "$$tmp/versitygw" "$(BIN)/versitygw-$(VERSITYGW_VERSION)"; rmdir "$$tmp"; \
	fi
	@ln -sfn "versitygw-$(VERSITYGW_VERSION)" "$(BIN)/versitygw"

## tools: the local gateway and the MailU stand-in
tools:
	@mkdir -p $(BIN)
	@go build -o $(BIN)/gateway ./scripts/gateway
	@go build -o $(BIN)/mailu-standin ./scripts/mailu-standin

## functions: the Lambda binaries as SAM builds them (linux/arm64)
functions:
	@for f in functions/*/; do n=$$(basename $$f); \
	  GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o bin/$$n/bootstrap ./$$f; done

lint:
	@out=$$(gofmt -l functions shared scripts infra); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	go vet ./...

clean:
	rm -rf bin .local
