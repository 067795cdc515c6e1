#!/bin/bash
# cri.sh — the CRI image service, `wharf cri` against containerd's CRI
# (Debian's containerd, run by hand with its own root, state and socket),
# through the same crictl, on the same image in a local docker-registry:
#   1. crictl pull   (the image removed before each run)
#   2. crictl images (the image present)
#   3. crictl rmi    (the image pulled before each run)
# Median of RUNS (hyperfine), ratio wharf/containerd.
#
#   LAB=/tmp/wharf-bench-cri RUNS=20 [PROFILE=debug] [NO_BUILD=1] bash bench/cri.sh
#
# 2026-11-28, 2 shared cores under load ~8 (other sessions building), release build,
# busybox (1 layer, ~1 MiB), two runs back to back (RUNS=20, then 30); the load makes it noisy:
#   crictl pull:   wharf 115.8 / 248.8 ms, containerd 276.6 / 254.9 ms  -> 0.41 / 0.97
#   crictl images: wharf  28.0 /  32.6 ms, containerd  22.7 /  32.8 ms  -> 1.23 / 0.99
#   crictl rmi:    wharf  51.0 /  59.1 ms, containerd  55.4 /  66.3 ms  -> 0.91 / 0.89
# (crictl's own start-up, ~20 ms, is in every figure.)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
LAB=${LAB:-/tmp/wharf-bench-cri}; RUNS=${RUNS:-20}; PROFILE=${PROFILE:-release}
CRICTL=${CRICTL:-$PWD/../shared/tools/crictl}
[ -x "$CRICTL" ] || { echo "no crictl at $CRICTL (set CRICTL)" >&2; exit 1; }
if [ -n "${NO_BUILD:-}" ]; then :; elif [ "$PROFILE" = release ]; then cargo build --release -q -p wharf -p wharf-runtime; else cargo build -q -p wharf -p wharf-runtime; fi
BIN="$PWD/target/$PROFILE"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; kill -KILL "$p" 2>/dev/null || true; done
  awk -v L="$LAB" 'index($5, L)==1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount 2>/dev/null || true
  rm -rf "$LAB"
}
trap cleanup EXIT
rm -rf "$LAB"; mkdir -p "$LAB/net.d" "$LAB/rootfs/bin"

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
$W push -q bb "$REG/bench/busybox:1" >/dev/null
IMG=$REG/bench/busybox:1

WSOCK=$LAB/wharf.sock
printf '[cni]\nconf_dir = "%s"\n' "$LAB/net.d" > "$LAB/cri.toml"
"$BIN/wharf" --root "$LAB/wroot" --run-root "$LAB/wrun" cri --listen "unix://$WSOCK" --config "$LAB/cri.toml" \
  > "$LAB/wharf-cri.log" 2>&1 & pids+=($!)

CSOCK=$LAB/containerd.sock
cat > "$LAB/containerd.toml" <<EOF
version = 2
root = "$LAB/croot"
state = "$LAB/cstate"
[grpc]
  address = "$CSOCK"
[ttrpc]
  address = "$CSOCK.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    conf_dir = "$LAB/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REG"]
    endpoint = ["http://$REG"]
EOF
containerd --config "$LAB/containerd.toml" > "$LAB/containerd.log" 2>&1 & pids+=($!)

crictl() { local s=$1; shift; "$CRICTL" --config /dev/null -r "unix://$s" -i "unix://$s" "$@"; }
for s in "$WSOCK" "$CSOCK"; do
  for _ in $(seq 100); do crictl "$s" version >/dev/null 2>&1 && break; sleep 0.1; done
  crictl "$s" version | grep -E 'RuntimeName|RuntimeVersion' | paste -sd' '
done

C="$CRICTL --config /dev/null"
hyperfine -N --runs "$RUNS" --export-json "$LAB/pull.json" \
  --prepare "sh -c '$C -r unix://$WSOCK -i unix://$WSOCK rmi $IMG >/dev/null 2>&1 || true'" -n "wharf cri: crictl pull" \
  "$C -r unix://$WSOCK -i unix://$WSOCK pull $IMG" \
  --prepare "sh -c '$C -r unix://$CSOCK -i unix://$CSOCK rmi $IMG >/dev/null 2>&1 || true'" -n "containerd: crictl pull" \
  "$C -r unix://$CSOCK -i unix://$CSOCK pull $IMG" >/dev/null
crictl "$WSOCK" pull "$IMG" >/dev/null; crictl "$CSOCK" pull "$IMG" >/dev/null
hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$LAB/images.json" \
  -n "wharf cri: crictl images" "$C -r unix://$WSOCK -i unix://$WSOCK images" \
  -n "containerd: crictl images" "$C -r unix://$CSOCK -i unix://$CSOCK images" >/dev/null
hyperfine -N --runs "$RUNS" --export-json "$LAB/rmi.json" \
  --prepare "$C -r unix://$WSOCK -i unix://$WSOCK pull $IMG" -n "wharf cri: crictl rmi" \
  "$C -r unix://$WSOCK -i unix://$WSOCK rmi $IMG" \
  --prepare "$C -r unix://$CSOCK -i unix://$CSOCK pull $IMG" -n "containerd: crictl rmi" \
  "$C -r unix://$CSOCK -i unix://$CSOCK rmi $IMG" >/dev/null
for f in pull images rmi; do
  jq -r '.results[] | "\(.command)\tmedian \(.median*1000*10|floor/10) ms"' "$LAB/$f.json"
  jq -r --arg f "$f" '"ratio wharf/containerd, \($f) (median): \((.results[0].median / .results[1].median)*100|floor/100)"' "$LAB/$f.json"
done
