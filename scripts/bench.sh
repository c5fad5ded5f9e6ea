#!/usr/bin/env bash
# Runs every benchmark scenario and writes docs/benchmarks.md (+ docs/benchmarks.svg).
#
# Builds the services and the `bench` harness in release, checks the local servers
# (scripts/infra.sh), gives the run a RabbitMQ vhost of its own (the service binaries always
# declare the production exchange and queue names), and runs `bench all`, which starts the
# three services as its children on fresh databases and a fresh Redis key prefix and removes
# them afterwards. The vhost is deleted on exit, also after a failure.
#
# Sized to finish in well under 10 minutes on 2 cores. Figures are printed against the issue's
# targets, never asserted.
#
# Environment:
#   CARGO_TARGET_DIR     where the release binaries are built (default: target)
#   BENCH_ARGS           extra arguments for `bench` (e.g. "--duration-secs 3")
#   BENCH_SCENARIO       one scenario instead of all (flash-sale, reserve-spread, place-order,
#                        availability, planner)
#   BENCH_DATABASE_URL / BENCH_REDIS_URL   servers (defaults: 127.0.0.1, user postgres)
#   BENCH_SKIP_BUILD=1   reuse the existing release binaries
set -euo pipefail

cd "$(dirname "$0")/.."
readonly ROOT=$PWD
readonly TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
readonly SCENARIO=${BENCH_SCENARIO:-all}
VHOST="bench-$(date +%s)-$$"
readonly VHOST
WORK=$(mktemp -d)
readonly WORK

note() { printf 'bench.sh: %s\n' "$*" >&2; }

cleanup() {
    if command -v rabbitmqctl >/dev/null; then
        rabbitmqctl -q delete_vhost "$VHOST" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

scripts/infra.sh

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    note "building in release (this takes a while on 2 cores)"
    cargo build --release -p omni-inventory -p omni-order-routing -p omni-member -p omni-bench
fi

if ! command -v rabbitmqctl >/dev/null; then
    note "rabbitmqctl is needed to create the run's vhost"
    exit 1
fi
rabbitmqctl -q add_vhost "$VHOST"
rabbitmqctl -q set_permissions -p "$VHOST" guest '.*' '.*' '.*'

{
    echo "\$ nproc"; nproc
    echo "\$ free -m"; free -m
    echo "\$ lscpu (model, sockets, cores, threads, caches)"
    lscpu | grep -E '^(Model name|Socket|Core|Thread|CPU\(s\)|L[123])' || true
    echo "\$ versions"
    psql -h 127.0.0.1 -U postgres -tAc 'show server_version' 2>/dev/null | sed 's/^/PostgreSQL /' || true
    redis-cli -h 127.0.0.1 INFO server 2>/dev/null | grep -E '^redis_version' || true
    rabbitmqctl -q version 2>/dev/null | sed 's/^/RabbitMQ /' || true
} >"$WORK/machine.txt"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
note "load average before the run: $LOAD_BEFORE"

# shellcheck disable=SC2086 # BENCH_ARGS is a list of arguments on purpose.
BENCH_AMQP_URL="amqp://guest:guest@127.0.0.1:5672/$VHOST" \
    "$TARGET/release/bench" "$SCENARIO" \
    --bin-dir "$TARGET/release" \
    --log-dir "$TARGET/bench-logs" \
    --out docs/benchmarks.md \
    --machine-file "$WORK/machine.txt" \
    --load-before "$LOAD_BEFORE" \
    --command "scripts/bench.sh${BENCH_ARGS:+ (BENCH_ARGS=\"$BENCH_ARGS\")}" \
    ${BENCH_ARGS:-}
