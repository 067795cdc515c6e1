#!/bin/bash
# cri-runtime.sh — a pod's life through the CRI, `wharf cri` against
# containerd 1.6 (Debian's, with runc, its own root/state/socket and
# restrict_oom_score_adj = true), through the same client
# (tests/bin/cri-bench.rs: one tonic connection, no crictl start-up):
#   PullImage (from a local docker-registry, the image removed first),
#   RunPodSandbox, CreateContainer, StartContainer, ExecSync (`true`),
#   StopContainer (timeout 0), RemoveContainer, StopPodSandbox,
#   RemovePodSandbox — median latency of each over RUNS iterations;
#   then the resident memory with PODS pods of one running container each:
#   the daemon alone, and the daemon with its per-container helpers
#   (wharf-monitor / containerd-shim-runc-v2).
# Both on the same CNI bridge conflist (bridge + host-local, own bridge
# name and subnet). containerd's sandbox image is a local busybox sleeper;
# wharf cri's infra is its builtin `wharf-infra` (no image).
#
#   LAB=/tmp/wharf-bench-crirt RUNS=50 PODS=20 [PROFILE=debug] [NO_BUILD=1] bash bench/cri-runtime.sh
#   SIDES=containerd ... bash bench/cri-runtime.sh   # one side only (raw JSON)
#   WHARF_WRAP='strace -f -tt -T -o /tmp/cri.strace' SIDES=wharf ...   # wharf cri run under a tracer
#
# 2026-11-29, 2 shared cores, load ~3, release build, RUNS=30 PODS=20 (ms, median):
#   PullImage 52.7 / 25.9 (2.04)   RunPodSandbox 40.0 / 99.7 (0.40)
#   CreateContainer 2.8 / 8.2 (0.35)   StartContainer 15.6 / 65.6 (0.24)
#   ExecSync 18.0 / 42.9 (0.42)   StopContainer 14.4 / 55.2 (0.26)
#   RemoveContainer 2.5 / 2.6 (0.93)   StopPodSandbox 6.0 / 82.6 (0.07)
#   RemovePodSandbox 37.0 / 19.1 (1.93): wharf tears the network down at
#   Remove, containerd at Stop; Stop+Remove 43 / 102 (0.42).
#   RSS with 20 pods: daemon 21 / 55 MiB; with monitors / shims 30 / 319 MiB.
# 2026-11-29 04:38, load 3.6-5.1, release build, RUNS=50 PODS=20, after the
# pull runtime/client reuse, CNI ADD in parallel with the infra, parallel
# unmounts, and the pause image on both sides (ms, median):
#   PullImage 23.7 / 82.7 (0.29)   RunPodSandbox 40.2 / 173.1 (0.23)
#   CreateContainer 2.8 / 31.4 (0.09)   StartContainer 26.4 / 81.9 (0.32)
#   ExecSync 21.7 / 46.5 (0.47)   StopContainer 23.2 / 100.4 (0.23)
#   RemoveContainer 30.1 / 7.6 (3.98: the exit cleanup landed in Remove)
#   StopPodSandbox 52.3 / 124.3 (0.42)   RemovePodSandbox 20.0 / 39.1 (0.51)
#   RSS with 20 pods: daemon 21 / 55 MiB; with monitors / shims 30 / 318 MiB.
# 2026-11-29 05:35, load 1.9 (quiet), release build, RUNS=30 PODS=20, after
# StopContainer releases the container before answering (as containerd):
#   PullImage 9.1 / 21.5 (0.42)   RunPodSandbox 21.1 / 88.3 (0.24)
#   CreateContainer 2.5 / 7.3 (0.34)   StartContainer 13.7 / 57.5 (0.24)
#   ExecSync 18.7 / 37.5 (0.50)   StopContainer 11.0 / 51.1 (0.21)
#   RemoveContainer 1.8 / 2.2 (0.84)   StopPodSandbox 39.2 / 71.2 (0.55)
#   RemovePodSandbox 3.7 / 17.5 (0.21)
#   RSS with 20 pods: daemon 21 / 55 MiB; with monitors / shims 30 / 319 MiB.
# 2026-11-29 08:16, load 2.0 (quiet), release build, RUNS=30 PODS=20, after
# StopPodSandbox runs the CNI DEL beside the containers' and infra's stop:
#   PullImage 9.2 / 20.4 (0.45)   RunPodSandbox 22.8 / 85.5 (0.27)
#   CreateContainer 2.6 / 6.6 (0.40)   StartContainer 13.8 / 58.6 (0.24)
#   ExecSync 17.9 / 36.4 (0.49)   StopContainer 11.1 / 49.6 (0.22)
#   RemoveContainer 2.1 / 2.4 (0.88)   StopPodSandbox 34.5 / 70.7 (0.49)
#   RemovePodSandbox 3.9 / 16.9 (0.23)
#   RSS with 20 pods: daemon 22 / 56 MiB; with monitors / shims 31 / 320 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
LAB=${LAB:-/tmp/wharf-bench-crirt}; RUNS=${RUNS:-50}; PODS=${PODS:-20}; PROFILE=${PROFILE:-release}
if [ -n "${NO_BUILD:-}" ]; then :
elif [ "$PROFILE" = release ]; then cargo build --release -q -p wharf -p wharf-runtime -p wharf-pod -p wharf-tests --bins
else cargo build -q -p wharf -p wharf-runtime -p wharf-pod -p wharf-tests --bins; fi
BIN="$PWD/target/$PROFILE"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; kill -KILL "$p" 2>/dev/null || true; done
  # What the daemons left running (shims, monitors, containers) under $LAB.
  for p in $(grep -l -- "$LAB" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do kill -KILL "$p" 2>/dev/null || true; done
  awk -v L="$LAB" 'index($5, L)==1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  ip link del wcribench0 2>/dev/null || true
  rm -rf "$LAB"
}
trap cleanup EXIT
rm -rf "$LAB"; mkdir -p "$LAB/net.d" "$LAB/rootfs/bin" "$LAB/logs"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$port
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n' \
  "$LAB/registry" "$REG" > "$LAB/registry.yml"
docker-registry serve "$LAB/registry.yml" > "$LAB/registry.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do curl -sf "http://$REG/v2/" >/dev/null && break; sleep 0.1; done

cp /bin/busybox "$LAB/rootfs/bin/"; chroot "$LAB/rootfs" /bin/busybox --install -s /bin
tar -C "$LAB/rootfs" -cf "$LAB/bb.tar" .
W="$BIN/wharf --root $LAB/src --run-root $LAB/srcrun"
$W import "$LAB/bb.tar" bb >/dev/null
mkdir -p "$LAB/ctx"; printf 'FROM bb\nENTRYPOINT ["/bin/sleep", "2147483647"]\n' > "$LAB/ctx/Dockerfile"
$W build -q -t pause "$LAB/ctx" >/dev/null
$W push -q bb "$REG/bench/busybox:1" >/dev/null
$W push -q pause "$REG/bench/pause:1" >/dev/null
IMG=$REG/bench/busybox:1

cat > "$LAB/net.d/10-bench.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "wcribench", "plugins": [
  {"type": "bridge", "bridge": "wcribench0", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": "$LAB/ipam", "ranges": [[{"subnet": "10.231.0.0/16"}]]}},
  {"type": "loopback"}]}
EOF

WSOCK=$LAB/wharf.sock
printf '[cni]\nconf_dir = "%s"\nbin_dirs = ["/usr/lib/cni"]\n' "$LAB/net.d" > "$LAB/cri.toml"
${WHARF_WRAP:-} "$BIN/wharf" --root "$LAB/wroot" --run-root "$LAB/wrun" cri --listen "unix://$WSOCK" --config "$LAB/cri.toml" \
  > "$LAB/wharf-cri.log" 2>&1 & wpid=$!; pids+=($wpid)

CSOCK=$LAB/containerd.sock
cat > "$LAB/containerd.toml" <<EOF
version = 2
root = "$LAB/croot"
state = "$LAB/cstate"
[grpc]
  address = "$CSOCK"
[ttrpc]
  address = "$CSOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$LAB/copt"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  sandbox_image = "$REG/bench/pause:1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = false
    Root = "$LAB/crunc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$LAB/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REG"]
    endpoint = ["http://$REG"]
EOF
containerd --config "$LAB/containerd.toml" > "$LAB/containerd.log" 2>&1 & cpid=$!; pids+=($cpid)

CRICTL=${CRICTL:-$PWD/../shared/tools/crictl}
for s in "$WSOCK" "$CSOCK"; do
  for _ in $(seq 100); do "$CRICTL" --config /dev/null -r "unix://$s" version >/dev/null 2>&1 && break; sleep 0.1; done
done
# containerd's sandbox image, pulled once (not timed). It is built FROM the
# image PullImage pulls, so containerd's store keeps that image's layer
# across RemoveImage; wharf cri pulls it too (it needs no sandbox image),
# so that both stores hold the layer and PullImage compares the same work
# (manifest, config, tag; before, wharf alone downloaded and unpacked the
# layer each time). SHARED_LAYER=0: wharf without it.
for s in "$CSOCK" "$WSOCK"; do
  [ "$s" = "$WSOCK" ] && [ "${SHARED_LAYER:-1}" = 0 ] && continue
  "$CRICTL" --config /dev/null -r "unix://$s" -i "unix://$s" pull "$REG/bench/pause:1" >/dev/null
done

rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
helpers_rss() {  # KiB of the processes named $1 whose command line mentions $LAB
  local sum=0 p
  for p in $(pgrep -f "$1"); do grep -q -- "$LAB" "/proc/$p/cmdline" 2>/dev/null && sum=$((sum + $(rss "$p"))); done
  echo $sum
}
measure() {  # NAME SOCKET DAEMON_PID HELPER_PATTERN
  local fifo=$LAB/$1.in; mkfifo "$fifo"
  "$BIN/wharf-cri-bench" "$2" "$IMG" "$RUNS" "$PODS" "$LAB/logs/$1" < "$fifo" > "$LAB/$1.json" 2> "$LAB/$1.err" &
  local b=$!; exec 9> "$fifo"
  for _ in $(seq 6000); do grep -q HOLDING "$LAB/$1.err" && break; kill -0 $b 2>/dev/null || break; sleep 0.1; done
  grep -q HOLDING "$LAB/$1.err" || { cat "$LAB/$1.err" >&2; exit 1; }
  echo "$1: daemon RSS with $PODS pods $(( $(rss "$3") / 1024 )) MiB; with its per-container helpers ($4) $(( ($(rss "$3") + $(helpers_rss "$4")) / 1024 )) MiB" | tee "$LAB/$1.rss"
  echo >&9; exec 9>&-; wait $b
}
for side in ${SIDES:-wharf containerd}; do
  case $side in
    wharf) measure wharf "$WSOCK" "$wpid" wharf-monitor ;;
    containerd) measure containerd "$CSOCK" "$cpid" containerd-shim-runc-v2 ;;
  esac
done
[ "${SIDES:-wharf containerd}" = "wharf containerd" ] || { cat "$LAB"/*.json; exit 0; }

python3 - "$LAB/wharf.json" "$LAB/containerd.json" "$RUNS" <<'EOF'
import json, statistics, sys
w, c = (json.load(open(p)) for p in sys.argv[1:3])
print(f"median of {sys.argv[3]} (ms)      wharf  containerd  ratio")
for k in ["PullImage", "RunPodSandbox", "CreateContainer", "StartContainer", "ExecSync",
          "StopContainer", "RemoveContainer", "StopPodSandbox", "RemovePodSandbox"]:
    a, b = statistics.median(w[k]), statistics.median(c[k])
    print(f"{k:<24} {a:8.1f} {b:10.1f}  {a / b:5.2f}")
EOF
