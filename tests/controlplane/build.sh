#!/usr/bin/env bash
# Builds a real Kubernetes control plane from Go modules for the `realcluster` tests:
# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from k8s.io/kubernetes at one
# pinned version (through the wrapper module in k8s/<version>/, which replaces every staging module
# with its v0.N.x release), etcd from go.etcd.io/etcd/server/v3 at the version kubeadm pairs with
# that release (etcd/<version>/), and kwok from sigs.k8s.io/kwok.
#
# Usage: tests/controlplane/build.sh [K8S_VERSION]      (default: $STSFIX_K8S_VERSION or v1.34.4)
# Prints the directory holding the six binaries. Everything lands under
# ~/.cache/stsfix-controlplane (override with STSFIX_CONTROLPLANE_CACHE): the module cache and the
# build cache are shared by versions, the binaries sit in <version>/bin with a stamp of what built
# them, so a second run with the same inputs returns at once.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=${1:-${STSFIX_K8S_VERSION:-v1.34.4}}
kwok_version=v0.8.0

# etcd as kubeadm pairs it: cmd/kubeadm/app/constants/constants.go, SupportedEtcdVersion.
case "$version" in
  v1.34.*) etcd_version=v3.6.5 ;;
  v1.37.*) etcd_version=v3.6.5 ;;
  *) echo "build.sh: no etcd pairing known for $version (add it here and a k8s/$version module)" >&2; exit 2 ;;
esac
k8s_module="$here/k8s/$version"
etcd_module="$here/etcd/$etcd_version"
[ -f "$k8s_module/go.mod" ] || { echo "build.sh: no wrapper module $k8s_module" >&2; exit 2; }

cache=${STSFIX_CONTROLPLANE_CACHE:-$HOME/.cache/stsfix-controlplane}
export GOMODCACHE="$cache/gomodcache" GOCACHE="$cache/gocache" GOFLAGS="-modcacherw -buildvcs=false"
export CGO_ENABLED=0 GOTOOLCHAIN=local
bin="$cache/$version/bin"
stamp=$(cat "$here/build.sh" "$k8s_module/go.mod" "$k8s_module/go.sum" "$etcd_module/go.mod" \
  "$etcd_module/go.sum" <(echo "$kwok_version $(go env GOVERSION)") | sha256sum | cut -c1-16)
if [ -f "$bin/.stamp" ] && [ "$(cat "$bin/.stamp")" = "$stamp" ]; then
  echo "$bin"
  exit 0
fi

log() { echo "build.sh: $*" >&2; }
tmp="$bin.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT

minor=${version#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit=stsfix-controlplane"
  ldflags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
log "kubernetes $version: kube-apiserver kube-controller-manager kube-scheduler kubectl"
(cd "$k8s_module" && go build -trimpath -tags=selinux,notest -ldflags="$ldflags" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
log "etcd $etcd_version"
(cd "$etcd_module" && go build -trimpath -ldflags="-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3)
log "kwok $kwok_version"
GOBIN="$tmp" go install -trimpath -ldflags="-s -w" "sigs.k8s.io/kwok/cmd/kwok@$kwok_version"

"$tmp/kube-apiserver" --version | grep -qx "Kubernetes $version" \
  || { log "kube-apiserver reports $("$tmp/kube-apiserver" --version), not $version"; exit 1; }
echo "$stamp" >"$tmp/.stamp"
rm -rf "$bin"
mv "$tmp" "$bin"
trap - EXIT
echo "$bin"
