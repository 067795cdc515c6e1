#!/bin/bash
# runtime-parallel.sh — 50 containers created at once: wharf-runtime vs crun
# vs runc, same config.json (Docker's default capabilities and seccomp
# profile, busybox, read-only root), same run.
#
# One round, per runtime: start P=50 `RT --root STATE create --bundle D idK`
# at the same moment, each under /usr/bin/time -f %M; wait for all.
#   wall      time from launch until every create has returned
#   sum RSS   sum of the 50 peak RSS figures (the runtime's process tree up to
#             the point `create` returns; the container's init stays behind)
#   held      with all 50 in "created": the sum of the waiting init
#             processes' PSS plus the growth of Shmem (where a per-container
#             binary copy — runc's and crun's CVE-2019-5736 memfd clone —
#             lives): what the host pays to keep them
# then `delete --force` of all 50 (also in parallel, timed). Rounds alternate
# runtimes; figures are medians over ROUNDS.
#
# Usage: LAB=/tmp/wharf-rt-bench ROUNDS=5 bench/runtime-parallel.sh
set -euo pipefail
source "$(dirname "$0")/runtime-common.sh"
P=${P:-50}; ROUNDS=${ROUNDS:-5}

RUNTIMES="wharf crun runc"
mkdir -p "$LAB/pstate-crun"
if ! crun --root "$LAB/pstate-crun" run --bundle "$B" crun-pprobe >/dev/null 2>"$LAB/crun-pprobe.log"; then
  echo "NOTE: crun refuses to run on this host now ($(head -1 "$LAB/crun-pprobe.log")); skipped"
  RUNTIMES="wharf runc"
fi
cmd_of() { case $1 in wharf) echo "$WHARF";; *) echo "$1";; esac; }
shmem() { awk '/^Shmem:/ {print $2}' /proc/meminfo; }

# One round of runtime $1: prints "wall_ms sum_rss_kB held_kB delete_ms".
round() {
  local rt=$1 cmd st out pids=()
  cmd=$(cmd_of "$rt"); st=$LAB/pstate-$rt; out=$LAB/prss-$rt
  rm -rf "$out"; mkdir -p "$st" "$out"
  local before t0 t1 held
  before=$(shmem)
  t0=$(date +%s%N)
  for k in $(seq "$P"); do
    /usr/bin/time -f %M -o "$out/$k" $cmd --root "$st" create --bundle "$D" "par-$rt-$k" \
      </dev/null >/dev/null 2>>"$LAB/perr-$rt.log" &
    pids+=($!)
  done
  local fail=0
  for p in "${pids[@]}"; do wait "$p" || fail=1; done
  t1=$(date +%s%N)
  held=$(( $(shmem) - before ))
  for k in $(seq "$P"); do
    pid=$($cmd --root "$st" state "par-$rt-$k" 2>/dev/null | jq -r .pid)
    held=$(( held + $(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0) ))
  done
  [ $fail = 0 ] || { echo "create failed for $rt:"; tail -5 "$LAB/perr-$rt.log"; }
  local n; n=$($cmd --root "$st" list 2>/dev/null | grep -c created || true)
  [ "$n" = "$P" ] || echo "NOTE: $rt has $n of $P containers in created state" >&2
  local d0 d1; d0=$(date +%s%N); pids=()
  for k in $(seq "$P"); do $cmd --root "$st" delete --force "par-$rt-$k" >/dev/null 2>&1 & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || true; done
  d1=$(date +%s%N)
  local sum; sum=$(cat "$out"/* | awk '{s+=$1} END {print s}')
  echo "$(( (t1 - t0) / 1000000 )) $sum $held $(( (d1 - d0) / 1000000 ))"
}

declare -A R
evict_binaries
for r in $(seq "$ROUNDS"); do
  for rt in $RUNTIMES; do R[$rt]+="$(round "$rt")"$'\n'; done
done
med() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "== $P containers created in parallel (Docker caps + seccomp), median of $ROUNDS rounds, $(nproc) cores"
printf '| %-14s | %10s | %14s | %14s | %11s |\n' runtime "wall ms" "sum peak RSS MiB" "held MiB" "delete ms"
printf '|%s|%s|%s|%s|%s|\n' ---------------- ------------ ------------------ ---------------- -------------
for rt in $RUNTIMES; do
  rows=$(printf '%s' "${R[$rt]}")
  w=$(echo "$rows" | awk '{print $1}' | med); s=$(echo "$rows" | awk '{print $2}' | med)
  h=$(echo "$rows" | awk '{print $3}' | med); d=$(echo "$rows" | awk '{print $4}' | med)
  printf '| %-14s | %10s | %16.1f | %14.1f | %11s |\n' "$rt" "$w" "$(awk -v v="$s" 'BEGIN {print v/1024}')" "$(awk -v v="$h" 'BEGIN {print v/1024}')" "$d"
done
for rt in $RUNTIMES; do echo "$rt rounds (wall sumRSS held delete):"; printf '%s' "${R[$rt]}" | sed 's/^/  /'; done
uptime
