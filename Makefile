# vhdprep: `make demo` runs the main job on a sample image, `make test` runs
# every test (installing what they need first).
GO      ?= go
BIN     := bin
AGENTS  := agent/inject/bin
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
export CGO_ENABLED := 0

.PHONY: build test deps demo bench lint fuzz clean e2e

# The guest agents first: vhdprep embeds them from $(AGENTS) for agent inject.
build:
	GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/vhdprep-agent-linux-amd64 ./cmd/vhdprep-agent
	GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/vhdprep-agent-linux-arm64 ./cmd/vhdprep-agent
	cp $(BIN)/vhdprep-agent-linux-amd64 $(BIN)/vhdprep-agent-linux-arm64 $(AGENTS)/
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/vhdprep ./cmd/vhdprep

deps:
	./scripts/test-deps.sh

test: deps lint
	VHDPREP_REQUIRE_TOOLS=1 $(GO) test -count=1 -timeout 30m ./...
	./scripts/fuzz-short.sh

# The end-to-end proof (test/e2e): a Debian image built with debootstrap
# (root), checked, fixed, converted and booted in QEMU. Each stage has its
# own bound (test/e2e); the whole run takes minutes, 75 at the very most.
e2e: build
	E2E=1 ./scripts/test-deps.sh
	cd test/e2e && VHDPREP=$(CURDIR)/$(BIN)/vhdprep VHDPREP_REQUIRE_TOOLS=1 \
	  $(GO) test -tags e2e -count=1 -timeout 75m -v .

fuzz:
	FUZZTIME=$${FUZZTIME:-1m} ./scripts/fuzz-short.sh

demo: build deps
	./scripts/demo.sh $(BIN)/vhdprep

bench: build deps
	VHDPREP_REQUIRE_TOOLS=1 $(GO) test -run='^$$' -bench=. -benchtime=1x -count=1 ./... | ./scripts/bench-report.sh

lint:
	@bad=$$(gofmt -l $$(find . -name "*.go" -not -path "./.cache/*")); \
	  if [ -n "$$bad" ]; then echo "gofmt needed: $$bad"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e

clean:
	rm -rf $(BIN) $(AGENTS)/vhdprep-agent-linux-*
	. scripts/cache-dir.sh && rm -rf "$$(cache_dir testimages)" "$$(cache_dir demo)"
