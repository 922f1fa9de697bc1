#!/usr/bin/env bash
# Builds etcd from the etcd server module (go.etcd.io/etcd/server/v3, whose root package is the `etcd` command) at
# the version pinned by hack/etcd/versions/<version>/go.mod + go.sum into ~/.cache/dra-kwok/etcd/<version>/etcd: the
# etcd the test control plane runs (issue #17; Debian's etcd-server is 3.4, which Kubernetes 1.34 no longer supports).
# The version is the one the Kubernetes version (K8S_VERSION, default hack/controlplane/K8S_VERSION) is tested with,
# recorded in hack/controlplane/versions/<k8s>/ETCD_VERSION; ETCD_VERSION overrides it.
# Idempotent: a cached binary is reused. Exit status and failure discipline: hack/lib/gobuild.sh
# (`etcd: FAILED: <step>`, no half-written binary left in the cache).
set -euo pipefail

here_dir="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/gobuild.sh
source "$here_dir/../lib/gobuild.sh"
k8s="${K8S_VERSION:-$(cat "$here_dir/../controlplane/K8S_VERSION")}"  # the harness picks etcd the same way
k8s="${k8s#v}"
default_k8s="$(cat "$here_dir/../controlplane/K8S_VERSION")"
version="${ETCD_VERSION:-}"
if [ -z "$version" ] && [ -f "$here_dir/../controlplane/versions/$k8s/ETCD_VERSION" ]; then
  version="$(cat "$here_dir/../controlplane/versions/$k8s/ETCD_VERSION")"
elif [ -z "$version" ]; then  # a Kubernetes version we pin nothing for: the default's etcd
  version="$(cat "$here_dir/../controlplane/versions/$default_k8s/ETCD_VERSION" 2>/dev/null || true)"
fi
pin="$here_dir/versions/$version"
if [ -z "$version" ] || [[ ! $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || [ ! -f "$pin/go.mod" ]; then
  echo "etcd: FAILED: no etcd pinned for Kubernetes $k8s (hack/controlplane/versions/$k8s/ETCD_VERSION names a" \
       "directory of hack/etcd/versions/: $(ls "$here_dir/versions" | tr '\n' ' ')); set ETCD_VERSION to one of those" >&2
  exit 1
fi
out="$(gobuild_cache_root)/etcd/$version"
if [ -x "$out/etcd" ]; then
  echo "etcd: etcd $version cached in $out"
  exit 0
fi

gobuild_begin etcd "$out"
step="creating $out"
mkdir -p "$out"
# The module graph is exactly go.sum's (-mod=readonly): nothing is resolved at build time, nothing in the repo written.
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly
cd "$pin"
echo "etcd: building etcd $version from source (first time: ~1.5 min on 2 cores; cached afterwards)"
gobuild_ticker etcd 90
gobuild_build etcd -trimpath -ldflags "-s -w" go.etcd.io/etcd/server/v3
step="done"
echo "etcd: etcd $version ready in $out"
