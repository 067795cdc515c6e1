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
#   LAB=/tmp/wharf-bench-reg RUNS=5 bash bench/push-pull.sh
#   WHARF=/path/to/wharf bash bench/push-pull.sh   # that binary, no build
#   bash bench/push-pull.sh step TOOL CASE IMG     # one timed step
set -euo pipefail
me=$(readlink -f "$0"); cd "$(dirname "$me")/.."
LAB=${LAB:-/tmp/wharf-bench-reg}; RUNS=${RUNS:-5}
build=${WHARF:+no}; export WHARF=${WHARF:-$PWD/target/release/wharf}
O="$LAB/oci-src"; BIC=/var/lib/containers/cache/blob-info-cache-v1.boltdb

layer() {  # the last layer of IMG (the big one)
  local m; m=$(jq -r --arg i "$1" '.manifests[] | select(.annotations."org.opencontainers.image.ref.name"==$i) | .digest' "$O/index.json")
  jq -r '.layers[-1].digest' "$O/blobs/sha256/${m#sha256:}"
}
step() {  # TOOL CASE IMG
  local tool=$1 case=$2 img=$3 reg; reg=$(cat "$LAB/reg-addr")
  local n; n=$(( $(cat "$LAB/counter" 2>/dev/null || echo 0) + 1 )); echo $n > "$LAB/counter"
  case "$tool/$case" in
    wharf/push-fresh) rm -f "$O/registry-sources.json"; "$WHARF" --root "$O" push -q "$img" "$reg/w-$img-$n:latest" >/dev/null ;;
    wharf/repush)     "$WHARF" --root "$O" push -q "$img" "$reg/w-$img-base:latest" >/dev/null ;;
    wharf/pull)       rm -rf "$LAB/pull-w"; "$WHARF" --root "$LAB/pull-w" pull -q "$reg/w-$img-base:latest" >/dev/null ;;
    skopeo/push-fresh) rm -f "$BIC"; skopeo copy -q --dest-tls-verify=false "oci:$O:$img" "docker://$reg/s-$img-$n:latest" ;;
    skopeo/repush)    skopeo copy -q --dest-tls-verify=false "oci:$O:$img" "docker://$reg/s-$img-base:latest" ;;
    skopeo/pull)      rm -rf "$LAB/pull-s"; skopeo copy -q --src-tls-verify=false "docker://$reg/s-$img-base:latest" "oci:$LAB/pull-s:$img" ;;
    # The floor: the registry's part alone (curl moves the layer blob, nothing else).
    curl/pull) curl -sf -o "$LAB/pull-c" "http://$reg/v2/w-$img-base/blobs/$(layer "$img")"; rm -f "$LAB/pull-c" ;;
    curl/push-fresh)
      local loc; loc=$(curl -sf -X POST -D - -o /dev/null "http://$reg/v2/c-$img-$n/blobs/uploads/" |
        awk -F': ' 'tolower($1)=="location" {print $2}' | tr -d '\r')
      case $loc in http*) ;; *) loc="http://$reg$loc" ;; esac
      local l; l=$(layer "$img"); curl -sf -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
        -T "$O/blobs/sha256/${l#sha256:}" "$loc&digest=$l" ;;
  esac
}
if [ "${1:-}" = step ]; then shift; step "$@"; exit; fi

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
echo "127.0.0.1:$port" > "$LAB/reg-addr"
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
  step wharf push-fresh "$img"; "$WHARF" --root "$O" push -q "$img" "127.0.0.1:$port/w-$img-base:latest" >/dev/null
  skopeo copy -q --dest-tls-verify=false "oci:$O:$img" "docker://127.0.0.1:$port/s-$img-base:latest"
done

for c in push-fresh repush pull; do
  for img in big many; do
    hyperfine -N --runs "$RUNS" --warmup 1 --export-json "$LAB/$c-$img.json" \
      -n "wharf $c $img" "bash $me step wharf $c $img" -n "skopeo $c $img" "bash $me step skopeo $c $img" >/dev/null
    jq -r --arg c "$c" --arg i "$img" \
      '"\($c) \($i): wharf \(.results[0].median*1000|floor) ms, skopeo \(.results[1].median*1000|floor) ms, ratio \((.results[0].median/.results[1].median)*100|floor/100)"' \
      "$LAB/$c-$img.json"
  done
done
for c in push-fresh pull; do   # how close to the registry's own time
  hyperfine -N --runs "$RUNS" --warmup 1 --export-json "$LAB/floor-$c.json" \
    -n "wharf $c big" "bash $me step wharf $c big" -n "curl $c big" "bash $me step curl $c big" >/dev/null
  jq -r --arg c "$c" '"\($c) big, floor: wharf \(.results[0].median*1000|floor) ms, curl (layer blob only) \(.results[1].median*1000|floor) ms"' \
    "$LAB/floor-$c.json"
done
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
