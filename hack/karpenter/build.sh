#!/usr/bin/env bash
# Builds Karpenter's KWOK provider (the `kwok` main package of sigs.k8s.io/karpenter: Karpenter's controllers with the
# KWOK cloud provider, which "launches" an instance by creating a KWOK Node) at the version pinned by
# hack/karpenter/go.mod + go.sum into ~/.cache/dra-kwok/karpenter/<version>/karpenter-kwok, so that
# tests/e2e/test_karpenter.py can run the real Karpenter against the test control plane (issue #17). Beside it,
# crds/: the CRDs that provider installs, copied from the same module (kwok/charts/crds: karpenter.sh NodePool,
# NodeClaim, NodeOverlay, autoscaling.x-k8s.io CapacityBuffer; kwok/apis/crds: karpenter.kwok.sh KWOKNodeClass).
#
# Karpenter v1.15.0 needs Go >= 1.26.9: the build runs with GOTOOLCHAIN=go1.27.3 (override with
# DRA_KWOK_KARPENTER_GOTOOLCHAIN), which the go command fetches from the module proxy as a module the first time.
# Measured on the 2 shared cores of this project's machine: with a cold Go build cache (GOCACHE=$(mktemp -d)) 3.8 min
# wall (4.0 min of CPU) on otherwise quiet cores, 5.4 min wall (5.3 min of CPU) while two e2e runs shared them;
# with Go's build cache warm (our binary deleted, Go's cache kept) 3 s.
# Idempotent: a cached binary is reused. Exit status and failure discipline: hack/lib/gobuild.sh
# (`karpenter: FAILED: <step>`, no half-written binary left in the cache).
set -euo pipefail

here_dir="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/gobuild.sh
source "$here_dir/../lib/gobuild.sh"
version=$(gobuild_pinned_version karpenter sigs.k8s.io/karpenter "$here_dir/go.mod")
out="$(gobuild_cache_root)/karpenter/$version"
crds=(
  kwok/charts/crds/karpenter.sh_nodepools.yaml
  kwok/charts/crds/karpenter.sh_nodeclaims.yaml
  kwok/charts/crds/karpenter.sh_nodeoverlays.yaml
  kwok/charts/crds/autoscaling.x-k8s.io_capacitybuffers.yaml
  kwok/apis/crds/karpenter.kwok.sh_kwoknodeclasses.yaml
)
cached=1
[ -x "$out/karpenter-kwok" ] || cached=0
for f in "${crds[@]}"; do [ -f "$out/crds/$(basename "$f")" ] || cached=0; done
if [ "$cached" = 1 ]; then
  echo "karpenter: karpenter-kwok $version cached in $out"
  exit 0
fi

gobuild_begin karpenter "$out"
step="creating $out"
mkdir -p "$out/crds"
# The module graph is exactly go.sum's (-mod=readonly): nothing is resolved at build time, nothing in the repo written.
export GOTOOLCHAIN="${DRA_KWOK_KARPENTER_GOTOOLCHAIN:-go1.27.3}" GOFLAGS=-mod=readonly
cd "$here_dir"
if [ ! -x "$out/karpenter-kwok" ]; then
  echo "karpenter: building Karpenter's KWOK provider $version from source with $GOTOOLCHAIN" \
       "(first time: ~4 min on 2 idle cores; cached afterwards)"
  gobuild_ticker karpenter-kwok 240
  gobuild_build karpenter-kwok -trimpath -ldflags "-s -w" sigs.k8s.io/karpenter/kwok
fi

step="copying the CRDs of Karpenter's KWOK provider from the sigs.k8s.io/karpenter module"
moddir=$(go list -m -f '{{.Dir}}' sigs.k8s.io/karpenter)
for f in "${crds[@]}"; do
  tmp="$out/crds/.$(basename "$f").tmp.$$"
  gobuild_tmp "$tmp"
  cp "$moddir/$f" "$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$out/crds/$(basename "$f")"
done
gobuild_tmp ""
step="done"
echo "karpenter: karpenter-kwok $version ready in $out"
