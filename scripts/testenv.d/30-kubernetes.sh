#!/usr/bin/env bash
# A real Kubernetes control plane for the tests, the way controller-runtime's envtest runs one:
# etcd + kube-apiserver + kube-controller-manager as local processes, plus kubectl.
#
# Built once from the Go module proxy into $DORAFLOW_CACHE/bin (versions in kubernetes/versions.env,
# build modules in kubernetes/{kube,etcd}/go.mod); skipped when the binaries there already report
# the right version. With KUBEBUILDER_ASSETS set, the binaries in that folder are used instead:
# nothing is built or copied, they are only checked.
# Details and measured build times: docs/testenv-kubernetes.md
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/kubernetes/lib.sh"

kube_release="${KUBE_VERSION#v}"           # 1.36.3
kube_major="${kube_release%%.*}"           # 1
kube_minor="${kube_release#*.}"; kube_minor="${kube_minor%%.*}"  # 36
etcd_release="${ETCD_VERSION#v}"           # 3.6.8

# first line of `<binary> --version`-style output, or nothing if it cannot run
version_of() {
  local bin="$1"; shift
  [[ -x "$bin" ]] || return 0
  "$bin" "$@" 2>/dev/null | head -n 1 || true
}

# Each check prints the reported version; returns 0 if it is the one we build.
check_kube_apiserver()   { local v; v="$(version_of "$1" --version)"; echo "$v"; [[ "$v" == "Kubernetes $KUBE_VERSION" ]]; }
check_kube_controller()  { local v; v="$(version_of "$1" --version)"; echo "$v"; [[ "$v" == "Kubernetes $KUBE_VERSION" ]]; }
check_kubectl()          { local v; v="$(version_of "$1" version --client)"; echo "$v"; [[ "$v" == "Client Version: $KUBE_VERSION" ]]; }
check_etcd()             { local v; v="$(version_of "$1" --version)"; echo "$v"; [[ "$v" == "etcd Version: $etcd_release" ]]; }

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  echo "  KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS: using those binaries (nothing is built)"
  missing=0
  for name in etcd kube-apiserver kubectl; do
    if [[ ! -x "$KUBEBUILDER_ASSETS/$name" ]]; then
      echo "  missing or not executable: $KUBEBUILDER_ASSETS/$name" >&2; missing=1
    fi
  done
  (( missing == 0 )) || exit 1
  echo "  etcd:                    $(version_of "$KUBEBUILDER_ASSETS/etcd" --version)"
  echo "  kube-apiserver:          $(version_of "$KUBEBUILDER_ASSETS/kube-apiserver" --version)"
  echo "  kubectl:                 $(version_of "$KUBEBUILDER_ASSETS/kubectl" version --client)"
  if [[ -x "$KUBEBUILDER_ASSETS/kube-controller-manager" ]]; then
    echo "  kube-controller-manager: $(version_of "$KUBEBUILDER_ASSETS/kube-controller-manager" --version)"
  else
    echo "  kube-controller-manager: absent (garbage collection and namespace deletion won't happen;" \
         "tests that need them skip)"
  fi
  exit 0
fi

# Build one binary into $bin_dir/<name> from a build module (a copy of kubernetes/<module>/).
#   build <name> <module> <package> <ldflags>
build() {
  local name="$1" module="$2" pkg="$3" ldflags="$4"
  local src="$DORAFLOW_CACHE/go/src/$module"
  mkdir -p "$src"
  cp "$kube_dir/$module/go.mod" "$kube_dir/$module/go.sum" "$src/"
  local start; start=$(date +%s)
  echo "  building $name ($pkg) ..."
  # -trimpath and -s -w as the upstream release builds; the tmp name keeps a half-written binary
  # from ever being found by the tests (or by a parallel run)
  local timer=()
  [[ -x /usr/bin/time ]] && timer=(/usr/bin/time -f "  $name: %e s wall, %M KB peak RSS of the largest process")
  (cd "$src" && "${timer[@]}" go build -trimpath -ldflags "-s -w $ldflags" -o "$bin_dir/.$name.tmp.$$" "$pkg")
  mv -f "$bin_dir/.$name.tmp.$$" "$bin_dir/$name"
  echo "  built $name in $(( $(date +%s) - start ))s"
}

kube_ldflags() {
  local flags="" pkg
  # hack/lib/version.sh sets the same variables in both packages; "archive" is what upstream
  # reports for a build from exported source without .git
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$kube_major -X $pkg.gitMinor=$kube_minor"
    flags+=" -X $pkg.gitCommit= -X $pkg.gitTreeState=archive"
    flags+=" -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
  echo "$flags"
}

need_go=1
ensure() {  # ensure <name> <check-fn> <module> <package> <ldflags>
  local name="$1" check="$2" module="$3" pkg="$4" ldflags="$5" v
  if v="$("$check" "$bin_dir/$name")"; then
    printf '  %-24s %s (cached)\n' "$name:" "$v"
    return
  fi
  if (( need_go )); then setup_go; need_go=0; fi
  build "$name" "$module" "$pkg" "$ldflags"
  if ! v="$("$check" "$bin_dir/$name")"; then
    echo "  $name was built but reports '$v', expected $KUBE_VERSION / etcd $etcd_release" >&2
    exit 1
  fi
  printf '  %-24s %s\n' "$name:" "$v"
}

# etcd's own build script sets GitSHA from git; without a checkout it uses GitNotFound as well.
# Its Version is a constant in go.etcd.io/etcd/api/v3/version, right for every published release.
ensure etcd check_etcd etcd go.etcd.io/etcd/server/v3 \
  "-X go.etcd.io/etcd/api/v3/version.GitSHA=GitNotFound"
ensure kube-apiserver check_kube_apiserver kube k8s.io/kubernetes/cmd/kube-apiserver "$(kube_ldflags)"
ensure kube-controller-manager check_kube_controller kube k8s.io/kubernetes/cmd/kube-controller-manager \
  "$(kube_ldflags)"
ensure kubectl check_kubectl kube k8s.io/kubernetes/cmd/kubectl "$(kube_ldflags)"
