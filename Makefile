# millrace: build, test and demo targets. The README's Quickstart uses
# `make demo` and `make test`; .ci/run uses `make test`, then
# `make conformance`.

GO      ?= go
BIN     := $(CURDIR)/bin
# The Python that prereqs checks: MILLRACE_PYTHON when set, else the
# system one, where Debian's python3-nbclient and python3-ipykernel install.
PYTHON  ?= $(or $(MILLRACE_PYTHON),/usr/bin/python3)
export MILLRACE_TEMPORAL_BIN ?= $(BIN)/millrace-temporal

.PHONY: all build devserver prereqs test-prereqs lint cross test test-portable conformance ui-screenshot security bench reliability cluster demo clean

all: build

# The embedded Temporal server lives in its own module (devserver/): the
# server and the newest SDK need different go.temporal.io/api versions. Its
# first build takes several minutes; later ones only relink when it changed.
devserver:
	cd devserver && $(GO) build -o $(BIN)/millrace-temporal .

build: devserver
	$(GO) build -o $(BIN)/millrace ./cmd/millrace
	$(GO) build -o $(BIN)/millrace-worker ./cmd/worker
	$(GO) build -o $(BIN)/millrace-mcp ./cmd/mcp

# The bundled runner needs nbclient and ipykernel in the system Python;
# its checkpoints (resume after a lost attempt, rerun --from-cell) need
# dill, without which runs go on with a warning and no checkpoints; HTML
# pages of executed notebooks (millrace output --html) need nbconvert.
prereqs:
	@$(PYTHON) -c 'import nbclient, ipykernel, dill, nbconvert' 2>/dev/null || { \
	  if [ "$(PYTHON)" = /usr/bin/python3 ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-nbclient python3-ipykernel python3-dill python3-nbconvert >/dev/null; \
	  fi; \
	  $(PYTHON) -c 'import nbclient, ipykernel' 2>/dev/null || { \
	    echo "millrace needs a python3 with nbclient and ipykernel, and $(PYTHON) has not: apt-get install python3-nbclient python3-ipykernel (as root); on macOS, python3 -m pip install nbclient ipykernel into a Homebrew or python.org Python; then point MILLRACE_PYTHON at it" >&2; exit 1; }; \
	  $(PYTHON) -c 'import dill' 2>/dev/null || \
	    echo "note: $(PYTHON) has no dill, so runs take no checkpoints: apt-get install python3-dill, or pip install dill" >&2; \
	  $(PYTHON) -c 'import nbconvert' 2>/dev/null || \
	    echo "note: $(PYTHON) has no nbconvert, so millrace output --html cannot render pages: apt-get install python3-nbconvert, or pip install nbconvert" >&2; }

# macOS (arm64 and amd64): every command and the embedded server
# cross-compiled into a temporary folder (removed after), then the code
# vetted as macOS sees it, so a Linux-only call outside a build tag fails
# here rather than on a user's Mac. The server's first darwin build takes
# as long as its first Linux one; later ones reuse the build cache.
cross:
	@out=$$(mktemp -d) && trap 'rm -rf "$$out"' EXIT && \
	for arch in arm64 amd64; do \
	  echo "make cross: darwin/$$arch"; \
	  GOOS=darwin GOARCH=$$arch $(GO) build -o "$$out/$$arch/" ./cmd/... || exit 1; \
	  (cd devserver && GOOS=darwin GOARCH=$$arch $(GO) build -o "$$out/$$arch/millrace-temporal" .) || exit 1; \
	done
	GOOS=darwin $(GO) vet ./...
	cd devserver && GOOS=darwin $(GO) vet ./...

# The kernel checkpoint tests also need dill and numpy; the devserver's
# and the cluster tests, PostgreSQL; the network namespace tests, ip;
# the browser test (the dev UI, a rendered notebook), Chromium.
test-prereqs:
	@$(PYTHON) -c 'import dill, numpy' 2>/dev/null || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-dill python3-numpy >/dev/null; \
	  else \
	    echo "the tests need python3 with dill and numpy: apt-get install python3-dill python3-numpy (as root), or pip install dill numpy" >&2; exit 1; \
	  fi; }
	@# The devserver's PostgreSQL mode is tested on a real PostgreSQL it starts itself.
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else \
	    echo "the devserver and cluster tests need PostgreSQL: apt-get install postgresql (as root)" >&2; exit 1; \
	  fi; }
	@command -v ip >/dev/null || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null; \
	  else \
	    echo "the network namespace tests need ip: apt-get install iproute2 (as root)" >&2; exit 1; \
	  fi; }
	@command -v chromium >/dev/null || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "the Web UI's browser test needs chromium: apt-get install chromium (as root), or set MILLRACE_TEST_CHROMIUM to a Chromium binary" >&2; exit 1; \
	  fi; }

# go vet and staticcheck (a pinned version, built once into bin/). Tests
# use deprecated MCP client options on purpose where they drive the legacy
# protocol; those files say so in a lint:file-ignore line.
STATICCHECK_VERSION := v0.8.2
$(BIN)/staticcheck-$(STATICCHECK_VERSION):
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(BIN)/staticcheck $@

lint: $(BIN)/staticcheck-$(STATICCHECK_VERSION)
	$(GO) vet ./...
	$(BIN)/staticcheck-$(STATICCHECK_VERSION) ./...

# The README's test command: unit and integration tests on the real
# embedded server and real kernels, on the repository's own notebooks
# (testdata/); it reads nothing outside the clone.
test: prereqs test-prereqs devserver lint
	$(GO) test -count=1 -timeout 25m ./...
	cd devserver && $(GO) test -count=1 -timeout 10m ./...
	$(MAKE) test-portable

# The supervision, limits and dev-mode tests again with the portable
# supervisor, which is what macOS runs (a watchdog process instead of
# Pdeathsig, ps instead of /proc, rlimits and no cgroups): Linux CI
# exercises it with MILLRACE_SUPERVISOR=portable. A few minutes.
test-portable: prereqs devserver
	MILLRACE_SUPERVISOR=portable $(GO) test -count=1 -timeout 15m ./internal/portable/ ./internal/executor/ ./internal/reliability/
	MILLRACE_SUPERVISOR=portable $(GO) test -count=1 -timeout 5m -run 'Portable|Unenforced|Rlimit|CPULimitRefused' ./internal/limits/
	MILLRACE_SUPERVISOR=portable $(GO) test -count=1 -timeout 10m -run 'TestServer|TestRunSurvivesKillingEverything' ./internal/devmode/
	MILLRACE_SUPERVISOR=portable $(GO) test -count=1 -timeout 10m -run 'TestMemoryLimitExceeded|TestLimitedRunCanceled|TestCPULimit|TestRunCancelStopsEveryProcess|TestWorkerKilledMidRun' ./activities/

# The attack suite: every attack of SECURITY.md's threat model tried on the
# real binaries, server and kernels; it writes the table of SECURITY.md. Its
# tests also run in `make test`.
# The README's picture of the Web UI showing a batch (docs/ui-batch.png),
# taken by the browser test, never by hand.
ui-screenshot: prereqs test-prereqs devserver
	MILLRACE_UI_SCREENSHOT_WRITE=1 $(GO) test -count=1 -run '^TestWebUIShowsABatch$$' ./internal/devmode/

security: prereqs devserver
	MILLRACE_SECURITY_WRITE=SECURITY.md $(GO) test -count=1 -timeout 15m ./internal/security/

# papermill's own test notebooks (with their EXPECTED.md) as an external
# conformance suite: the tests behind the conformance build tag, through the
# notebook model and the whole product. MILLRACE_CORPUS points at the
# corpus; a missing corpus fails, it is never skipped.
export MILLRACE_CORPUS ?= $(abspath $(CURDIR)/../shared/corpus/papermill)
conformance: prereqs devserver
	@test -f "$(MILLRACE_CORPUS)/EXPECTED.md" || { echo "make conformance: no papermill corpus at $(MILLRACE_CORPUS) (no EXPECTED.md); set MILLRACE_CORPUS" >&2; exit 1; }
	$(GO) vet -tags conformance ./...
	$(GO) test -count=1 -timeout 20m -tags conformance -run Corpus ./internal/notebook/ ./activities/

# Every benchmark on the embedded server, one package at a time,
# printed as one table (metric, value, target, verdict); see BENCHMARKS.md.
# BENCH_FLAGS=-quick for a shorter pass; BENCH_FLAGS='-write BENCHMARKS.md'
# also updates the published table.
bench: prereqs devserver
	$(GO) run ./cmd/millrace-bench $(BENCH_FLAGS)

# The reliability suite, long scenarios included (faults, load, bad input
# on the real embedded server and real kernels; about 17 minutes on 2
# cores). It prints its table and, when every scenario passed, writes it
# into RELIABILITY.md (go test runs in the package's folder, so that its
# output is shown). Its fast part runs in `make test`.
reliability: prereqs devserver
	cd internal/reliability && MILLRACE_RELIABILITY=full MILLRACE_RELIABILITY_WRITE=RELIABILITY.md $(GO) test -count=1 -timeout 60m

# The cluster suite: Temporal on PostgreSQL, three workers and the MCP
# server (HTTP, with a token) each on a host of its own (network
# namespaces), with faults: a worker killed, a host cut off, a rolling
# restart, the database restarted. It needs root, iproute2 and
# PostgreSQL (apt-get install postgresql), prints its table and, when
# every scenario passed, writes it into RELIABILITY.md. Its fast
# scenarios (listing, MCP reads, a killed worker and a cut-off host) also
# run in `make test`.
cluster: prereqs devserver
	cd internal/cluster && MILLRACE_CLUSTER=full MILLRACE_CLUSTER_WRITE=../../RELIABILITY.md $(GO) test -count=1 -timeout 20m

# The main job end to end on the embedded default: the example pipeline
# (preprocess -> train -> eval) with live progress. The first command that
# needs Temporal starts the local dev service in the background.
demo: prereqs build
	$(BIN)/millrace batch examples/pipeline.yaml

clean:
	rm -rf $(BIN)
