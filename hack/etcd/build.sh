#!/usr/bin/env bash
# Builds etcd from the etcd server module (go.etcd.io/etcd/server/v3, whose root package is the `etcd` command) at
# the version pinned by hack/etcd/go.mod + go.sum into ~/.cache/dra-kwok/etcd/<version>/etcd: the etcd the test
# control plane runs (issue #17; Debian's etcd-server is 3.4, which Kubernetes 1.34 no longer supports).
# Idempotent: a cached binary is reused. Exit status and failure discipline: hack/lib/gobuild.sh
# (`etcd: FAILED: <step>`, no half-written binary left in the cache).
set -euo pipefail

here_dir="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/gobuild.sh
source "$here_dir/../lib/gobuild.sh"
version=$(sed -n 's|^require go\.etcd\.io/etcd/server/v3 v||p' "$here_dir/go.mod")
if [ -z "$version" ]; then
  echo "etcd: FAILED: no 'require go.etcd.io/etcd/server/v3 vX.Y.Z' line in $here_dir/go.mod" >&2
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
cd "$here_dir"
echo "etcd: building etcd $version from source (first time: ~1.5 min on 2 cores; cached afterwards)"
gobuild_ticker etcd 90
gobuild_build etcd -trimpath -ldflags "-s -w" go.etcd.io/etcd/server/v3
step="done"
echo "etcd: etcd $version ready in $out"
