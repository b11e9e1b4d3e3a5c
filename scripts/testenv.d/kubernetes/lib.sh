# Shared by 30-kubernetes.sh, 40-helm.sh and regen.sh (sourced, not run).
# Go caches live under $DORAFLOW_CACHE/go so a warm rebuild needs no network and `rm -rf` of the
# cache folder removes everything (-modcacherw keeps the module cache deletable).
kube_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$kube_dir/versions.env"
export DORAFLOW_CACHE="${DORAFLOW_CACHE:-$HOME/.cache/doraflow}"
bin_dir="$DORAFLOW_CACHE/bin"
mkdir -p "$bin_dir"

setup_go() {
  if ! command -v go >/dev/null 2>&1; then
    if [[ -x /usr/local/go/bin/go ]]; then export PATH="/usr/local/go/bin:$PATH"; else
      echo "  go not found (need Go >= 1.26 to build the control plane)" >&2; return 1; fi
  fi
  export GOPATH="$DORAFLOW_CACHE/go/path"
  export GOMODCACHE="$DORAFLOW_CACHE/go/mod"
  export GOCACHE="$DORAFLOW_CACHE/go/build"
  export GOFLAGS="-modcacherw"
  export GOTOOLCHAIN=local   # the machine's Go (1.26.x) satisfies every go.mod here; never fetch another
  export CGO_ENABLED=0       # static binaries, as the upstream releases are
  export GO111MODULE=on
}

# Staging version of the k8s.io/* modules that belong to $KUBE_VERSION: v1.36.3 -> v0.36.3
kube_staging_version() { echo "v0.${KUBE_VERSION#v1.}"; }
