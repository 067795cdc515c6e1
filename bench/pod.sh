#!/bin/bash
# pod.sh — pods, wharf against podman (runc, cgroupfs, file events logger,
# its local catatonit pause image), in one run, same busybox image, same
# network mode (none):
#   1. N × (`pod create` + 2 × `run -d --pod P bb sleep`): total wall time;
#   2. the per-pod overhead memory, summed over the N pods: wharf's infra
#      (wharf-infra) + 2 monitors (wharf-monitor) vs podman's infra
#      (catatonit) + 3 conmons (infra's and the two containers').
#
#   LAB=/tmp/wharf-bench-pod N=10 bash bench/pod.sh
#
# 2026-11-28, 2 shared cores under load ~15 (other builds), N=10, release:
#   10 x (pod create + 2 run -d --pod): wharf 1188 ms, podman 7337 ms     -> 0.16
#     (2640 ms, 0.30, before wharf-infra joined v1 cgroups through `tasks`)
#   overhead RSS, 10 pods: wharf 14044 KiB (infra 5124 + monitors 8920),
#                          podman 81188 KiB (catatonit 6836 + conmons 74352) -> 0.17
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
LAB=${LAB:-/tmp/wharf-bench-pod}; N=${N:-10}
cargo build --release -q -p wharf -p wharf-runtime -p wharf-pod
WHARF="$PWD/target/release/wharf --root $LAB/wroot --run-root $LAB/wrun"
PODMAN="podman --root $LAB/proot --runroot $LAB/prun --cgroup-manager cgroupfs --events-backend file"
PODMAN_RUN="run --runtime runc --pull=never --ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
cleanup() {
  $WHARF pod ls -q --no-trunc 2>/dev/null | xargs -r $WHARF pod rm -f >/dev/null 2>&1 || true
  $PODMAN pod rm -af -t 0 >/dev/null 2>&1 || true
  $PODMAN system reset -f >/dev/null 2>&1 || true
  rm -rf "$LAB"
}
trap cleanup EXIT
mkdir -p "$LAB/rootfs/bin"
# The infra container takes no --ulimit/--runtime flags: the same settings as the runs, from a config.
cat > "$LAB/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF="$LAB/containers.conf"
cp /bin/busybox "$LAB/rootfs/bin/"
chroot "$LAB/rootfs" /bin/busybox --install -s /bin
tar -C "$LAB/rootfs" -cf "$LAB/bb.tar" .
$WHARF import "$LAB/bb.tar" bb >/dev/null
$PODMAN import -q "$LAB/bb.tar" localhost/bb >/dev/null
# podman builds its pause image (catatonit) on the first infra: not timed.
$PODMAN pod create --network none --name warm >/dev/null && $PODMAN pod rm -f warm >/dev/null

ms() { echo $(( $(date +%s%N) / 1000000 )); }
rss_sum() { # KiB summed over the pids given on stdin
  local t=0; while read -r p; do r=$(awk '/VmRSS/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0); t=$((t + ${r:-0})); done; echo $t
}

t0=$(ms)
for i in $(seq "$N"); do
  $WHARF pod create --network none --name "p$i" >/dev/null
  $WHARF run -d --pod "p$i" bb sleep 3600 >/dev/null
  $WHARF run -d --pod "p$i" bb sleep 3600 >/dev/null
done
t1=$(ms)
for i in $(seq "$N"); do
  $PODMAN pod create --network none --name "p$i" >/dev/null
  $PODMAN $PODMAN_RUN -d --pod "p$i" localhost/bb sleep 3600 >/dev/null
  $PODMAN $PODMAN_RUN -d --pod "p$i" localhost/bb sleep 3600 >/dev/null
done
t2=$(ms)
w_infra=$($WHARF pod ls --format json | jq -r '.[].InfraPid' | rss_sum)
w_mon=$(pgrep -f "wharf-monitor --id .* --state-root $LAB/wrun" | rss_sum)
p_infra=$(pgrep -x catatonit | while read -r p; do grep -q "$LAB/prun" "/proc/$(awk '{print $4}' /proc/$p/stat)/cmdline" 2>/dev/null && echo "$p"; done | rss_sum)
p_conmon=$(pgrep -f "conmon .*$LAB/prun" | rss_sum)
w=$((w_infra + w_mon)); p=$((p_infra + p_conmon))
echo "$N x (pod create + 2 run -d --pod): wharf $((t1 - t0)) ms, podman $((t2 - t1)) ms, ratio $(awk -v a=$((t1 - t0)) -v b=$((t2 - t1)) 'BEGIN{printf "%.2f", a/b}')"
echo "per-pod overhead RSS, sum of $N pods: wharf $w KiB (infra $w_infra + monitors $w_mon), podman $p KiB (catatonit $p_infra + conmons $p_conmon), ratio $(awk -v a="$w" -v b="$p" 'BEGIN{printf "%.2f", a/b}')"
