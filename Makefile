# jetevents: every command a developer or CI needs. Nothing here needs Docker:
# tests, benchmarks and the demo run an embedded NATS server in-process.

GO        ?= go
PKGS      ?= ./...
FUZZTIME  ?= 30s
BENCHTIME ?= 2s
COUNT     ?= 6

.PHONY: all test test-short lint fuzz bench bench-cmd bench-latency stress reliability reliability-short demo clean postgres chromium

all: lint test

## test: the full test suite under the race detector (what .ci/run runs).
## The outbox and inbox tests start a throwaway PostgreSQL cluster, and the
## console's browser tests a headless Chromium: the postgres and chromium
## targets install them first when they are missing.
test: postgres chromium
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

## test-short: the same without -race, for a quick loop.
test-short: postgres chromium
	$(GO) test -count=1 $(PKGS)

## postgres: PostgreSQL's server binaries (initdb, postgres) for the tests;
## installs Debian's postgresql package when missing. Nothing runs: each test
## starts its own cluster. PG_URL=postgres://... points the tests at a server
## instead (a database per test is created and dropped there).
postgres:
	@./scripts/ensure-postgres.sh

## chromium: a Chromium for the console's browser tests (console/, chromedp);
## installs Debian's chromium package when missing. CHROMIUM=/path/to/chrome
## uses another. Screenshots of each page: go test -artifacts -outputdir DIR ./console/
chromium:
	@./scripts/ensure-chromium.sh

## lint: go vet plus a gofmt check.
lint:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## fuzz: run every Fuzz target for FUZZTIME each. New inputs go to the Go cache;
## a crasher is written to testdata/fuzz/<Target>/ (commit it with its fix).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## bench: Go benchmarks (ours beside raw nats.go and watermill-nats), COUNT
## passes of one sample each (interleaved, so outside noise spreads over every
## variant), into bench/results/latest.txt; summarise with benchstat.
bench:
	@mkdir -p bench/results
	@rm -f bench/results/latest.txt
	@for i in $$(seq $(COUNT)); do \
	  $(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count 1 -timeout 60m ./marshaler/ ./bench/ | tee -a bench/results/latest.txt; \
	done
	@echo "summary: go run golang.org/x/perf/cmd/benchstat@latest -col /impl bench/results/latest.txt"

## bench-cmd: the side-by-side table (msgs/s, ratio to raw) in about a minute.
bench-cmd:
	$(GO) run ./cmd/jetevents-bench

## bench-latency: latency under load (issue 21): the raw consumer, the router
## rows and watermill-nats' router at 25/50/75/90 % of the raw consumer's
## maximum, 5 rounds, about 15 minutes; table, plots (SVG) and percentile
## distributions into bench/results.
bench-latency:
	@mkdir -p bench/results
	$(GO) run ./cmd/jetevents-bench -ops latency -size 512 -rounds 5 -latency-duration 6s -latency-out bench/results | tee bench/results/latency-bench.md

## stress: Watermill's stress conformance suite (10 parallel copies of
## TestPubSub each) on JetStream and on the in-memory bus (long).
stress:
	$(GO) test -race -count=1 -tags stress -run 'Stress' -timeout 60m ./jetstream/ ./memory/

## reliability: the crash suite (build tag reliability), full size: nats-server
## and router processes SIGKILLed and restarted under publish and consume load
## (one server; a 3-node R3 cluster), 3 router processes on one durable, poison
## under load, a 1M-event soak; counted per event, prints the table and asserts
## on it (about 8 minutes on 2 cores); the outbox and inbox scenarios on
## PostgreSQL and SQLite. RELIABILITY_EVENTS sets every scenario's
## size but the soak's (RELIABILITY_SOAK_EVENTS); RELIABILITY_LOGS=1 prints the
## routers' warnings.
reliability: postgres
	$(GO) test -tags reliability -count=1 -v -timeout 60m ./reliability/

## reliability-short: the same scenarios at reduced sizes (-short), what .ci/run
## runs (about 1.5 minutes).
reliability-short: postgres
	$(GO) test -tags reliability -count=1 -short -v -timeout 15m ./reliability/

## demo: start an embedded JetStream server, set up streams, publish the seed's
## events and consume them through the router. No NATS needed.
demo:
	$(GO) run ./examples/demo

clean:
	rm -rf bench/results/latest.txt
