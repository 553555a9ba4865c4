# cnstack — build, test and demo. `make demo` and `make test` do all set-up.
SHELL := /bin/bash
GO ?= go
export GOTOOLCHAIN := local
BIN := bin/cnstack
TOOLS_BIN ?= $(or $(CNSTACK_TOOLS_BIN),$(CURDIR)/.cache/tools/bin)
export CNSTACK_TOOLS_BIN := $(TOOLS_BIN)
PKGS := ./...
# Platforms of the Kubernetes base and its payload (make kube-base PLATFORMS=linux/amd64).
PLATFORMS ?= linux/amd64,linux/arm64
FUZZTIME ?= 20s

.PHONY: all build deps test unit fuzz demo bench lint e2e tools payload kube-base offline-edition nightly clean help

all: build

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build bin/cnstack (static: it also runs inside the VMs cnstack boot starts)
	@echo "build: $(BIN) (a first build on a machine compiles every dependency: a few minutes)"
	@CGO_ENABLED=0 ci/heartbeat.sh "compiling cnstack" $(GO) build -trimpath -buildvcs=auto -o $(BIN) ./cmd/cnstack

deps: ## install the Debian packages the tests and demo need (QEMU, debootstrap, ...) when root
	@ci/deps.sh

tools: ## build the pinned third-party tools (sealer, cosign, registry, crane, actionlint) into .cache/tools/bin
	tools/install.sh

payload: deps ## build what the Kubernetes base carries (Go modules and Debian packages; ~1 h cold, cached)
	tools/install.sh --platform $(PLATFORMS) payload
	tools/debs.sh --platform $(PLATFORMS)

kube-base: build payload ## build the Kubernetes base cluster image (Kubefiles/kubernetes) into the store
	PLATFORMS=$(PLATFORMS) ci/kube-base.sh

offline-edition: build ## build the offline edition (Kubefiles/offline: Kubernetes base + OpenKruise; Dapr; node-exporter, kube-state-metrics, Prometheus, OTel Collector; ChaosBlade; images from Go modules); NEGATIVE=1 adds the broken variant
	PLATFORMS=$(or $(OFFLINE_PLATFORMS),linux/amd64) ci/offline-edition.sh

test: deps tools lint unit fuzz ## everything CI runs: lint, unit + integration tests (real registry, sealer, cosign, VM smoke) and a short fuzz run

unit: ## go test ./... (needs `make tools`)
	@echo "unit: go test ./... (a first run compiles the test binaries: several minutes; each package prints when done)"
	$(GO) test -count=1 -timeout 40m $(PKGS)

fuzz: ## run the parser fuzzers briefly (FUZZTIME=20s)
	@# Go's fuzz engine can end with "context deadline exceeded" when -fuzztime runs out while a
	@# worker minimises an input; that run is retried once. A real crash is saved under
	@# testdata/fuzz, replayed first by the retry, and fails it again.
	@for f in FuzzParse FuzzEvaluate; do \
		$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) ./pkg/kubefile || \
		{ echo "fuzz: $$f failed; retrying once"; $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) ./pkg/kubefile; } || exit 1; \
	done

demo: deps build ## build the sample stack end to end into the default store and show it
	ci/demo.sh

nightly: deps build ## the nightly pipeline (ci/nightly.sh) offline on the sample stack: build, sign, push, boot-verify, promote, report in out/nightly/reports
	ci/nightly-local.sh

bench: build tools ## print throughput, timing and memory figures beside their baselines
	$(GO) run ./internal/benchcmd -repo $(CURDIR) $(BENCHFLAGS)

lint: ## gofmt + go vet + actionlint on .github/workflows (make tools builds actionlint)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@test -x $(TOOLS_BIN)/actionlint || tools/install.sh actionlint
	$(TOOLS_BIN)/actionlint .github/workflows/*.yml

e2e: tools build payload ## the end-to-end tests: the Kubernetes base booted with sealer run (1 node, 2 nodes, a missing image), the offline edition with its layer checks (and a broken variant), two-node and cloud-init VMs, the report in headless Chromium, make nightly
	@CNSTACK_EXTRA_DEBS=chromium ci/deps.sh
	CNSTACK_E2E=1 CNSTACK_VM_NOCLOUD_TEST=1 $(GO) test -count=1 -timeout 240m -run 'E2E|NoCloud' $(PKGS)
	ci/nightly-local.sh

clean: ## remove build outputs (not the store)
	rm -rf bin .cache/tools
