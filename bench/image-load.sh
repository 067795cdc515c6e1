#!/bin/bash
# image-load.sh — `wharf load` (+ unpack, which load does) of a 200 MiB image
# against `skopeo copy` + `umoci unpack` of the same image, in one run.
#
# The image is made as ../shared/peers/04-images.sh makes it: umoci, busybox
# layer + one layer holding BIG_MB of /dev/urandom (incompressible), then
# `skopeo copy` into an OCI archive, which both sides read.
#
#   LAB=/tmp/wharf-bench-load BIG_MB=200 RUNS=5 bash bench/image-load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
LAB=${LAB:-/tmp/wharf-bench-load}; BIG_MB=${BIG_MB:-200}; RUNS=${RUNS:-5}
cargo build --release -q -p wharf
WHARF=$PWD/target/release/wharf
mkdir -p "$LAB"
O="$LAB/oci-src"
if [ ! -f "$LAB/big.tar" ]; then
  rm -rf "$O" "$LAB/w"; mkdir -p "$LAB/w"
  umoci init --layout "$O"
  umoci new --image "$O:busybox"
  umoci unpack --image "$O:busybox" "$LAB/w/bb"
  R="$LAB/w/bb/rootfs"; mkdir -p "$R"/{bin,tmp,etc,root}
  cp /bin/busybox "$R/bin/busybox"; chroot "$R" /bin/busybox --install -s /bin
  umoci repack --image "$O:busybox" "$LAB/w/bb"
  head -c "$((BIG_MB*1024*1024))" /dev/urandom > "$LAB/w/big.bin"
  umoci insert --image "$O:busybox" --tag big "$LAB/w/big.bin" /big.bin
  rm -rf "$LAB/w"
  skopeo copy -q "oci:$O:big" "oci-archive:$LAB/big.tar:docker.io/library/big:latest"
fi
ls -l "$LAB/big.tar"

cat > "$LAB/wharf-step" <<STEP
#!/bin/bash
set -e; rm -rf "$LAB/wr"; "$WHARF" --root "$LAB/wr" load -q -i "$LAB/big.tar" >/dev/null
STEP
cat > "$LAB/peer-step" <<STEP
#!/bin/bash
set -e; rm -rf "$LAB/sk" "$LAB/bundle"
skopeo copy -q "oci-archive:$LAB/big.tar" "oci:$LAB/sk:big" && umoci unpack --image "$LAB/sk:big" "$LAB/bundle" >/dev/null
STEP
chmod +x "$LAB/wharf-step" "$LAB/peer-step"

hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$LAB/load.json" \
  -n wharf "$LAB/wharf-step" -n skopeo+umoci "$LAB/peer-step"

rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ {print $2}'; }
rm -rf "$LAB/wr"; w_rss=$(rss "$WHARF" --root "$LAB/wr" load -q -i "$LAB/big.tar")
rm -rf "$LAB/sk" "$LAB/bundle"
s_rss=$(rss skopeo copy -q "oci-archive:$LAB/big.tar" "oci:$LAB/sk:big")
u_rss=$(rss umoci unpack --image "$LAB/sk:big" "$LAB/bundle")
jq -r '.results[] | "\(.command)\t median \(.median*1000|floor) ms\t (min \(.min*1000|floor), max \(.max*1000|floor))"' "$LAB/load.json"
jq -r '"ratio wharf/peer (median): \((.results[0].median / .results[1].median)*100|floor/100)"' "$LAB/load.json"
echo "peak RSS: wharf load ${w_rss} KiB; skopeo copy ${s_rss} KiB, umoci unpack ${u_rss} KiB"
rm -rf "$LAB/wr" "$LAB/sk" "$LAB/bundle"
