#!/usr/bin/env bash
# Renders every kustomize overlay under k8s/overlays and validates every object
# offline against the Kubernetes OpenAPI schemas (kubernetes-validate ships
# them), in strict mode: an unknown field, a wrong type or an unknown
# kind/apiVersion fails. Exits non-zero if any overlay does not render or any
# object is invalid.
#
# Usage: scripts/validate-k8s.sh [K8S_DIR]     (default: the repo's k8s/)
# Environment:
#   OMNI_VENV              virtualenv for the validator (default ~/.cache/omni-venv, kept between runs)
#   OMNI_K8S_VERSIONS      Kubernetes versions to validate against (default "1.30.0 1.37.0":
#                          the oldest we support, for the preStop sleep action, and the newest known)
set -euo pipefail

readonly KUBERNETES_VALIDATE_VERSION=1.37.0
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
K8S_DIR=$(cd "${1:-$ROOT/k8s}" && pwd)
VENV=${OMNI_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/omni-venv}
read -r -a K8S_VERSIONS <<<"${OMNI_K8S_VERSIONS:-1.30.0 1.37.0}"

note() { printf 'validate-k8s: %s\n' "$*" >&2; }

command -v kubectl >/dev/null || {
    note "kubectl is not installed (it renders the overlays with its built-in kustomize)"
    exit 1
}

validator=$VENV/bin/kubernetes-validate
if [[ $("$validator" --version 2>/dev/null) != "$KUBERNETES_VALIDATE_VERSION" ]]; then
    note "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

shopt -s nullglob
overlays=("$K8S_DIR"/overlays/*/)
if ((${#overlays[@]} == 0)); then
    note "no overlays under $K8S_DIR/overlays"
    exit 1
fi

failed=0
for overlay in "${overlays[@]}"; do
    name=$(basename "$overlay")
    rendered=$work/$name.yaml
    if ! kubectl kustomize "$overlay" >"$rendered" 2>"$work/$name.err"; then
        note "$name: kubectl kustomize failed:"
        cat "$work/$name.err" >&2
        failed=1
        continue
    fi
    objects=$(grep -c '^kind:' "$rendered" || true)
    overlay_ok=1
    for version in "${K8S_VERSIONS[@]}"; do
        # --quiet prints only warnings and errors. A kind with no schema is only a
        # warning to kubernetes-validate; here it is an error, because every
        # object we ship is a built-in kind and a typo in apiVersion must not pass.
        if ! out=$("$validator" --strict --quiet -k "$version" "$rendered" 2>&1) ||
            grep -q "Couldn't find schema" <<<"$out"; then
            note "$name: invalid against Kubernetes $version:"
            printf '%s\n' "$out" >&2
            overlay_ok=0
            failed=1
        fi
    done
    if ((overlay_ok)); then
        printf 'validate-k8s: %-10s ok (%s objects, Kubernetes %s)\n' "$name" "$objects" "${K8S_VERSIONS[*]}"
    fi
done
exit "$failed"
