#!/usr/bin/env bash
# Builds kube-apiserver, kube-scheduler, kube-controller-manager and kubectl from the k8s.io/kubernetes Go module
# (served by the Go module proxy) into ~/.cache/dra-kwok/k8s/<version>/. No prebuilt Kubernetes binary is
# downloadable here, so this is the only route; it is idempotent and skips binaries that already exist.
#
# Exit status and failure discipline: hack/lib/gobuild.sh (0 once every binary is in the cache; otherwise non-zero
# with `controlplane: FAILED: <step>`, and no half-written binary left in the cache; issue #13).
set -euo pipefail

here_dir="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/gobuild.sh
source "$here_dir/../lib/gobuild.sh"
version="${K8S_VERSION:-$(cat "$here_dir/K8S_VERSION")}"
version="${version#v}"
if [[ ! $version =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]]; then  # it becomes a path, a URL and a go.mod line
  echo "controlplane: FAILED: K8S_VERSION must be a Kubernetes version like 1.34.4 (got: '$version')" >&2
  exit 2
fi
cache_root="$(gobuild_cache_root)"
out="$cache_root/k8s/$version"
components=(kube-apiserver kube-scheduler kube-controller-manager kubectl)

missing=()
for c in "${components[@]}"; do [ -x "$out/$c" ] || missing+=("$c"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "controlplane: Kubernetes $version binaries cached in $out"
  exit 0
fi

gobuild_begin controlplane "$out"

export GOTOOLCHAIN=local GOFLAGS=-mod=mod
step="checking the Go toolchain"
gov=$(go env GOVERSION)
case "$gov" in
  go1.2[6]*) ;;
  go1.2[7-9]*|go1.[3-9]*) echo "controlplane: $gov breaks /openapi/v2 in kube-apiserver; build with Go 1.26" >&2; exit 1 ;;
  *) echo "controlplane: warning: untested Go $gov (Go 1.26 is the tested toolchain)" >&2 ;;
esac

staging_minor="0.${version#1.}"   # 1.34.4 -> 0.34.4
work="$cache_root/build/$version"
step="creating $work and $out"
mkdir -p "$work" "$out"
cd "$work"

if [ ! -f go.mod ] && [ -f "$here_dir/versions/$version/go.mod" ]; then
  # The supported versions' module graphs are pinned in the repo (versions/<v>/go.mod + go.sum): reproducible builds.
  cp "$here_dir/versions/$version/go.mod" "$here_dir/versions/$version/go.sum" .
fi
if [ ! -f go.mod ]; then
  step="resolving k8s.io/kubernetes v$version"
  echo "controlplane: resolving k8s.io/kubernetes v$version and its staging modules"
  gobuild_tmp "$work/go.mod.tmp.$$"
  upstream=$(curl -fsS "$(go env GOPROXY | cut -d, -f1)/k8s.io/kubernetes/@v/v$version.mod")
  {
    echo "module dra-kwok.local/controlplane"
    echo
    echo "go 1.24.0"
    echo
    echo "require k8s.io/kubernetes v$version"
    echo
    echo "replace ("
    grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' <<<"$upstream" | awk -v v="$staging_minor" '{print "\t" $1 " => " $1 " v" v}'
    echo ")"
  } > "go.mod.tmp.$$"
  mv "go.mod.tmp.$$" go.mod
  gobuild_tmp ""
fi

# Measured on 2 cores with a cold Go cache: kube-apiserver ~290 s (it compiles most of the shared code),
# then kube-scheduler ~25 s, kube-controller-manager ~60 s, kubectl ~40 s.
estimate() { case "$1" in kube-apiserver) echo 300 ;; kube-controller-manager) echo 60 ;; *) echo 40 ;; esac; }
echo "controlplane: building ${missing[*]} v$version from source (first time: ~7 min on 2 cores; cached afterwards)"
for c in "${missing[@]}"; do
  pkg="k8s.io/kubernetes/cmd/$c"
  gobuild_ticker "$c" "$(estimate "$c")"
  step="go get $pkg@v$version (building $c)"
  gobuild_run go get "$pkg@v$version"
  gobuild_build "$c" -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v$version -X k8s.io/client-go/pkg/version.gitVersion=v$version" "$pkg"
done
step="done"
echo "controlplane: Kubernetes $version binaries ready in $out"
