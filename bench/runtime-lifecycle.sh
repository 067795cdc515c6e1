#!/bin/bash
# runtime-lifecycle.sh — container lifecycle latency and peak RSS:
# wharf-runtime vs crun vs runc, same busybox bundle, same run.
#
# One lifecycle = `RT --root STATE run --bundle B id` of /bin/true: create
# namespaces + cgroups, pivot_root, exec, wait, delete (all three delete after
# `run`). Each timed command is a shell loop of N=20 sequential lifecycles;
# per-container latency = loop time / 20. The bare loop is timed too.
# Peak RSS of one `run` comes from /usr/bin/time -v (max over the runtime's
# process tree, as in ../shared/peers/02-lifecycle-bench.sh).
#
# HOST QUIRK (hybrid cgroups, see ../shared/peers/01-bundle.sh): crun 1.8.1
# refuses to run at all while the cgroup2 mount at /sys/fs/cgroup/unified
# holds a controller (hugetlb here). Unless FIX_HYBRID=0, this script moves
# such controllers to a v1 hierarchy (mount -t cgroup -o hugetlb …), which
# is undone when the script exits, and SAYS SO. wharf-runtime and runc run
# either way.
#
# wharf-runtime is the binary the README's `cargo build --release` makes
# (static, non-PIE: see crates/runtime/build.rs), target/release/wharf-runtime.
# WHARF=/path/to/binary measures another binary instead.
#
# Usage: LAB=/tmp/wharf-rt-bench RUNS=10 bench/runtime-lifecycle.sh
# Needs: runc crun busybox-static jq hyperfine time (apt-get install …).
set -euo pipefail
source "$(dirname "$0")/runtime-common.sh"

rm -rf "$LAB"/state-* "$LAB"/errors-*.log
mkdir -p "$LAB/state-wharf" "$LAB/state-crun" "$LAB/state-runc"
RUNTIMES="wharf crun runc"
if ! crun --root "$LAB/state-crun" run --bundle "$B" crun-probe >/dev/null 2>"$LAB/crun-probe.log"; then
  echo "NOTE: crun refuses to run on this host now ($(head -1 "$LAB/crun-probe.log")); skipped"
  RUNTIMES="wharf runc"
fi
has() { case " $RUNTIMES " in *" $1 "*) return 0;; esac; return 1; }
# Distinct id prefixes: crun and wharf both default to cgroup /<id>, so the
# same ids could meet a cgroup the other runtime is still removing.
# hyperfine hides a command's stderr: keep it in $LAB/errors-<prefix>.log.
loop() { echo "for i in \$(seq $N); do $1 run --bundle ${3:-$B} $2\$i >/dev/null 2>>$LAB/errors-$2.log || exit 1; done"; }
echo "== versions"; $WHARF --version | head -1; crun --version | head -1; runc --version | head -1
CRUN=(); CRUN_D=()
has crun && CRUN=(-n "crun" "sh -c '$(loop "crun --root $LAB/state-crun" cr)'") &&
  CRUN_D=(-n "crun+docker" "sh -c '$(loop "crun --root $LAB/state-crun" crD $D)'")
hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$LAB/lifecycle.json" \
  -n "loop-only"     "sh -c 'for i in \$(seq $N); do /bin/true; done'" \
  -n "wharf-runtime" "sh -c '$(loop "$WHARF --root $LAB/state-wharf" w)'" \
  "${CRUN[@]}" \
  -n "runc"          "sh -c '$(loop "runc --root $LAB/state-runc" rc)'" \
  -n "wharf-runtime+docker" "sh -c '$(loop "$WHARF --root $LAB/state-wharf" wD $D)'" \
  "${CRUN_D[@]}" \
  -n "runc+docker"    "sh -c '$(loop "runc --root $LAB/state-runc" rcD $D)'" >/dev/null ||
  { tail -n 5 "$LAB"/errors-*.log; exit 1; }

echo "== per-container wall time (ms) = loop time / $N, over $RUNS runs; cpu = mean user+sys / $N"
echo "   (cpu time is the steadier figure when the machine is busy)"
printf '| %-14s | %8s | %8s | %8s | %8s |\n' runtime median min max cpu
printf '|%s|%s|%s|%s|%s|\n' ---------------- ---------- ---------- ---------- ----------
jq -r --argjson n $N '.results[] | [.command, (.median*1000/$n), (.min*1000/$n), (.max*1000/$n), ((.user+.system)*1000/$n)] | @tsv' "$LAB/lifecycle.json" |
  while IFS=$'\t' read -r name med min max cpu; do
    printf '| %-14s | %8.2f | %8.2f | %8.2f | %8.2f |\n' "$name" "$med" "$min" "$max" "$cpu"
  done
uptime

# Paired rounds: each round times one loop of every runtime back to back, so a
# busy spell on the machine hits all of them alike (hyperfine runs them one
# after another). Median over the rounds, per container.
echo "== paired rounds (ms per container, median of $RUNS rounds)"
declare -A T
for r in $(seq "$RUNS"); do
  for rt in $RUNTIMES; do
    case $rt in wharf) cmd=$WHARF;; *) cmd=$rt;; esac
    t0=$(date +%s%N)
    sh -c "$(loop "$cmd --root $LAB/state-$rt" p$rt)"
    T[$rt]+="$(( ($(date +%s%N) - t0) / N / 1000 )) "
  done
done
for rt in $RUNTIMES; do
  echo "${T[$rt]}" | tr ' ' '\n' | grep . | sort -n | awk -v rt="$rt" -v all="${T[$rt]}" \
    '{a[NR]=$1} END {printf "| %-14s | %8.2f | rounds (us): %s\n", rt, a[int((NR+1)/2)]/1000, all}'
done

evict_binaries
echo "== peak RSS of one run (kB; /usr/bin/time -v, 5 tries, median; binaries read back from disk)"
printf '| %-14s | %8s |\n' runtime "RSS kB"
printf '|%s|%s|\n' ---------------- ----------
for rt in wharf crun runc wharf+docker crun+docker runc+docker; do
  bundle=$B; [ "${rt%+docker}" != "$rt" ] && bundle=$D
  [ "${rt%+docker}" = crun ] && ! has crun && continue
  case ${rt%+docker} in wharf) cmd=$WHARF;; *) cmd=${rt%+docker};; esac
  for k in 1 2 3 4 5; do
    /usr/bin/time -v $cmd --root "$LAB/state-${rt%+docker}" run --bundle "$bundle" rss-${rt/+/-}-$k 2>&1 >/dev/null | awk '/Maximum resident/ {print $NF}'
  done | sort -n | sed -n 3p | xargs printf "| %-14s | %8s |\n" "$rt"
done
