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

.PHONY: run test chromium awscli dovecot fuzz bench bench-smoke token vault versitygw tools functions lint clean

## run: build, start Vault + MailU stand-in behind real Dovecot + local gateway in the foreground
run: vault versitygw dovecot tools
	$(BIN)/gateway run

## test: every test, including those against the real local Vault and MailU stand-in, then every bench report once
test: vault versitygw chromium awscli dovecot lint
	go test -count=1 -timeout 40m $(GO_TEST_FLAGS) ./...
	@$(MAKE) --no-print-directory bench-smoke

## chromium: Debian's chromium for the console's browser tests (scripts/browsertest), when /usr/bin/chromium (or $$CHROMIUM) is missing
chromium:
	@if [ -n "$${CHROMIUM:-}" ] && [ -x "$$CHROMIUM" ]; then exit 0; fi; \
	if [ -x /usr/bin/chromium ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "chromium is missing: run 'make chromium' as root, or install Debian's chromium (apt-get install chromium), or set CHROMIUM" >&2; exit 1; fi; \
	apt-get update && apt-get install -y chromium

## awscli: Debian's awscli for the documents' `aws s3api` block (scripts/devenv TestDocCommandsWork), when `aws` is missing
awscli:
	@if command -v aws >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "aws is missing: run 'make awscli' as root, or install Debian's awscli (apt-get install awscli)" >&2; exit 1; fi; \
	apt-get update && apt-get install -y awscli

## dovecot: Debian's Dovecot (submission and Lua passdb), the real SMTP front of the local MailU stand-in (scripts/devenv/dovecot), when /usr/sbin/dovecot (or $$DOVECOT) is missing
DOVECOT_PACKAGES := dovecot-core dovecot-submissiond dovecot-auth-lua
dovecot:
	@if [ -n "$${DOVECOT:-}" ] && [ -x "$$DOVECOT" ]; then exit 0; fi; \
	if [ -x /usr/sbin/dovecot ] && [ -e /usr/lib/dovecot/submission-login ] && [ -e /usr/lib/dovecot/modules/auth/libauthdb_lua.so ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "dovecot is missing: run 'make dovecot' as root, or install Debian's $(DOVECOT_PACKAGES) (sudo apt-get install $(DOVECOT_PACKAGES)), or set DOVECOT" >&2; exit 1; fi; \
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(DOVECOT_PACKAGES)

## fuzz: every Fuzz target for FUZZTIME each (default 10m); `make test` runs only their seed corpora
FUZZTIME ?= 10m
fuzz: vault versitygw
	@for pkg in $$(go list ./...); do \
	  for f in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f ($(FUZZTIME))"; \
	    go test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## bench: function binary sizes and cold init, crypto benchmarks, retrieve beside its bare I/O, the sweep over 10,000 tenants, a compromise response over 10,000 tenants, the overview of 10,000 tenants through the gateway, backup + restore + verify of 10,000 tenants, the recovery of one tenant after a VPS loss, the master key rotation over 10,000 tenants, then everything at 100,000 tenants seeded once (SCALE_BENCH_TENANTS): index rebuild, overview, sweep, backup + restore + check
bench: vault versitygw
	go run ./scripts/bench
	go test -run '^$$' -bench . -benchmem ./shared/crypto/
	go test -run '^$$' -bench RetrieveVersusBareIO -benchtime 300x ./shared/api/
	go test -run '^$$' -bench BenchmarkSweep -benchtime 3x -timeout 30m ./shared/credential/
	go test -run '^$$' -bench BenchmarkCompromiseResponse -benchtime 1x -timeout 60m ./shared/api/
	go test -run '^$$' -bench BenchmarkOverview -benchtime 1x -timeout 30m ./shared/api/
	go test -run '^$$' -bench BackupRestoreVerify -benchtime 1x -timeout 30m ./shared/backup/
	go test -run '^$$' -bench BenchmarkRecover -benchtime 20x ./shared/credential/
	go test -run '^$$' -bench BenchmarkRekey -benchtime 1x -timeout 30m ./shared/credential/
	INDEX_BENCH_TENANTS=$${INDEX_BENCH_TENANTS:-100000} go test -run '^$$' -bench BenchmarkIndexAtScale -benchtime 1x -timeout 60m ./shared/credential/
	SCALE_BENCH_TENANTS=$${SCALE_BENCH_TENANTS:-100000} go test -run '^$$' -bench BenchmarkScale -benchtime 1x -timeout 180m ./shared/api/

## bench-smoke: every report of make bench once and small (make test runs it), so a broken harness fails CI
bench-smoke: vault versitygw
	go run ./scripts/bench -smoke
	go test -count=1 -run '^$$' -bench . -benchtime 1x ./shared/crypto/
	go test -count=1 -run '^$$' -bench RetrieveVersusBareIO -benchtime 1x ./shared/api/
	SWEEP_BENCH_TENANTS=20 go test -count=1 -run '^$$' -bench BenchmarkSweep -benchtime 1x ./shared/credential/
	RESET_BENCH_TENANTS=10 go test -count=1 -run '^$$' -bench BenchmarkCompromiseResponse -benchtime 1x ./shared/api/
	OVERVIEW_BENCH_TENANTS=20 OVERVIEW_BENCH_COLD=2 go test -count=1 -run '^$$' -bench BenchmarkOverview -benchtime 1x ./shared/api/
	BACKUP_BENCH_TENANTS=10 go test -count=1 -run '^$$' -bench BackupRestoreVerify -benchtime 1x ./shared/backup/
	go test -count=1 -run '^$$' -bench BenchmarkRecover -benchtime 1x ./shared/credential/
	REKEY_BENCH_TENANTS=10 go test -count=1 -run '^$$' -bench BenchmarkRekey -benchtime 1x ./shared/credential/
	INDEX_BENCH_TENANTS=300 go test -count=1 -run '^$$' -bench BenchmarkIndexAtScale -benchtime 1x ./shared/credential/
	SCALE_BENCH_TENANTS=30 OVERVIEW_BENCH_COLD=2 go test -count=1 -run '^$$' -bench BenchmarkScale -benchtime 1x ./shared/api/

## token: print a bearer token for a demo admin: make token USER=<name>
token: tools
	@$(BIN)/gateway token -user "$(USER)"

## vault: build the Vault server once per pin (first build: 20-30 minutes)
vault:
	@mkdir -p $(BIN)
	@if [ ! -x "$(BIN)/vault-$(VAULT_KEY)" ]; then \
	  echo "building the Vault server (first time 20-30 minutes; a progress line every minute)..."; \
	  (cd scripts/vault && ../long-build.sh "vault build" go build -v -trimpath -ldflags='-s -w' -o "$(BIN)/vault-$(VAULT_KEY).tmp" .); \
	  mv "$(BIN)/vault-$(VAULT_KEY).tmp" "$(BIN)/vault-$(VAULT_KEY)"; \
	fi
	@ln -sfn "vault-$(VAULT_KEY)" "$(BIN)/vault"

## versitygw: build the S3 server once per pin (about 2 minutes)
versitygw:
	@mkdir -p $(BIN)
	@if [ ! -x "$(BIN)/versitygw-$(VERSITYGW_VERSION)" ]; then \
	  echo "building versitygw $(VERSITYGW_VERSION) (about 2 minutes)..."; \
	  tmp=$$(mktemp -d); \
	  GOBIN=$$tmp scripts/long-build.sh "versitygw build" go install -v -trimpath -ldflags='-s -w' github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION); \
	  mv "$$tmp/versitygw" "$(BIN)/versitygw-$(VERSITYGW_VERSION)"; rmdir "$$tmp"; \
	fi
	@ln -sfn "versitygw-$(VERSITYGW_VERSION)" "$(BIN)/versitygw"

## tools: the local gateway and the MailU stand-in
tools:
	@mkdir -p $(BIN)
	@go build -o $(BIN)/gateway ./scripts/gateway
	@go build -o $(BIN)/mailu-standin ./scripts/mailu-standin

# One target per function of template.yaml (Metadata: BuildMethod: makefile,
# ProjectRootDirectory and ContextPath at the repository root): `sam build`
# runs `make build-<LogicalId>` in a copy of the repository with
# ARTIFACTS_DIR set, so it builds exactly what `make functions`, the
# template check and `make bench` build. Static (CGO_ENABLED=0) for
# provided.al2023, stripped, without VCS stamps so both copies give the
# same bytes, and without the RPC mode of aws-lambda-go that provided
# runtimes never use (lambda.norpc).
FUNCTIONS := reauth store retrieve rotate rotate-sweep emergency-reset audit backup recover console
LOGICAL_ID_reauth := ReauthFunction
LOGICAL_ID_store := StoreFunction
LOGICAL_ID_retrieve := RetrieveFunction
LOGICAL_ID_rotate := RotateFunction
LOGICAL_ID_rotate-sweep := RotateSweepFunction
LOGICAL_ID_emergency-reset := EmergencyResetFunction
LOGICAL_ID_audit := AuditFunction
LOGICAL_ID_backup := BackupFunction
LOGICAL_ID_recover := RecoverFunction
LOGICAL_ID_console := ConsoleFunction
LAMBDA_BUILD = GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -trimpath -buildvcs=false -tags lambda.norpc -ldflags='-s -w'

define lambda_target
.PHONY: build-$(LOGICAL_ID_$(1))
build-$(LOGICAL_ID_$(1)):
	@test -n "$$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set (sam build sets it)" >&2; exit 2; }
	$(LAMBDA_BUILD) -o "$$(ARTIFACTS_DIR)/bootstrap" ./functions/$(1)
endef
$(foreach f,$(FUNCTIONS),$(eval $(call lambda_target,$(f))))

## functions: the Lambda binaries as `sam build` builds them, into bin/<name>/bootstrap
functions:
	@$(foreach f,$(FUNCTIONS),$(MAKE) -s build-$(LOGICAL_ID_$(f)) ARTIFACTS_DIR=$(CURDIR)/bin/$(f) &&) true

lint:
	@out=$$(gofmt -l functions shared scripts infra); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	go vet ./...

clean:
	rm -rf bin .local
