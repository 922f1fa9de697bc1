#!/usr/bin/env bash
# Builds the KWOK controller (sigs.k8s.io/kwok/cmd/kwok) at the version pinned by hack/kwok/go.mod + go.sum into
# ~/.cache/dra-kwok/kwok/<version>/kwok: what the test control plane, `make cluster-up` and `make demo` run to make
# KWOK nodes Ready and their pods Running, exactly as in a user's cluster (issue #17). Beside it, stages.yaml: KWOK's
# default stages, copied from the same module (the set its release ships as stage-fast.yaml, kustomize/stage/fast:
# node-initialize, node-heartbeat-with-lease, pod-ready, pod-complete, pod-delete), which the harness gives KWOK with
# --config, so that no Stage CRD is needed.
# Idempotent: a cached binary is reused. Exit status and failure discipline: hack/lib/gobuild.sh
# (`kwok: FAILED: <step>`, no half-written binary left in the cache).
set -euo pipefail

here_dir="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/gobuild.sh
source "$here_dir/../lib/gobuild.sh"
version=$(gobuild_pinned_version kwok sigs.k8s.io/kwok "$here_dir/go.mod")
out="$(gobuild_cache_root)/kwok/$version"
if [ -x "$out/kwok" ] && [ -f "$out/stages.yaml" ]; then
  echo "kwok: kwok $version cached in $out"
  exit 0
fi
stages=(
  kustomize/stage/node/fast/node-initialize.yaml
  kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
  kustomize/stage/pod/fast/pod-ready.yaml
  kustomize/stage/pod/fast/pod-complete.yaml
  kustomize/stage/pod/fast/pod-delete.yaml
)

gobuild_begin kwok "$out"
step="creating $out"
mkdir -p "$out"
# The module graph is exactly go.sum's (-mod=readonly): nothing is resolved at build time, nothing in the repo written.
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly
cd "$here_dir"
if [ ! -x "$out/kwok" ]; then
  # Measured with a cold Go cache: 3.6 min of CPU; 12 min wall on 2 cores shared with a Kubernetes build.
  echo "kwok: building kwok $version from source (first time: ~4 min on 2 idle cores; cached afterwards)"
  gobuild_ticker kwok 240
  gobuild_build kwok -trimpath -ldflags "-s -w" sigs.k8s.io/kwok/cmd/kwok
fi

step="copying KWOK's default stages from the sigs.k8s.io/kwok module"
moddir=$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
tmp="$out/.stages.yaml.tmp.$$"
gobuild_tmp "$tmp"
for f in "${stages[@]}"; do
  echo "---"
  cat "$moddir/$f"
done > "$tmp"
mv -f "$tmp" "$out/stages.yaml"
gobuild_tmp ""
step="done"
echo "kwok: kwok $version ready in $out"
