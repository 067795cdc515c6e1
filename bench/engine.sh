#!/bin/bash
# engine.sh — detached containers, wharf against podman (runc, cgroupfs,
# file events logger), in one run:
#   1. 100 × `run -d bb sleep` : total wall time; then the summed resident
#      memory of the 100 monitors (wharf-monitor) vs podman's 100 conmons;
#   2. `ps -a` with those 100 containers (hyperfine);
#   3. `logs` of a container that wrote 100 MiB (hyperfine, output to /dev/null).
#
#   LAB=/tmp/wharf-bench-engine N=100 RUNS=10 bash bench/engine.sh
#
# 2026-11-28, 2 shared cores under load ~5, N=100, RUNS=5:
#   100 x run -d:   wharf 3039 ms, podman 18806 ms          -> 0.16
#   monitor RSS:    wharf-monitor 454 KiB each, conmon 2048 -> 0.22
#   ps -a (100):    wharf 8 ms, podman 133 ms               -> 0.06
#   logs 100 MiB:   wharf 1266 ms, podman 6542 ms           -> 0.19
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
LAB=${LAB:-/tmp/wharf-bench-engine}; N=${N:-100}; RUNS=${RUNS:-10}
cargo build --release -q -p wharf -p wharf-runtime -p wharf-pod
WHARF="$PWD/target/release/wharf --root $LAB/wroot --run-root $LAB/wrun"
PODMAN="podman --root $LAB/proot --runroot $LAB/prun --cgroup-manager cgroupfs --events-backend file"
PODMAN_RUN="run --runtime runc --pull=never --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --network none"
cleanup() {
  $WHARF ps -aq --no-trunc 2>/dev/null | xargs -r $WHARF rm -f >/dev/null 2>&1 || true
  $PODMAN rm -af -t 0 >/dev/null 2>&1 || true
  $PODMAN system reset -f >/dev/null 2>&1 || true
  rm -rf "$LAB"
}
trap cleanup EXIT
mkdir -p "$LAB/rootfs/bin"
cp /bin/busybox "$LAB/rootfs/bin/"
chroot "$LAB/rootfs" /bin/busybox --install -s /bin
tar -C "$LAB/rootfs" -cf "$LAB/bb.tar" .
$WHARF import "$LAB/bb.tar" bb >/dev/null
$PODMAN import -q "$LAB/bb.tar" localhost/bb >/dev/null

ms() { echo $(( $(date +%s%N) / 1000000 )); }
rss_sum() { # KiB summed over the pids given on stdin
  local t=0; while read -r p; do r=$(awk '/VmRSS/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0); t=$((t + ${r:-0})); done; echo $t
}

t0=$(ms); for i in $(seq "$N"); do $WHARF run -d --network none bb sleep 3600 >/dev/null; done; t1=$(ms)
for i in $(seq "$N"); do $PODMAN $PODMAN_RUN -d localhost/bb sleep 3600 >/dev/null; done; t2=$(ms)
w_rss=$(pgrep -f "wharf-monitor --id .* --state-root $LAB/wrun" | rss_sum)
p_rss=$(pgrep -f "conmon .*$LAB/prun" | rss_sum)
echo "$N x run -d: wharf $((t1 - t0)) ms, podman $((t2 - t1)) ms, ratio $(awk -v a=$((t1 - t0)) -v b=$((t2 - t1)) 'BEGIN{printf "%.2f", a/b}')"
echo "monitor RSS, sum of $N: wharf-monitor $w_rss KiB ($((w_rss / N)) each), conmon $p_rss KiB ($((p_rss / N)) each), ratio $(awk -v a="$w_rss" -v b="$p_rss" 'BEGIN{printf "%.2f", a/b}')"

hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$LAB/ps.json" \
  -n "wharf ps -a ($N)" "$WHARF ps -a" -n "podman ps -a ($N)" "$PODMAN ps -a" >/dev/null
jq -r '.results[] | "\(.command)\t median \(.median*1000|floor) ms"' "$LAB/ps.json"
jq -r '"ratio wharf/podman, ps -a (median): \((.results[0].median / .results[1].median)*100|floor/100)"' "$LAB/ps.json"

$WHARF ps -aq --no-trunc | xargs -r $WHARF rm -f >/dev/null
$PODMAN rm -af -t 0 >/dev/null 2>&1

gen='i=0; while [ $i -lt 1600 ]; do yes "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde" | head -n 1024; i=$((i+1)); done'
$WHARF run --name big --network none bb sh -c "$gen" >/dev/null
$PODMAN ${PODMAN_RUN/run /run --name big --log-driver k8s-file } localhost/bb sh -c "$gen" >/dev/null
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$LAB/logs.json" --output=null \
  -n "wharf logs (100 MiB)" "$WHARF logs big" -n "podman logs (100 MiB)" "$PODMAN logs big" >/dev/null
jq -r '.results[] | "\(.command)\t median \(.median*1000|floor) ms"' "$LAB/logs.json"
jq -r '"ratio wharf/podman, logs (median): \((.results[0].median / .results[1].median)*100|floor/100)"' "$LAB/logs.json"
