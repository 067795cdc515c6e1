#!/bin/bash
# kube.sh — `kube play` of one two-container pod (busybox, network none on
# both sides: no CNI in the measured path), wharf against podman (runc,
# cgroupfs, file events logger), in one run: each of RUNS rounds plays the
# manifest and takes it down again; the median play time is compared.
#
#   LAB=/tmp/wharf-bench-kube RUNS=10 bash bench/kube.sh
#
# 2026-11-28, 2 shared cores under load ~8, RUNS=7 (release build):
#   kube play (2 containers): wharf 88 ms, podman 517 ms -> 0.17
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
LAB=${LAB:-/tmp/wharf-bench-kube}; RUNS=${RUNS:-10}
cargo build --release -q -p wharf -p wharf-runtime -p wharf-pod
WHARF="$PWD/target/release/wharf --root $LAB/wroot --run-root $LAB/wrun"
# podman's default ulimits exceed what this host allows a container (runc:
# "setting rlimit type 7: operation not permitted"): the same limits as
# bench/engine.sh passes with --ulimit, through a containers.conf.
mkdir -p "$LAB"
printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n' > "$LAB/containers.conf"
export CONTAINERS_CONF="$LAB/containers.conf"
PODMAN="podman --root $LAB/proot --runroot $LAB/prun --cgroup-manager cgroupfs --events-backend file --runtime runc"
cleanup() {
  $WHARF kube down "$LAB/w.yaml" >/dev/null 2>&1 || true
  $PODMAN kube down "$LAB/p.yaml" >/dev/null 2>&1 || true
  $PODMAN pod rm -af -t 0 >/dev/null 2>&1 || true
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

manifest() { # IMAGE
  cat <<YAML
apiVersion: v1
kind: Pod
metadata: {name: bench}
spec:
  containers:
  - {name: one, image: $1, imagePullPolicy: Never, command: [/bin/sleep, "3600"]}
  - {name: two, image: $1, imagePullPolicy: Never, command: [/bin/sleep, "3600"]}
YAML
}
manifest bb > "$LAB/w.yaml"
manifest localhost/bb > "$LAB/p.yaml"

ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
: > "$LAB/w.ms"; : > "$LAB/p.ms"
for i in $(seq "$RUNS"); do
  t0=$(ms); $WHARF kube play --network none "$LAB/w.yaml" >/dev/null; t1=$(ms)
  $PODMAN kube play --network none "$LAB/p.yaml" >/dev/null; t2=$(ms)
  echo $((t1 - t0)) >> "$LAB/w.ms"; echo $((t2 - t1)) >> "$LAB/p.ms"
  $WHARF kube down "$LAB/w.yaml" >/dev/null
  $PODMAN kube down "$LAB/p.yaml" >/dev/null
done
w=$(median < "$LAB/w.ms"); p=$(median < "$LAB/p.ms")
echo "kube play (2 containers), median of $RUNS: wharf $w ms, podman $p ms, ratio $(awk -v a="$w" -v b="$p" 'BEGIN{printf "%.2f", a/b}')"
