#!/bin/bash
# build-cache.sh — the CI scenario of issue 14 §1 with a registry cache,
# wharf vs buildah (--layers --cache-to/--cache-from), same registry, same run.
#   (a) cold: fresh store, build + export the cache + push
#   (b) warm: fresh store, warm registry cache, unchanged Dockerfile, build + push
#   (c) last: fresh store, warm cache, the last RUN changed, build + push
# Each case reports seconds, layer bytes downloaded (the registry's access
# log: GET of blobs) and blob uploads (PUT/PATCH of uploads).
#
# Figures (debug wharf, 2 shared cores, 2 runs, 30 MB + 1 MB + 5 MB layers):
#   wharf   (a) 4.5-5.1 s               (b) 0.43-0.51 s, 5020 B down (two configs), 0 uploads
#           (c) 1.3-1.5 s, 33 MB down (the layers below the changed RUN), 2 uploads
#   buildah (a) 4.9-7.9 s               (b) 2.2-2.5 s, 38 MB down, 0 uploads
#           (c) 3.0-4.5 s, 33 MB down, 4 uploads
#   (b)/(a): wharf 0.10, buildah 0.32-0.45; (b) wharf/buildah 0.19-0.20.
#
#   bash bench/build-cache.sh             # debug build of wharf
#   WHARF=target/release/wharf bash bench/build-cache.sh
set -euo pipefail
me=$(readlink -f "$0"); cd "$(dirname "$me")/.."
WHARF=${WHARF:-$PWD/target/debug/wharf}
LAB=$(mktemp -d /tmp/wharf-bench-cache.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
cat > "$LAB/reg.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: false}}
storage: {filesystem: {rootdirectory: $LAB/reg-data}, delete: {enabled: true}}
http: {addr: $reg}
YML
docker-registry serve "$LAB/reg.yml" >"$LAB/reg.log" 2>&1 & regpid=$!
trap 'kill $regpid 2>/dev/null || true; rm -rf "$LAB"' EXIT
while ! (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null; do sleep 0.1; done

# The base: busybox-static, pushed once.
mkdir -p "$LAB/bb/bin"; cp /bin/busybox "$LAB/bb/bin/"; (cd "$LAB/bb" && tar cf ../bb.tar .)
"$WHARF" --root "$LAB/base" import "$LAB/bb.tar" -c 'CMD ["/bin/sh"]' busybox >/dev/null
"$WHARF" --root "$LAB/base" push -q busybox "$reg/lib/busybox:1" >/dev/null

mkdir -p "$LAB/ctx"; head -c 1048576 /dev/urandom > "$LAB/ctx/data.bin"
dockerfile() {
  cat > "$LAB/ctx/Dockerfile" <<DF
FROM $reg/lib/busybox:1
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox head -c 30000000 /dev/urandom > /big"]
COPY data.bin /data.bin
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox head -c 5000000 /dev/urandom > /last; echo $1"]
DF
}
counts() {  # downloaded layer bytes, upload requests since line $1 of the log
  tail -n +"$1" "$LAB/reg.log" | awk '/"GET \/v2\/[^ ]*\/blobs\/sha256:/ {for(i=1;i<=NF;i++) if($i ~ /^[0-9]+$/ && $(i-1) ~ /^[0-9][0-9][0-9]$/) b+=$i}
    /"(PUT|PATCH) \/v2\/[^ ]*\/blobs\/uploads\// {u++} END {printf "%d bytes down, %d uploads", b, u}'
}
run() {  # NAME CMD...
  local name=$1; shift; local l; l=$(( $(wc -l < "$LAB/reg.log") + 1 ))
  local t0; t0=$(date +%s.%N)
  "$@" >"$LAB/out" 2>&1 || { cat "$LAB/out"; exit 1; }
  printf '%-28s %6.2fs  %s\n' "$name" "$(echo "$(date +%s.%N) - $t0" | bc)" "$(counts "$l")"
}
w() {  # STORE-DIR ARGS...: a wharf build + push in a fresh store
  local s=$1; shift
  "$WHARF" --root "$LAB/$s" --run-root "$LAB/$s-run" build -q -t "$reg/app/w:1" --push "$@" "$LAB/ctx"
}
b() {  # STORE-DIR ARGS...: buildah bud --layers + push in a fresh storage
  local s=$1; shift
  buildah --root "$LAB/$s" --runroot "$LAB/$s-run" --storage-driver vfs bud -q --layers --tls-verify=false \
    --isolation chroot -t "$reg/app/b:1" "$@" "$LAB/ctx" >/dev/null
  buildah --root "$LAB/$s" --runroot "$LAB/$s-run" --storage-driver vfs push -q --tls-verify=false "$reg/app/b:1"
}
wc_to="type=registry,ref=$reg/cache/w:c,mode=max"; wc_from="type=registry,ref=$reg/cache/w:c"
dockerfile one
run "wharf (a) cold"  w w1 --cache-to "$wc_to"
run "wharf (b) warm"  w w2 --cache-from "$wc_from"
dockerfile two
run "wharf (c) last changed" w w3 --cache-from "$wc_from"
if command -v buildah >/dev/null; then
  dockerfile one
  run "buildah (a) cold" b b1 --cache-to "$reg/cache/b"
  run "buildah (b) warm" b b2 --cache-from "$reg/cache/b"
  dockerfile two
  run "buildah (c) last changed" b b3 --cache-from "$reg/cache/b"
fi
