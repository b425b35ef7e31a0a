# gitserver — run `make help` for the targets.

BINARY   := bin/gitserver
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
PREFIX   ?= /usr/local
UNITDIR  ?= /etc/systemd/system
GO       ?= go

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build a static binary into bin/gitserver (CGO_ENABLED=0).
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BINARY) ./cmd/gitserver

.PHONY: run
run: build ## Build and run the server on its embedded defaults (data in ./gitserver-data, HTTP :8080, SSH :2222); flags in ARGS='...'.
	./$(BINARY) serve $(ARGS)

.PHONY: test
test: ## Run vet and every test with the race detector (unit, store, end-to-end with real git and OpenSSH, headless Chromium, fuzz seeds); failure screenshots in test-artifacts/.
	$(GO) vet ./...
	mkdir -p test-artifacts
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 40m -artifacts -outputdir $(CURDIR)/test-artifacts ./...

.PHONY: lint
lint: ## go vet plus staticcheck (fetched through the module proxy).
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@latest ./...

.PHONY: bench
bench: ## Benchmark gitserver against plain C git (http-backend behind nginx+fcgiwrap, git daemon), and two nodes on PostgreSQL against one on SQLite; prints the tables (also in bench-results/latest.md).
	mkdir -p bench-results
	$(GO) run ./bench -out bench-results/latest.md

.PHONY: fuzz
fuzz: ## Run each fuzz target for 30s.
	@for t in $$($(GO) test -list 'Fuzz.*' ./... 2>/dev/null | grep '^Fuzz'); do \
		pkg=$$(grep -rl "func $$t(" --include='*_test.go' . | head -1 | xargs dirname); \
		echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime 30s $$pkg || exit 1; \
	done

.PHONY: install
install: build ## Install the binary and the systemd unit (as root), then: systemctl enable --now gitserver.
	install -D -m 0755 $(BINARY) $(DESTDIR)$(PREFIX)/bin/gitserver
	install -D -m 0644 systemd/gitserver.service $(DESTDIR)$(UNITDIR)/gitserver.service
	@id gitserver >/dev/null 2>&1 || echo "note: the unit runs as a dynamic user; no account needs to be created"
	@echo "installed; now run: systemctl daemon-reload && systemctl enable --now gitserver"

.PHONY: assets
assets: ## Rebuild the Web IDE's editor bundle ui/web/static/ide.js (CodeMirror 6) from ui/web/assets with npm ci and esbuild; commit the result.
	cd ui/web/assets && npm ci --no-audit --no-fund && npx esbuild ide.js --bundle --minify --format=iife --target=es2020 --legal-comments=eof --outfile=../static/ide.js

.PHONY: clean
clean: ## Remove build output.
	rm -rf bin
