# zos — make run starts what exists; make test runs every test tier.
# Targets install what they need on a fresh Debian 12 machine (as root).

SHELL := /bin/bash
GO ?= go
export CGO_ENABLED := 0
export GOFLAGS := -buildvcs=false

BIN := $(CURDIR)/bin
STATICCHECK_VERSION := v0.8.2
TEST_TIMEOUT ?= 25m

# Debian packages the tests and the development grid use.
DEB_PKGS := btrfs-progs containerd runc qemu-system-x86 qemu-utils redis-server redis-tools \
	nftables wireguard-tools fuse3 iproute2 busybox-static iputils-ping python3-nacl \
	e2fsprogs kmod procps util-linux capnproto wireguard-go udhcpc yggdrasil iperf3 wget

ROOT := $(shell [ "$$(id -u)" = 0 ] && echo 1)

.PHONY: all build deps modules run test test-unit test-e2e bench lint soak clean

all: build

## deps: install missing Debian packages (root only; idempotent) and Go modules.
deps: modules
	@if [ "$(ROOT)" = 1 ]; then \
		missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
		if [ -n "$$missing" ]; then \
			echo "installing: $$missing"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		fi; \
	else \
		echo "not root: not installing Debian packages; root tests will skip"; \
	fi

modules:
	$(GO) mod download

## build: every binary, statically linked (CGO_ENABLED=0), into ./bin.
build: modules
	@mkdir -p $(BIN)
	@if ls cmd/*/*.go >/dev/null 2>&1; then $(GO) build -o $(BIN)/ ./cmd/...; fi

## run: the development grid (what exists so far; see README "Status").
run: deps build
	@scripts/run.sh "$(BIN)"

## test: unit, root integration (as root, strict: missing tools fail) and e2e.
test: deps build
	$(GO) vet ./...
	@if [ "$(ROOT)" = 1 ]; then export ZOS_TEST_STRICT=1; fi; \
	ZINIT_BIN=$(BIN)/zinit $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	@$(MAKE) --no-print-directory test-e2e

test-unit: modules
	$(GO) test -count=1 -short ./...

test-e2e: build
	@if ls test/e2e/*_test.go >/dev/null 2>&1; then \
		if [ "$(ROOT)" = 1 ]; then export ZOS_TEST_STRICT=1; fi; \
		ZOS_BIN=$(BIN) $(GO) test -count=1 -tags e2e -timeout $(TEST_TIMEOUT) ./test/e2e/...; \
	else echo "no e2e scenarios yet"; fi

## bench: one table — metric, ours, baseline measured in the same run, ratio.
bench: deps build
	@if [ "$(ROOT)" = 1 ]; then export ZOS_TEST_STRICT=1; fi; \
	ZOS_BIN=$(BIN) $(GO) run ./internal/tools/benchtable -tags e2e

## soak: the long chaos scenario (200 operations with kill -9 of zosd; make test runs 50).
soak: build
	@if [ "$(ROOT)" = 1 ]; then export ZOS_TEST_STRICT=1; fi; \
	ZOS_CHAOS_OPS=200 ZOS_BIN=$(BIN) $(GO) test -count=1 -tags e2e -run 'Chaos|PowerCut' -timeout 3h -v ./test/e2e/...

## lint: gofmt, go vet, staticcheck (pinned).
lint: modules
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if ls test/e2e/*_test.go >/dev/null 2>&1; then $(GO) vet -tags e2e ./test/e2e/...; fi
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

clean:
	rm -rf $(BIN)
