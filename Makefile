# make bench: build the server and the load generator, run the load matrix (SIPREC at 250/500/1,000/1,500
# calls, AudioHook at 200/500/1,000 sessions) and write the results table to bench-results.md.
#   make bench BENCH_DURATION=10s                     shorter steady state per row (default 30s)
#   make bench BENCH_CALLS="250 500" BENCH_AUDIOHOOK= only some rows
# Other knobs (see scripts/bench): BENCH_RATE, BENCH_AUDIOHOOK_RATE, BENCH_TRANSPORT, BENCH_OUT, BENCH_ARGS.
# make bench-analytics: what the call analytics cost, two servers side by side (scripts/bench-analytics;
#   ANALYTICS_ROUNDS, ANALYTICS_CALLS, ANALYTICS_DURATION).

GO ?= go
BENCH_DURATION ?= 30s
BENCH_CALLS ?= 250 500 1000 1500
BENCH_AUDIOHOOK ?= 200 500 1000
BENCH_RATE ?= 300
BENCH_AUDIOHOOK_RATE ?= 200
BENCH_TRANSPORT ?= udp
BENCH_OUT ?= bench-results.md
BENCH_ARGS ?=
export BENCH_DURATION BENCH_CALLS BENCH_AUDIOHOOK BENCH_RATE BENCH_AUDIOHOOK_RATE BENCH_TRANSPORT BENCH_OUT BENCH_ARGS

.PHONY: bench bench-analytics build siphook siphook-load

bench: build
	scripts/bench

bench-analytics: build
	scripts/bench-analytics

build: siphook siphook-load

# Always handed to go build, which rebuilds only what changed.
siphook:
	$(GO) build -o siphook ./cmd/siphook

siphook-load:
	$(GO) build -o siphook-load ./cmd/siphook-load
