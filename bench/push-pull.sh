#!/bin/bash
# push-pull.sh — wharf push/pull against skopeo copy, same registry, same run.
#
# Images as ../shared/peers/04-images.sh makes them (umoci): big = busybox +
# one 200 MiB urandom layer; many = busybox + 50 small layers (51 layers);
# gib = busybox + a 1 GiB file of zeros (only for the peak RSS of a pull).
# The umoci layout is itself wharf's store (an OCI layout) for the pushes.
# Cases, as ../shared/peers/05-push-pull-bench.sh:
#   push-fresh IMG : to a new repository every run, caches removed first
#                    (skopeo's blob-info cache; wharf's registry-sources.json)
#   repush IMG     : to a repository already holding every blob
#   pull IMG       : into a new empty store / OCI dir every run
#                    (wharf also unpacks every layer; skopeo does not)
#
# Each case runs RUNS rounds, wharf and the peer interleaved (order
# alternating) so a busy machine weighs on both alike; the medians are
# reported. Only the tool's own process is timed: the set-up of a run
# (removing the store, the fresh repository, the caches) is not. Beside the
# wall time: the tool's CPU and the registry's CPU during the run
# (/proc/<registry>/stat), the floor no client can go under.
#
#   LAB=/tmp/wharf-bench-reg RUNS=5 bash bench/push-pull.sh
#   WHARF=/path/to/wharf bash bench/push-pull.sh   # that binary, no build
#
# Figures (2 shared cores, load 3-9 from other builds; RUNS=5, same run):
#   case             before (d1027a1)         after (this branch)
#   push-fresh big   1638/2578 ms = 0.64      1940/3068 ms = 0.63
#   push-fresh many   681/3540 ms = 0.19       776/3898 ms = 0.20
#   repush big         71/86 ms   = 0.83        49/76 ms   = 0.64
#   repush many       182/1032 ms = 0.18       209/1231 ms = 0.17
#   pull big          903/1802 ms = 0.50      1332/2212 ms = 0.60
#   pull many        637/757 ms   = 0.84       777/1062 ms = 0.73
#   peak RSS, pull of the 1 GiB layer: 18 MiB (before and after)
# (The old harness timed `bash push-pull.sh step ...` with hyperfine, tool
# after tool: ~25 ms of bash per run on both sides and the load of one
# minute against the other's; it read repush big 0.88, pull many 1.74.)
#
# What the floor is, measured here (the registry's part alone):
# - push-fresh big: curl's single PUT of the 200 MiB layer takes 2581 ms
#   (wharf 2780 ms in the same round, wharf's CPU 140 ms; the registry's
#   CPU 1310 ms: it hashes and writes what it receives, on one stream) --
#   0.84x skopeo's 3068 ms. No client can reach 0.5x here: wharf's push is
#   the registry's PUT (one POST, one monolithic PUT, the blob read once).
# - repush big: HEAD x3 + the manifest PUT; wharf 49 ms of which its own
#   start (exec, store) is ~10 ms; oci-client's system root certificates
#   (~5 ms of CPU) are now loaded on a thread beside the first requests.
# - pull many: curl GETs the 51 layer blobs, 6 at once, in 395 ms (the
#   registry spends ~5 ms of CPU per blob GET; 230 ms for the image);
#   wharf 684 ms in that round, with 200 ms of its own CPU (52 blobs
#   written, 51 snapshots unpacked, one fsync round). Skopeo 1062 ms.
# - pull big: curl of the layer blob alone 735 ms; wharf 1532 ms in that
#   round with 850 ms of CPU: it hashes 200 MiB twice (blob digest and
#   diffID, ~1 GB/s each with SHA-NI, on two threads) and writes 400 MiB
#   (the blob and the unpacked file); skopeo hashes and writes 200 MiB.
set -euo pipefail
me=$(readlink -f "$0"); cd "$(dirname "$me")/.."
LAB=${LAB:-/tmp/wharf-bench-reg}; RUNS=${RUNS:-5}
build=${WHARF:+no}; export WHARF=${WHARF:-$PWD/target/release/wharf}
O="$LAB/oci-src"; BIC=/var/lib/containers/cache/blob-info-cache-v1.boltdb

layers() {  # the layer digests of IMG (for big, the last is the 200 MiB one)
  local m; m=$(jq -r --arg i "$1" '.manifests[] | select(.annotations."org.opencontainers.image.ref.name"==$i) | .digest' "$O/index.json")
  jq -r '.layers[].digest' "$O/blobs/sha256/${m#sha256:}"
}
prep() {  # TOOL CASE IMG: what a run needs first, not timed
  local tool=$1 case=$2 img=$3
  case "$tool/$case" in
    # A fresh repository every run: the repository's directory in the
    # registry's storage goes (the blobs stay, as with a new name each run).
    wharf/push-fresh)  rm -f "$O/registry-sources.json"; rm -rf "$REPOS/w-$img-fresh" ;;
    skopeo/push-fresh) rm -f "$BIC"; rm -rf "$REPOS/s-$img-fresh" ;;
    curl/push-fresh)
      rm -rf "$REPOS/c-$img-fresh"
      local loc l; loc=$(curl -sf -X POST -D - -o /dev/null "http://$reg/v2/c-$img-fresh/blobs/uploads/" |
        awk -F': ' 'tolower($1)=="location" {print $2}' | tr -d '\r')
      case $loc in http*) ;; *) loc="http://$reg$loc" ;; esac
      l=$(layers "$img" | tail -1); printf 'url = "%s&digest=%s"\n' "$loc" "$l" > "$LAB/put.curlrc" ;;
    wharf/pull) rm -rf "$LAB/pull-w" ;;
    skopeo/pull) rm -rf "$LAB/pull-s" ;;
    curl/pull) rm -rf "$LAB/pull-c"; mkdir "$LAB/pull-c" ;;
  esac
}
cmd() {  # TOOL CASE IMG: sets CMD, the timed command alone
  local tool=$1 case=$2 img=$3 l u; l=$(layers "$img" | tail -1)
  case "$tool/$case" in
    wharf/push-fresh)  CMD=("$WHARF" --root "$O" push -q "$img" "$reg/w-$img-fresh:latest") ;;
    wharf/repush)      CMD=("$WHARF" --root "$O" push -q "$img" "$reg/w-$img-base:latest") ;;
    wharf/pull)        CMD=("$WHARF" --root "$LAB/pull-w" pull -q "$reg/w-$img-base:latest") ;;
    skopeo/push-fresh) CMD=(skopeo copy -q --dest-tls-verify=false "oci:$O:$img" "docker://$reg/s-$img-fresh:latest") ;;
    skopeo/repush)     CMD=(skopeo copy -q --dest-tls-verify=false "oci:$O:$img" "docker://$reg/s-$img-base:latest") ;;
    skopeo/pull)       CMD=(skopeo copy -q --src-tls-verify=false "docker://$reg/s-$img-base:latest" "oci:$LAB/pull-s:$img") ;;
    # The floor: the registry's part alone. curl moves the layer blobs into
    # files (6 at once, as skopeo), or PUTs the big layer (its POST in prep).
    curl/pull)         CMD=(curl -sf --no-progress-meter --parallel --parallel-max 6 --output-dir "$LAB/pull-c")
                       for u in $(layers "$img"); do CMD+=(-o "${u#sha256:}" "http://$reg/v2/w-$img-base/blobs/$u"); done ;;
    curl/push-fresh)   CMD=(curl -sf -o /dev/null -X PUT -H 'Content-Type: application/octet-stream'
                            -T "$O/blobs/sha256/${l#sha256:}" -K "$LAB/put.curlrc") ;;
  esac
}
regcpu() { awk '{print ($14+$15)*10}' "/proc/$regpid/stat"; }   # ms, at 100 ticks/s
once() {  # TOOL CASE IMG: prints "wall_ms cpu_ms registry_cpu_ms" of one timed run
  prep "$@"; cmd "$@"
  local s e r0 r1; r0=$(regcpu); s=$(date +%s%N)
  /usr/bin/time -f '%U %S' -o "$LAB/cpu" "${CMD[@]}" >/dev/null
  e=$(date +%s%N); r1=$(regcpu)
  echo "$(( (e - s) / 1000000 )) $(awk '{print int(($1+$2)*1000)}' "$LAB/cpu") $((r1 - r0))"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
compare() {  # CASE IMG TOOL TOOL: RUNS interleaved rounds (order alternating), one warm-up each
  local case=$1 img=$2 a=$3 b=$4 i; : > "$LAB/t-$a"; : > "$LAB/t-$b"
  once "$a" "$case" "$img" >/dev/null; once "$b" "$case" "$img" >/dev/null
  for i in $(seq "$RUNS"); do
    if [ $((i % 2)) = 1 ]; then once "$a" "$case" "$img" >> "$LAB/t-$a"; once "$b" "$case" "$img" >> "$LAB/t-$b"
    else once "$b" "$case" "$img" >> "$LAB/t-$b"; once "$a" "$case" "$img" >> "$LAB/t-$a"; fi
  done
  local wa wb ca cb ra rb
  wa=$(cut -d' ' -f1 "$LAB/t-$a" | median); wb=$(cut -d' ' -f1 "$LAB/t-$b" | median)
  ca=$(cut -d' ' -f2 "$LAB/t-$a" | median); cb=$(cut -d' ' -f2 "$LAB/t-$b" | median)
  ra=$(cut -d' ' -f3 "$LAB/t-$a" | median); rb=$(cut -d' ' -f3 "$LAB/t-$b" | median)
  echo "$case $img: $a $wa ms, $b $wb ms, ratio $(awk -v x="$wa" -v y="$wb" 'BEGIN {printf "%.2f", x/y}')" \
    "(median wall of $RUNS; cpu ms $a $ca, $b $cb; registry cpu ms $a $ra, $b $rb)"
}
source scripts/deps.sh
[ "$build" = no ] || cargo build --release -q -p wharf
mkdir -p "$LAB"
if [ ! -f "$O/index.json" ] || ! grep -q '"gib"' "$O/index.json"; then
  rm -rf "$O" "$LAB/w"; mkdir -p "$LAB/w"
  umoci init --layout "$O"; umoci new --image "$O:busybox"
  umoci unpack --image "$O:busybox" "$LAB/w/bb"
  R="$LAB/w/bb/rootfs"; mkdir -p "$R"/{bin,tmp,etc,root}
  cp /bin/busybox "$R/bin/busybox"; chroot "$R" /bin/busybox --install -s /bin
  umoci repack --image "$O:busybox" "$LAB/w/bb"
  umoci config --image "$O:busybox" --config.cmd sh --os linux --architecture amd64
  head -c $((200*1024*1024)) /dev/urandom > "$LAB/w/big.bin"
  umoci insert --image "$O:busybox" --tag big "$LAB/w/big.bin" /big.bin
  umoci tag --image "$O:busybox" many
  for i in $(seq 50); do head -c 16384 /dev/urandom > "$LAB/w/s$i"; umoci insert --image "$O:many" "$LAB/w/s$i" "/small/f$i"; done
  head -c $((1024*1024*1024)) /dev/zero > "$LAB/w/gib.bin"
  umoci tag --image "$O:busybox" gib; umoci insert --image "$O:gib" "$LAB/w/gib.bin" /gib.bin
  rm -rf "$LAB/w"; umoci gc --layout "$O"
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "127.0.0.1:$port" > "$LAB/reg-addr"; reg=127.0.0.1:$port
REPOS=$LAB/reg-data/docker/registry/v2/repositories
rm -rf "$LAB/reg-data"
cat > "$LAB/reg.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $LAB/reg-data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$LAB/reg.yml" >"$LAB/reg.log" 2>&1 & regpid=$!
trap 'kill $regpid 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
for img in big many; do   # the base repositories for repush and pull
  "$WHARF" --root "$O" push -q "$img" "$reg/w-$img-base:latest" >/dev/null
  skopeo copy -q --dest-tls-verify=false "oci:$O:$img" "docker://$reg/s-$img-base:latest"
done
uptime
for c in push-fresh repush pull; do
  for img in big many; do compare "$c" "$img" wharf skopeo; done
done
# How close to the registry's own time (the floor):
compare push-fresh big wharf curl; compare pull big wharf curl; compare pull many wharf curl
rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ {print $2}'; }
rm -f "$O/registry-sources.json" "$BIC"
echo "peak RSS push big: wharf $(rss "$WHARF" --root "$O" push -q big "127.0.0.1:$port/rss-w:1") KiB," \
  "skopeo $(rss skopeo copy -q --dest-tls-verify=false "oci:$O:big" "docker://127.0.0.1:$port/rss-s:1") KiB"
rm -rf "$LAB/pull-w" "$LAB/pull-s"
"$WHARF" --root "$O" push -q gib "127.0.0.1:$port/w-gib-base:latest" >/dev/null
rm -rf "$LAB/pull-w"
echo "peak RSS pull 1 GiB layer: wharf $(rss "$WHARF" --root "$LAB/pull-w" pull -q "127.0.0.1:$port/w-gib-base:latest") KiB"
rm -rf "$LAB/pull-w" "$LAB/pull-s"
echo "peak RSS pull big: wharf $(rss "$WHARF" --root "$LAB/pull-w" pull -q "127.0.0.1:$port/w-big-base:latest") KiB," \
  "skopeo $(rss skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$port/s-big-base:latest" "oci:$LAB/pull-s:big") KiB"
