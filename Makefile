# vhdprep: `make demo` runs the main job on a sample image, `make test` runs
# every test (installing what they need first).
GO      ?= go
BIN     := bin
DIST    := dist
AGENTS  := agent/inject/bin
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
COMMIT  := $(shell git rev-parse HEAD 2>/dev/null)
# Reproducible builds: no file paths, no build ID, and only the version
# stamps given here (Go's own VCS stamps vary with how the tree was checked out).
GOBUILD := $(GO) build -trimpath -buildvcs=false
LDFLAGS := -s -w -buildid= -X main.version=$(VERSION) -X main.commit=$(COMMIT)
RELEASE := linux/amd64 linux/arm64 darwin/arm64
export CGO_ENABLED := 0

.PHONY: build agents release release-check test deps demo bench lint fuzz clean e2e docker

build: agents
	$(GOBUILD) -ldflags '$(LDFLAGS)' -o $(BIN)/vhdprep ./cmd/vhdprep

# The guest agents first: vhdprep embeds them from $(AGENTS) for agent
# inject, with the version they were built as (vhdprep version -o json).
agents:
	for arch in amd64 arm64; do \
	  GOOS=linux GOARCH=$$arch $(GOBUILD) -ldflags '$(LDFLAGS)' -o $(BIN)/vhdprep-agent-linux-$$arch ./cmd/vhdprep-agent || exit 1; \
	done
	cp $(BIN)/vhdprep-agent-linux-amd64 $(BIN)/vhdprep-agent-linux-arm64 $(AGENTS)/
	echo '$(VERSION) $(COMMIT)' > $(AGENTS)/VERSION

# Static binaries (darwin links libSystem, as every Go program there does)
# and their SHA256SUMS in $(DIST).
release: agents
	rm -rf $(DIST) && mkdir -p $(DIST)
	for p in $(RELEASE); do \
	  GOOS=$${p%/*} GOARCH=$${p#*/} $(GOBUILD) -ldflags '$(LDFLAGS)' -o $(DIST)/vhdprep-$${p%/*}-$${p#*/} ./cmd/vhdprep || exit 1; \
	done
	cd $(DIST) && sha256sum vhdprep-* > SHA256SUMS
	cat $(DIST)/SHA256SUMS

# Same commit, same bytes: the release of HEAD built in two fresh clones at
# different paths must match (uncommitted changes are not part of it).
release-check:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	for d in a b; do \
	  git clone -q --shared . "$$tmp/$$d" && git -C "$$tmp/$$d" checkout -q --detach $$(git rev-parse HEAD) && \
	  $(MAKE) -s -C "$$tmp/$$d" release >/dev/null || exit 1; \
	done && \
	if cmp -s "$$tmp/a/$(DIST)/SHA256SUMS" "$$tmp/b/$(DIST)/SHA256SUMS"; then \
	  echo "reproducible:"; cat "$$tmp/a/$(DIST)/SHA256SUMS"; \
	else \
	  diff "$$tmp/a/$(DIST)/SHA256SUMS" "$$tmp/b/$(DIST)/SHA256SUMS"; exit 1; \
	fi

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

# The Dockerfile's image, built and tried on the demo sample where a
# container engine runs (skipped, saying so, where none does).
docker:
	./scripts/docker.sh '$(VERSION)' '$(COMMIT)'

fuzz:
	FUZZTIME=$${FUZZTIME:-1m} ./scripts/fuzz-short.sh

demo: build deps
	./scripts/demo.sh $(BIN)/vhdprep

# Benchmarks against the reference tools (qemu-img, AzCopy), printed as
# tables; a missing tool or a failed benchmark fails the target.
# VHDPREP_BENCH_SHRINK=16 divides every benchmark's disk by 16, for a quick run.
bench: build
	BENCH=1 ./scripts/test-deps.sh
	VHDPREP_REQUIRE_TOOLS=1 $(GO) test -run='^$$' -bench=. -benchtime=1x -count=1 -timeout 60m ./... 2>&1 | ./scripts/bench-report.sh

lint:
	@bad=$$(gofmt -l $$(find . -name "*.go" -not -path "./.cache/*")); \
	  if [ -n "$$bad" ]; then echo "gofmt needed: $$bad"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e

clean:
	rm -rf $(BIN) $(DIST) $(AGENTS)/vhdprep-agent-linux-* $(AGENTS)/VERSION
	. scripts/cache-dir.sh && rm -rf "$$(cache_dir testimages)" "$$(cache_dir demo)"
