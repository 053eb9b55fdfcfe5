#!/usr/bin/env bash
# Builds the real Kubernetes control-plane binaries the test rigs use, from the
# Go module proxy, at the versions pinned in scripts/versions.env:
#
#   etcd, kube-apiserver, kube-controller-manager, kubectl, helm, and what a
#   node needs (scripts/cluster.sh up --node): kubelet, kube-scheduler,
#   kube-proxy
#
# into a cache outside the repository, keyed by version:
#
#   $TRUNKLINE_CACHE/k8s/<component>-<version>/<binary>
#
# Warm (every binary present): a no-op. Cold: builds what is missing and prints
# how long each build took. No prebuilt binary is downloaded.
#
# Usage: scripts/build-k8s.sh            build what is missing, print the bin dir
#        scripts/build-k8s.sh --print    only print the bin paths (no build)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

cache=${TRUNKLINE_CACHE:-$HOME/.cache/trunkline}
k8s_dir="$cache/k8s/kubernetes-$K8S_VERSION"
etcd_dir="$cache/k8s/etcd-$ETCD_VERSION"
helm_dir="$cache/k8s/helm-$HELM_VERSION"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0

log() { printf '[build-k8s] %s\n' "$*" >&2; }

if [ "${1:-}" = "--print" ]; then
  echo "ETCD=$etcd_dir/etcd"
  echo "KUBE_APISERVER=$k8s_dir/kube-apiserver"
  echo "KUBE_CONTROLLER_MANAGER=$k8s_dir/kube-controller-manager"
  echo "KUBECTL=$k8s_dir/kubectl"
  echo "KUBELET=$k8s_dir/kubelet"
  echo "KUBE_SCHEDULER=$k8s_dir/kube-scheduler"
  echo "KUBE_PROXY=$k8s_dir/kube-proxy"
  echo "HELM=$helm_dir/helm"
  exit 0
fi

command -v go >/dev/null || { log "go is required (Go 1.26 expected)"; exit 1; }

# One build at a time per cache (CI and people may run this concurrently):
# a second caller waits, then finds the binaries built.
mkdir -p "$cache/k8s"
exec 9>"$cache/k8s/.build.lock"
flock 9

# timed NAME CMD...: runs CMD, prints the wall time it took.
timed() {
  local name=$1 start end
  shift
  start=$(date +%s)
  "$@"
  end=$(date +%s)
  log "built $name in $((end - start)) s"
}

# Kubernetes: k8s.io/kubernetes cannot be `go install`ed, because its go.mod
# replaces every staging module with a local path. A wrapper module requires
# it and points each staging module at its published v0.X.Y instead.
build_kubernetes() {
  local work minor staging
  work=$(mktemp -d)
  minor=${K8S_VERSION#*.}
  minor=${minor%%.*}
  (
    cd "$work"
    go mod init trunkline.local/k8s-build >/dev/null 2>&1
    go mod edit -require="k8s.io/kubernetes@v$K8S_VERSION"
    local gomod
    gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    staging=$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod")
    for m in $staging; do
      go mod edit -replace="$m=$m@v0.${K8S_VERSION#1.}"
    done
    cat >tools.go <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
EOF
    go mod tidy -e >/dev/null 2>&1 || true
    go get "k8s.io/kubernetes@v$K8S_VERSION" >/dev/null
    go mod tidy -e >/dev/null
    local ver="v$K8S_VERSION"
    local ldflags="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags="$ldflags -X $pkg.gitVersion=$ver -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
      ldflags="$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    mkdir -p "$k8s_dir.tmp"
    for cmd in "${k8s_commands[@]}"; do
      if [ ! -x "$k8s_dir/$cmd" ]; then
        timed "$cmd v$K8S_VERSION" go build -trimpath -ldflags "$ldflags" -o "$k8s_dir.tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd"
      fi
    done
  )
  mkdir -p "$k8s_dir"
  for f in "$k8s_dir.tmp"/*; do [ -e "$f" ] && mv "$f" "$k8s_dir/"; done
  rmdir "$k8s_dir.tmp" 2>/dev/null || true
  rm -rf "$work"
}

# etcd: the server's main package is go.etcd.io/etcd/server/v3, whose go.mod
# also has relative replaces; a wrapper module pins the sibling modules.
build_etcd() {
  local work
  work=$(mktemp -d)
  (
    cd "$work"
    go mod init trunkline.local/etcd-build >/dev/null 2>&1
    local v="v$ETCD_VERSION"
    for m in go.etcd.io/etcd/server/v3 go.etcd.io/etcd/api/v3 go.etcd.io/etcd/client/pkg/v3 \
      go.etcd.io/etcd/client/v3 go.etcd.io/etcd/pkg/v3; do
      go mod edit -require="$m@$v" -replace="$m=$m@$v"
    done
    cat >tools.go <<'EOF'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
EOF
    go mod tidy -e >/dev/null 2>&1 || true
    mkdir -p "$etcd_dir"
    timed "etcd v$ETCD_VERSION" go build -trimpath -ldflags "-s -w" -o "$etcd_dir/etcd.tmp" go.etcd.io/etcd/server/v3
    mv "$etcd_dir/etcd.tmp" "$etcd_dir/etcd"
  )
  rm -rf "$work"
}

build_helm() {
  mkdir -p "$helm_dir"
  local work
  work=$(mktemp -d)
  (
    cd "$work"
    go mod init trunkline.local/helm-build >/dev/null 2>&1
    go mod edit -require="helm.sh/helm/v3@v$HELM_VERSION"
    cat >tools.go <<'EOF'
//go:build tools

package tools

import _ "helm.sh/helm/v3/cmd/helm"
EOF
    go mod tidy -e >/dev/null 2>&1 || true
    timed "helm v$HELM_VERSION" go build -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" \
      -o "$helm_dir/helm.tmp" helm.sh/helm/v3/cmd/helm
    mv "$helm_dir/helm.tmp" "$helm_dir/helm"
  )
  rm -rf "$work"
}

# Every command built from k8s.io/kubernetes, in one wrapper module (so a
# warm Go build cache shares the packages they have in common).
k8s_commands=(kube-apiserver kube-controller-manager kubectl kubelet kube-scheduler kube-proxy)

total_start=$(date +%s)
built=0
if [ ! -x "$etcd_dir/etcd" ]; then build_etcd; built=1; fi
if [ ! -x "$helm_dir/helm" ]; then build_helm; built=1; fi
for cmd in "${k8s_commands[@]}"; do
  if [ ! -x "$k8s_dir/$cmd" ]; then
    build_kubernetes
    built=1
    break
  fi
done
if [ $built = 1 ]; then
  log "cold build finished in $(($(date +%s) - total_start)) s"
else
  log "warm: all binaries present in $cache/k8s (no build)"
fi
"$0" --print
