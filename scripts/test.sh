#!/usr/bin/env bash
# The whole test suite: what CI runs (.ci/run) and what to run before pushing.
#
# Steps, each under its own header with its time; every step runs even when an
# earlier one failed, and the exit code is non-zero if any failed:
#   infra        PostgreSQL, Redis, RabbitMQ answer (started/installed if need be)
#   fmt          cargo fmt --check
#   clippy       cargo clippy, warnings are errors
#   proto        buf lint, buf format, buf breaking against main
#   asyncapi     docs/asyncapi.yaml parses as AsyncAPI (+ the validator's selftest)
#   k8s          every kustomize overlay renders and validates (+ the validator's selftest)
#   shell        shellcheck on scripts/ (when shellcheck is installed)
#   tests        cargo nextest (or cargo test) on the whole workspace
#   doctests     cargo test --doc, when any doc comment has a code block
#
# A server that does not answer fails the run, locally as in CI (CI=true): the
# integration tests never skip for lack of PostgreSQL, Redis or RabbitMQ.
#
# Environment:
#   CARGO_TARGET_DIR  default ~/.cache/omni-target (kept between runs)
#   SKIP_CARGO=1      skip fmt, clippy, tests and doctests (for working on this
#                     script or the manifests; the default runs everything)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/omni-target}
export npm_config_cache=${npm_config_cache:-$HOME/.cache/omni-npm}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
SKIP_CARGO=${SKIP_CARGO:-0}

results=()
failures=0

# run_step NAME COMMAND...: runs COMMAND in a subshell with `set -e` in force
# (a function called from an `if` would silently lose it), times it, records it.
run_step() {
    local name=$1
    shift
    local started=$SECONDS rc
    printf '\n==== %s  (at %ds)\n' "$name" "$SECONDS"
    set +e
    (
        set -e
        "$@"
    )
    rc=$?
    set -e
    local took=$((SECONDS - started))
    if ((rc == 0)); then
        printf '==== %s: ok in %ds\n' "$name" "$took"
        results+=("$(printf 'ok      %5ds  %s' "$took" "$name")")
    else
        printf '==== %s: FAILED (exit %d) in %ds\n' "$name" "$rc" "$took"
        results+=("$(printf 'FAILED  %5ds  %s (exit %d)' "$took" "$name" "$rc")")
        failures=$((failures + 1))
    fi
}

skip_step() {
    printf '\n==== %s: SKIPPED (%s)\n' "$1" "$2"
    results+=("$(printf 'skipped %5s   %s (%s)' - "$1" "$2")")
}

infra() {
    echo "A server that does not answer fails this run (CI=${CI:-false}); tests never skip for lack of one."
    bash scripts/infra.sh
}

clippy() { cargo clippy --workspace --all-targets --locked -- -D warnings; }

asyncapi() {
    bash scripts/validate-asyncapi.sh --selftest
    bash scripts/validate-asyncapi.sh
}

k8s() {
    bash scripts/validate-k8s.sh
    bash scripts/validate-k8s-selftest.sh
}

shell_lint() { shellcheck scripts/*.sh .ci/run; }

tests() {
    if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest run --workspace --locked --no-fail-fast
    else
        echo "cargo-nextest is not installed; using cargo test"
        cargo test --workspace --locked --no-fail-fast
    fi
}

doctests() { cargo test --doc --workspace --locked; }

# Doc tests compile every library once more; only worth it when some doc
# comment has a code block to run.
has_doctests() {
    grep -rqE '^[[:space:]]*//[/!].*```' --include='*.rs' services proto integration-tests 2>/dev/null
}

echo "omni test suite: $(cargo --version 2>/dev/null || echo 'cargo missing'), CARGO_TARGET_DIR=$CARGO_TARGET_DIR"

run_step infra infra
if [[ $SKIP_CARGO == 1 ]]; then
    skip_step fmt "SKIP_CARGO=1"
    skip_step clippy "SKIP_CARGO=1"
else
    run_step fmt cargo fmt --all --check
    run_step clippy clippy
fi
run_step proto bash scripts/check-proto.sh
run_step asyncapi asyncapi
run_step k8s k8s
if command -v shellcheck >/dev/null; then
    run_step shell shell_lint
else
    skip_step shell "shellcheck not installed; apt-get install -y shellcheck"
fi
if [[ $SKIP_CARGO == 1 ]]; then
    skip_step tests "SKIP_CARGO=1"
    skip_step doctests "SKIP_CARGO=1"
else
    run_step tests tests
    if has_doctests; then
        run_step doctests doctests
    else
        skip_step doctests "no doc comment has a code block"
    fi
fi

printf '\n==== summary (%ds in all)\n' "$SECONDS"
printf '%s\n' "${results[@]}"
if ((failures)); then
    printf '%d step(s) FAILED\n' "$failures"
    exit 1
fi
echo "every step passed"
