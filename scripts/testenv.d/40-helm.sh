#!/usr/bin/env bash
# helm v3 for the tests, built once from the Go module proxy into $DORAFLOW_CACHE/bin/helm
# (version in kubernetes/versions.env, build module in kubernetes/helm/go.mod), with the release
# ldflags so `helm version` reports the real version and `.Capabilities.KubeVersion` is the
# Kubernetes minor helm was built against instead of the v1.20 fallback.
# With HELM_BIN set, that binary is used instead: nothing is built, it is only checked.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/kubernetes/lib.sh"

helm_version_of() { [[ -x "$1" ]] && "$1" version --template '{{.Version}}' 2>/dev/null || true; }

if [[ -n "${HELM_BIN:-}" ]]; then
  if [[ ! -x "$HELM_BIN" ]]; then echo "  HELM_BIN=$HELM_BIN is not an executable file" >&2; exit 1; fi
  echo "  helm: $(helm_version_of "$HELM_BIN") (HELM_BIN=$HELM_BIN, nothing is built)"
  exit 0
fi

helm="$bin_dir/helm"
if [[ "$(helm_version_of "$helm")" == "$HELM_VERSION" ]]; then
  echo "  helm: $HELM_VERSION (cached)"
  exit 0
fi

setup_go
src="$DORAFLOW_CACHE/go/src/helm"
mkdir -p "$src"
cp "$kube_dir/helm/go.mod" "$kube_dir/helm/go.sum" "$src/"
cd "$src"
# Helm's Makefile: the Kubernetes version helm reports to charts is client-go's v0.Y -> 1.Y
client_go="$(go list -m -f '{{.Version}}' k8s.io/client-go)"   # v0.37.0
k8s_minor="$(echo "$client_go" | cut -d. -f2)"
ldflags="-s -w"
ldflags+=" -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
ldflags+=" -X helm.sh/helm/v3/internal/version.metadata="
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done
start=$(date +%s)
echo "  building helm $HELM_VERSION (helm.sh/helm/v3/cmd/helm, Kubernetes libraries $client_go) ..."
timer=()
[[ -x /usr/bin/time ]] && timer=(/usr/bin/time -f "  helm: %e s wall, %M KB peak RSS of the largest process")
"${timer[@]}" go build -trimpath -ldflags "$ldflags" -o "$bin_dir/.helm.tmp.$$" helm.sh/helm/v3/cmd/helm
mv -f "$bin_dir/.helm.tmp.$$" "$helm"
got="$(helm_version_of "$helm")"
if [[ "$got" != "$HELM_VERSION" ]]; then
  echo "  helm was built but reports '$got', expected $HELM_VERSION" >&2; exit 1
fi
echo "  helm: $got (built in $(( $(date +%s) - start ))s)"
