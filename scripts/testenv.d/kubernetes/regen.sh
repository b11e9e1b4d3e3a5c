#!/usr/bin/env bash
# Regenerate the build modules (kube/, etcd/, helm/ go.mod + go.sum) from versions.env.
# Only needed when a version changes; 30-kubernetes.sh and 40-helm.sh use the committed files.
#
# Why modules of our own: k8s.io/kubernetes' go.mod requires its ~30 staging modules (k8s.io/api,
# k8s.io/client-go, ...) at v0.0.0 and replaces them with ./staging/src/...; etcd's server module
# replaces its siblings with ../api etc. Replace directives of a dependency are ignored and
# `go install pkg@version` refuses modules that have them, so we require the module and replace
# each staging module with its published version (v1.Y.Z -> v0.Y.Z) ourselves.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
setup_go

tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT

# --- kube-apiserver, kube-controller-manager, kubectl -----------------------------------------
mkdir "$tmp/kube" && cd "$tmp/kube"
go mod init doraflow.test/testenv/kube >/dev/null 2>&1
kube_mod="$(cd /tmp && go list -m -f '{{.GoMod}}' "k8s.io/kubernetes@$KUBE_VERSION")"
go_line="$(awk '$1=="go"{print $2; exit}' "$kube_mod")"
go mod edit -go="$go_line" -require="k8s.io/kubernetes@$KUBE_VERSION"
# carry k8s.io/kubernetes' godebug defaults over: they only take effect in the main module
while read -r gd; do go mod edit -godebug="$gd"; done < <(awk '$1=="godebug" && $2!="(" {print $2}' "$kube_mod")
staging="$(kube_staging_version)"
# every k8s.io module the kubernetes go.mod requires at v0.0.0 is a staging module
for m in $(awk '$1 ~ /^k8s\.io\// && $2=="v0.0.0" {print $1}' "$kube_mod"); do
  go mod edit -replace="$m=$m@$staging"
done
go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION" \
       "k8s.io/kubernetes/cmd/kube-controller-manager@$KUBE_VERSION" \
       "k8s.io/kubernetes/cmd/kubectl@$KUBE_VERSION"
cp go.mod go.sum "$kube_dir/kube/"

# --- etcd ------------------------------------------------------------------------------------
mkdir "$tmp/etcd" && cd "$tmp/etcd"
go mod init doraflow.test/testenv/etcd >/dev/null 2>&1
etcd_mod="$(cd /tmp && go list -m -f '{{.GoMod}}' "go.etcd.io/etcd/server/v3@$ETCD_VERSION")"
go mod edit -go="$(awk '$1=="go"{print $2; exit}' "$etcd_mod")"
# its siblings (api, client/pkg, client/v3, pkg) are replaced with ../x upstream; the published
# modules of the same version are what the release is built from
go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
cp go.mod go.sum "$kube_dir/etcd/"

# --- helm ------------------------------------------------------------------------------------
mkdir "$tmp/helm" && cd "$tmp/helm"
go mod init doraflow.test/testenv/helm >/dev/null 2>&1
helm_mod="$(cd /tmp && go list -m -f '{{.GoMod}}' "helm.sh/helm/v3@$HELM_VERSION")"
go mod edit -go="$(awk '$1=="go"{print $2; exit}' "$helm_mod")"
go get "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
cp go.mod go.sum "$kube_dir/helm/"

echo "regenerated kube/, etcd/, helm/ go.mod + go.sum for kubernetes $KUBE_VERSION, etcd $ETCD_VERSION, helm $HELM_VERSION"
