#!/bin/bash
# build-big.sh — wharf build --no-cache against buildah bud --no-cache on a
# RUN that writes one big layer (issue 14 §5), same Dockerfile, same run.
# FROM a local registry's busybox (offline); the RUN unpacks a tar of the
# host's /usr/share (~690 MB, ~30k files: package files, symlinks, hard
# links) bind-mounted from the context, as `dpkg -i` or `apt-get install`
# of big packages does, deletes a base file (a whiteout) and replaces a base
# directory (an opaque one).
# buildah: overlay driver, --isolation chroot, its own --root/--runroot;
# wharf: release build, its defaults (RUN in a full container).
#
# Figures (release builds, RUNS=3 interleaved, 2 cores shared with three
# other engineers' compiles: load 5-7, so absolute times are ~2x a quiet
# machine's; medians):
#   wharf 56.6 s, buildah 80.0 s: wharf/buildah 0.71
#   wharf before the upper dir became the snapshot (main at d1027a1):
#   115.4 s, 1.44x buildah (an earlier, less loaded run: 41.3 s vs 39.7 s, 1.03)
# Where wharf's time goes now (RUST_LOG=wharf_builder=debug): the tar of
# the upper dir + parallel gzip -6 + sha256 of both streams ~28-32 s wall
# under that load (~16 s CPU), making the upper dir the snapshot 0.5-1 s;
# before, unpacking the blob again cost ~5-7 s CPU more and wrote 590 MB.
# buildah writes the diff to a temp file uncompressed, then applies it again.
#
#   LAB=/tmp/wharf-bench-big RUNS=3 bash bench/build-big.sh
#   WHARF_BEFORE=/tmp/wharf-main bash bench/build-big.sh   # and an older wharf
set -euo pipefail
me=$(readlink -f "$0"); cd "$(dirname "$me")/.."
LAB=${LAB:-/tmp/wharf-bench-big}; RUNS=${RUNS:-3}
WHARF=${WHARF:-$PWD/target/release/wharf}
export CONTAINERS_REGISTRIES_CONF="$LAB/registries.conf"
bah() { buildah --root "$LAB/b-nc" --runroot "$LAB/br-nc" --storage-driver overlay "$@"; }
step() {  # TOOL
  cd "$LAB/ctx"
  case "$1" in
    wharf)   "$WHARF" --root "$LAB/w-nc" --run-root "$LAB/wr" build -q --no-cache -t big . >/dev/null ;;
    buildah) bah bud -q --no-cache --isolation chroot -t big:latest . >/dev/null ;;
    before)  "$WHARF_BEFORE" --root "$LAB/w-nc" --run-root "$LAB/wr" build -q --no-cache -t big . >/dev/null ;;
  esac
}
if [ "${1:-}" = step ]; then shift; step "$@"; exit; fi

source scripts/deps.sh
[ -n "${WHARF_NO_BUILD:-}" ] || cargo build --release -q -p wharf -p wharf-runtime
rm -rf "$LAB"; mkdir -p "$LAB/ctx"
cleanup() {
  kill ${regpid:-} 2>/dev/null || true
  for d in "$LAB"/b-* "$LAB"/br-*; do grep -o " $d[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount 2>/dev/null || true; done
  rm -rf "$LAB"
}
trap cleanup EXIT
source bench/registry-common.sh
start_registry "$LAB"

# The base image: busybox from examples/Dockerfiles/busybox, pushed to the registry.
cp -a examples/Dockerfiles/busybox "$LAB/bb"; cp /bin/busybox "$LAB/bb/"
"$WHARF" --root "$LAB/w-base" --run-root "$LAB/wr" build -q -t "$reg/busybox:latest" "$LAB/bb" >/dev/null
"$WHARF" --root "$LAB/w-base" push -q "$reg/busybox:latest" >/dev/null
# GNU format (busybox tar reads it), ids as they are: what a package holds.
tar -C /usr --numeric-owner --format=gnu -cf "$LAB/ctx/share.tar" share
printf '%s\n' "FROM $reg/busybox" \
  'RUN --mount=type=bind,source=share.tar,target=/share.tar mkdir -p /usr && tar -xf /share.tar -C /usr && rm /etc/group && rm -rf /home && mkdir /home && echo x > /home/x' \
  'CMD ["ls","/usr/share"]' > "$LAB/ctx/Dockerfile"
"$WHARF" --root "$LAB/w-nc" pull -q "$reg/busybox:latest" >/dev/null
bah pull -q "$reg/busybox:latest" >/dev/null
echo "layer: $(du -sh "$LAB/ctx/share.tar" | cut -f1) tar, $(tar -tf "$LAB/ctx/share.tar" | wc -l) entries"

# Interleaved (wharf, buildah, wharf, ...): the other engineers' load moves
# over minutes, a per-tool batch as hyperfine runs it would skew the ratio.
# WHARF_BEFORE=path adds that binary (e.g. a build of main) to the same run.
tools=(wharf buildah); [ -n "${WHARF_BEFORE:-}" ] && tools+=(before)
for t in "${tools[@]}"; do step "$t"; done  # warm-up
for i in $(seq "$RUNS"); do
  for t in "${tools[@]}"; do
    s=$(date +%s.%N); step "$t"; e=$(date +%s.%N)
    d=$(awk -v s="$s" -v e="$e" 'BEGIN {printf "%.2f", e - s}')
    echo "$t $d" >> "$LAB/times"
    echo "run $i $t: $d s (load $(cut -d' ' -f1-3 /proc/loadavg))"
  done
done
med() { awk -v t="$1" '$1==t {print $2}' "$LAB/times" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
w=$(med wharf); b=$(med buildah)
printf 'big layer, --no-cache (median of %s): wharf %.1f s, buildah %.1f s, ratio wharf/buildah %.2f\n' "$RUNS" "$w" "$b" "$(awk -v a="$w" -v b="$b" 'BEGIN {print a / b}')"
if [ -n "${WHARF_BEFORE:-}" ]; then
  o=$(med before)
  printf '  before (%s): %.1f s, ratio before/buildah %.2f\n' "$WHARF_BEFORE" "$o" "$(awk -v a="$o" -v b="$b" 'BEGIN {print a / b}')"
fi
