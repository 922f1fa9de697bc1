# Sourced by hack/controlplane/build.sh (Kubernetes) and hack/etcd/build.sh (etcd): the failure discipline both
# share (issue #13). Exit status 0 once every binary is in the cache; non-zero after any failed step, with a line
# `<label>: FAILED: <step>` on stderr. A binary is built to a per-run temp file and renamed, so the cache never holds
# a half-written one; no trap's last command can change the exit status.
#
#   gobuild_begin <label> <out-dir>   install the traps; <label> prefixes every line (`controlplane`, `etcd`)
#   step="..."                        what runs next (the FAILED line quotes it)
#   gobuild_tmp <path>                a file being written that must not survive a failure (cleared once renamed)
#   gobuild_run <cmd...>              run a command as a child the INT/TERM traps can stop
#   gobuild_ticker <name> <estimate>  a progress line every DRA_KWOK_BUILD_TICK seconds (default 30) until
#                                     gobuild_build or the exit stops it; `built <name> in Ns` counts from here
#   gobuild_build <name> <go build flags and package...>   build <out-dir>/<name> via a temp file and a rename
#   gobuild_pinned_version <label> <module> <go.mod>       the version a hack/*/go.mod pins (kwok, karpenter)

gobuild_cache_root() {  # DRA_KWOK_CACHE (made absolute: the scripts cd), else $XDG_CACHE_HOME/dra-kwok, ~/.cache/dra-kwok
  local root="${DRA_KWOK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dra-kwok}"
  case "$root" in /*) ;; *) root="$PWD/$root" ;; esac
  echo "$root"
}

gobuild_pinned_version() {  # <label> <module> <go.mod>: X.Y.Z of the go.mod's `require <module> vX.Y.Z` line, or fail
  local version
  version=$(sed -n "s|^require ${2//./\\.} v||p" "$3")
  if [ -z "$version" ]; then
    echo "$1: FAILED: no 'require $2 vX.Y.Z' line in $3" >&2
    return 1
  fi
  echo "$version"
}

step="setup"
_gb_label=build _gb_out="" _gb_tmp="" _gb_ticker="" _gb_child="" _gb_start=0

gobuild_begin() {
  _gb_label=$1 _gb_out=$2
  trap _gobuild_on_exit EXIT
  trap '_gobuild_on_signal 130' INT
  trap '_gobuild_on_signal 143' TERM
}

gobuild_tmp() { _gb_tmp=$1; }

gobuild_run() {
  "$@" &
  _gb_child=$!
  local rc=0
  wait "$_gb_child" || rc=$?
  _gb_child=""
  return "$rc"
}

gobuild_ticker() {
  local name=$1 est=$2 tick="${DRA_KWOK_BUILD_TICK:-30}"
  _gobuild_stop_ticker
  _gb_start=$(date +%s)
  # The sleep runs in the background and is killed with the ticker, so no orphan keeps the output pipe open.
  ( s=""
    trap 'kill "$s" 2>/dev/null; exit 0' TERM
    while :; do
      sleep "$tick" & s=$!
      wait "$s"
      echo "$_gb_label:   ... still building $name: $(( $(date +%s) - _gb_start ))s elapsed (estimate ~${est}s cold)"
    done ) &
  _gb_ticker=$!
}

gobuild_build() {
  local name=$1
  shift
  [ -n "$_gb_ticker" ] || gobuild_ticker "$name" "?"
  step="go build $name"
  gobuild_tmp "$_gb_out/.$name.tmp.$$"
  gobuild_run go build -o "$_gb_tmp" "$@"
  _gobuild_stop_ticker
  step="installing $name"
  mv -f "$_gb_tmp" "$_gb_out/$name"
  _gb_tmp=""
  echo "$_gb_label: built $name in $(( $(date +%s) - _gb_start ))s"
}

_gobuild_stop_ticker() {
  if [ -n "$_gb_ticker" ]; then
    kill "$_gb_ticker" 2>/dev/null || true
    wait "$_gb_ticker" 2>/dev/null || true
    _gb_ticker=""
  fi
  return 0
}

_gobuild_on_signal() {  # stop the running child (go), then exit: the EXIT trap cleans up
  if [ -n "$_gb_child" ]; then
    kill "$_gb_child" 2>/dev/null || true
    wait "$_gb_child" 2>/dev/null || true
  fi
  exit "$1"
}

_gobuild_on_exit() {
  local rc=$?
  set +e
  trap - INT TERM
  _gobuild_stop_ticker
  [ -z "$_gb_tmp" ] || rm -f "$_gb_tmp"
  if [ "$rc" -ne 0 ]; then
    echo "$_gb_label: FAILED: $step (exit $rc); nothing half-built was left in $_gb_out" >&2
  fi
  exit "$rc"
}
