#!/usr/bin/env bash
# Validates docs/asyncapi.yaml (the event contract) with the reference AsyncAPI
# parser. The parser is installed from scripts/asyncapi/package-lock.json into
# a cache dir keyed by the lock file's hash, so runs after the first are offline
# and a dependency bump installs afresh.
#
# Usage: scripts/validate-asyncapi.sh [DOCUMENT]   (default docs/asyncapi.yaml)
#        scripts/validate-asyncapi.sh --selftest   (the parser accepts a valid
#                                     fixture and rejects a broken one)
# Environment: OMNI_NPM_TOOLS (default ~/.cache/omni-npm-tools),
#              npm_config_cache (default ~/.cache/omni-npm)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$ROOT/scripts/asyncapi
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}
export npm_config_cache=${npm_config_cache:-$CACHE/omni-npm}

note() { printf 'validate-asyncapi: %s\n' "$*" >&2; }

install_parser() {
    local key
    key=$(cat "$HERE/package.json" "$HERE/package-lock.json" | sha256sum | cut -c1-16)
    tools=${OMNI_NPM_TOOLS:-$CACHE/omni-npm-tools}/asyncapi-$key
    [[ -f $tools/.installed ]] && return 0
    command -v npm >/dev/null || {
        note "npm is not installed (Debian: apt-get install -y nodejs npm)"
        return 1
    }
    note "installing @asyncapi/parser into $tools"
    rm -rf "$tools"
    mkdir -p "$tools"
    cp "$HERE/package.json" "$HERE/package-lock.json" "$tools/"
    # --ignore-scripts: the parser needs no install scripts, and one dependency's
    # only script is usage analytics.
    (cd "$tools" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    touch "$tools/.installed"
}

if [[ ${1:-} == --selftest ]]; then
    install_parser
    if ! node "$HERE/validate.cjs" "$HERE/testdata/valid.yaml" "$tools"; then
        note "selftest: the valid fixture was rejected"
        exit 1
    fi
    if node "$HERE/validate.cjs" "$HERE/testdata/invalid.yaml" "$tools" >/dev/null 2>&1; then
        note "selftest: the invalid fixture was accepted"
        exit 1
    fi
    echo "validate-asyncapi: selftest ok (valid fixture accepted, invalid fixture rejected)"
    exit 0
fi

document=${1:-$ROOT/docs/asyncapi.yaml}
if [[ ! -f $document ]]; then
    # The event contract is being written; until it lands there is nothing to check.
    echo "validate-asyncapi: SKIPPED: $document does not exist yet"
    exit 0
fi
install_parser
node "$HERE/validate.cjs" "$document" "$tools"
