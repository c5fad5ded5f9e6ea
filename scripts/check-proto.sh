#!/usr/bin/env bash
# Checks the gRPC contracts in proto/ with buf: lint (proto/buf.yaml if there is
# one, buf's STANDARD rules otherwise), formatting, and breaking changes against
# the main branch's proto/ once main has any.
#
# buf runs from the npm registry through npx, pinned, with its npm cache kept
# between runs (npm_config_cache, default ~/.cache/omni-npm).
# Environment:
#   OMNI_BUF_AGAINST  a git ref to check breaking changes against instead of main
#                     (useful on main itself, e.g. OMNI_BUF_AGAINST=HEAD~1)
set -euo pipefail

readonly BUF_VERSION=1.75.0
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export npm_config_cache=${npm_config_cache:-${XDG_CACHE_HOME:-$HOME/.cache}/omni-npm}
# npm's own notices are not what this step is about.
export npm_config_loglevel=error npm_config_update_notifier=false npm_config_fund=false

buf() { npx --yes "@bufbuild/buf@$BUF_VERSION" "$@"; }

if ! find proto -name '*.proto' -print -quit 2>/dev/null | grep -q .; then
    echo "check-proto: SKIPPED: no .proto files under proto/ yet"
    exit 0
fi

failed=0
if buf lint proto; then
    echo "check-proto: buf lint ok"
else
    echo "check-proto: buf lint FAILED" >&2
    failed=1
fi
# -d prints the diff a `buf format -w proto` would apply.
if buf format -d --exit-code proto; then
    echo "check-proto: buf format ok"
else
    echo "check-proto: buf format FAILED (fix with: npx @bufbuild/buf@$BUF_VERSION format -w proto)" >&2
    failed=1
fi

against=${OMNI_BUF_AGAINST:-}
if [[ -z $against ]]; then
    if ! git rev-parse -q --verify refs/heads/main >/dev/null; then
        echo "check-proto: buf breaking SKIPPED: no local main branch to compare with"
    elif [[ $(git rev-parse HEAD) == "$(git rev-parse refs/heads/main)" ]] &&
        git diff --quiet HEAD -- proto &&
        [[ -z $(git ls-files --others --exclude-standard -- proto) ]]; then
        echo "check-proto: buf breaking SKIPPED: proto/ is main's, nothing to compare (set OMNI_BUF_AGAINST=<ref> to compare with an older commit)"
    else
        against=main
    fi
fi
if [[ -n $against ]]; then
    if ! git ls-tree -r --name-only "$against" -- proto | grep -q '\.proto$'; then
        echo "check-proto: buf breaking SKIPPED: $against has no proto/*.proto yet (v1 has not landed)"
    elif buf breaking proto --against ".git#ref=$(git rev-parse "$against"),subdir=proto"; then
        echo "check-proto: buf breaking ok (against $against)"
    else
        echo "check-proto: buf breaking FAILED against $against" >&2
        failed=1
    fi
fi
exit "$failed"
