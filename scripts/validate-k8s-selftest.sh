#!/usr/bin/env bash
# Proves scripts/validate-k8s.sh can fail: copies k8s/ into a temp dir, checks
# the untouched copy passes, then breaks it in one way at a time and asserts the
# validator rejects each. A validator that passes everything would pass these
# manifests too, so without this its green means nothing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VALIDATE=$ROOT/scripts/validate-k8s.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fresh_copy() {
    rm -rf "$work/k8s"
    cp -R "$ROOT/k8s" "$work/k8s"
}

# break_with NAME FILE SED_EXPR: applies SED_EXPR to FILE (relative to k8s/) in
# a fresh copy, checks the edit changed something, and expects validation to fail.
passed=0
failed=0
break_with() {
    local name=$1 file=$2 expr=$3
    fresh_copy
    sed -i -e "$expr" "$work/k8s/$file"
    if cmp -s "$ROOT/k8s/$file" "$work/k8s/$file"; then
        echo "selftest: $name: the edit did not apply to $file; update this selftest" >&2
        failed=$((failed + 1))
        return
    fi
    if bash "$VALIDATE" "$work/k8s" >"$work/out" 2>&1; then
        echo "selftest: $name: FAIL (the validator accepted a broken manifest)" >&2
        failed=$((failed + 1))
    else
        echo "selftest: $name: ok (rejected)"
        # The reason, so a rejection for some unrelated cause is visible.
        grep -m1 -E "ERROR|error|failed|Couldn't find schema" "$work/out" | cut -c1-200 | sed 's/^/    /' || true
        passed=$((passed + 1))
    fi
}

fresh_copy
if bash "$VALIDATE" "$work/k8s" >"$work/out" 2>&1; then
    echo "selftest: untouched copy: ok (accepted)"
    passed=$((passed + 1))
else
    echo "selftest: untouched copy: FAIL (rejected; the breakages below would prove nothing)" >&2
    cat "$work/out" >&2
    exit 1
fi

# A string where the schema wants an integer.
break_with "wrong type" base/inventory.yaml \
    's/revisionHistoryLimit: 5/revisionHistoryLimit: "five"/'
# A field the schema does not know: only strict mode catches it.
break_with "unknown field" base/member.yaml \
    's/^\(\s*\)imagePullPolicy: IfNotPresent/&\n\1imagePulPolicy: Always/'
# An apiVersion that does not exist: no schema to check against.
break_with "unknown apiVersion" base/order-routing.yaml \
    's#^apiVersion: autoscaling/v2$#apiVersion: autoscaling/v9#'
# An overlay that no longer renders.
break_with "broken kustomization" overlays/local/kustomization.yaml \
    's#- ../../base#- ../../no-such-base#'

if ((failed)); then
    echo "selftest: $failed of $((passed + failed)) cases misbehaved" >&2
    exit 1
fi
echo "selftest: all $passed cases behaved as expected"
