# ctdb-go — build, test, benchmark. `make help` lists the targets.

GO       ?= go
BIN      := bin
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
PREFIX   ?= /usr/local
ETCDIR   ?= /etc/ctdb
# Integration tests need root (network namespaces); they run one package at
# a time because they share the machine's two cores with the daemons.
ITEST    := $(GO) test -tags integration -p 1 -count=1 -timeout 25m

.PHONY: build deps test unit integration race lint tidy check bench bench-failover \
	bench-failover-ctdb demo soak install clean help

build: ## Build bin/ctdbd and bin/ctdb (the default)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ctdbd ./daemon/ctdbd
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ctdb ./tools/ctdb

deps: ## Install what the tests need (iproute2, ethtool, nftables, shellcheck, postgresql) when missing (root)
	@sh tests/install-deps.sh

test: deps build ## Unit tests, then (as root) the end-to-end tests in network namespaces
	$(GO) test -count=1 ./...
	@if [ "$$(id -u)" = 0 ]; then \
		$(ITEST) ./daemon/... ./tests/...; \
	else \
		echo "make test: not root: end-to-end tests (network namespaces) not run; run as root" >&2; exit 1; \
	fi

unit: ## Unit tests only (no root needed)
	$(GO) test -count=1 ./...

integration: deps build ## End-to-end tests only (root)
	$(ITEST) ./daemon/... ./tests/...

race: ## Unit tests with the race detector
	$(GO) test -race -count=1 ./...

lint: ## gofmt, go vet, staticcheck (if installed), shellcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	@if command -v staticcheck >/dev/null; then staticcheck ./...; else echo "staticcheck not installed: skipped"; fi
	shellcheck -x events.d/functions events.d/[0-9][0-9].* .ci/run

tidy: ## Fail if go.mod or go.sum are not tidy
	$(GO) mod tidy
	git diff --exit-code go.mod go.sum

check: lint test ## lint + test

bench: ## Allocation benchmarks (ipalloc) with allocations per run
	$(GO) test -run '^$$' -bench . -benchmem ./ipalloc/

bench-failover: build ## Failover benchmark on a 3-node namespace cluster (root)
	$(GO) run ./tests/cmd/benchfailover

bench-failover-ctdb: ## The same scenarios with Debian's ctdb 4.17 (root; installs ctdb)
	$(GO) run ./tests/cmd/benchfailover -ctdb

demo: build ## A 3-node cluster in network namespaces; pulls a cable (root)
	@sh tests/install-deps.sh demo
	$(GO) run ./tests/cmd/demo

.PHONY: soak
soak: build ## Random faults on a 5-node namespace cluster for 10m (root; SOAK_FLAGS="-seed N -duration 30m")
	@sh tests/install-deps.sh demo
	$(GO) run ./tests/cmd/soak $(SOAK_FLAGS)

install: build ## Install binaries, scripts and systemd unit under PREFIX and ETCDIR
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(ETCDIR)/events.d
	install -m 0755 $(BIN)/ctdbd $(DESTDIR)$(PREFIX)/sbin/ctdbd
	install -m 0755 $(BIN)/ctdb $(DESTDIR)$(PREFIX)/bin/ctdb
	install -m 0644 events.d/functions $(DESTDIR)$(ETCDIR)/functions
	for f in events.d/[0-9][0-9].*; do install -m 0644 $$f $(DESTDIR)$(ETCDIR)/events.d/; done
	install -d $(DESTDIR)/lib/systemd/system
	install -m 0644 daemon/ctdbd/ctdbd.service $(DESTDIR)/lib/systemd/system/ctdbd.service
	@echo "scripts installed disabled; enable with: ctdb event script enable NAME"

clean: ## Remove build output
	rm -rf $(BIN)

help: ## This list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'
