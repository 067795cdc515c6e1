#!/bin/bash
# build.sh — wharf build against buildah bud, same Dockerfile, same run
# (as ../shared/peers/06-buildah-bench.sh: FROM a local registry's busybox;
# RUN, COPY, ENV, CMD). buildah: overlay driver, --isolation chroot,
# --layers; wharf: its defaults (RUN in a full container: namespaces, cgroups).
#   cold    : a new empty store each run (pulls the base, 4 steps, commit)
#   nocache : a store holding the base, --no-cache
#   cached  : every step a cache hit
# Also: gzip throughput of a 200 MiB random layer (wharf's layer writer).
#
#   LAB=/tmp/wharf-bench-build RUNS=10 bash bench/build.sh
set -euo pipefail
me=$(readlink -f "$0"); cd "$(dirname "$me")/.."
LAB=${LAB:-/tmp/wharf-bench-build}; RUNS=${RUNS:-10}
WHARF=$PWD/target/release/wharf
export CONTAINERS_REGISTRIES_CONF="$LAB/registries.conf"
bah() { local tag=$1; shift; buildah --root "$LAB/b-$tag" --runroot "$LAB/br-$tag" --storage-driver overlay "$@"; }
step() {  # TOOL CASE
  local reg; reg=$(cat "$LAB/reg-addr"); cd "$LAB/ctx"
  local n; n=$(( $(cat "$LAB/counter" 2>/dev/null || echo 0) + 1 )); echo $n > "$LAB/counter"
  case "$1/$2" in
    wharf/cold)    "$WHARF" --root "$LAB/w-cold-$n" --run-root "$LAB/wr" build -q -t hello . >/dev/null ;;
    wharf/nocache) "$WHARF" --root "$LAB/w-nc" --run-root "$LAB/wr" build -q --no-cache -t hello . >/dev/null ;;
    wharf/cached)  "$WHARF" --root "$LAB/w-seed" --run-root "$LAB/wr" build -q -t hello . >/dev/null ;;
    buildah/cold)    bah "cold-$n" bud -q --layers --isolation chroot -t hello:latest . >/dev/null ;;
    buildah/nocache) bah nc bud -q --no-cache --isolation chroot -t hello:latest . >/dev/null ;;
    buildah/cached)  bah seed bud -q --layers --isolation chroot -t hello:latest . >/dev/null ;;
  esac
}
if [ "${1:-}" = step ]; then shift; step "$@"; exit; fi

source scripts/deps.sh
command -v buildah >/dev/null || apt-get install -y -qq --no-install-recommends buildah fuse-overlayfs >/dev/null
cargo build --release -q -p wharf -p wharf-runtime
rm -rf "$LAB"; mkdir -p "$LAB/ctx"
cleanup() {
  kill ${regpid:-} 2>/dev/null || true
  for d in "$LAB"/b-*; do grep -o " $d[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount 2>/dev/null || true; done
}
trap cleanup EXIT
source bench/registry-common.sh
start_registry "$LAB"
echo "$reg" > "$LAB/reg-addr"

# The base image: busybox from examples/Dockerfiles/busybox, pushed to the registry.
cp -a examples/Dockerfiles/busybox "$LAB/bb"; cp /bin/busybox "$LAB/bb/"
"$WHARF" --root "$LAB/w-base" --run-root "$LAB/wr" build -q -t "$reg/busybox:latest" "$LAB/bb" >/dev/null
"$WHARF" --root "$LAB/w-base" push -q "$reg/busybox:latest" >/dev/null
echo "some file content" > "$LAB/ctx/somefile"
printf 'FROM %s/busybox\nRUN echo hi > /hello\nCOPY somefile /\nENV A=b\nCMD ["cat","/hello"]\n' "$reg" > "$LAB/ctx/Dockerfile"
"$WHARF" --root "$LAB/w-nc" pull -q "$reg/busybox:latest" >/dev/null
step wharf cached; bah nc pull -q "$reg/busybox:latest" >/dev/null; step buildah cached

for c in cold nocache cached; do
  hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$LAB/$c.json" \
    -n "wharf $c" "bash $me step wharf $c" -n "buildah $c" "bash $me step buildah $c" >/dev/null
  jq -r --arg c "$c" '"\($c): wharf \(.results[0].median*1000|floor) ms, buildah \(.results[1].median*1000|floor) ms, ratio \((.results[0].median/.results[1].median)*100|floor/100)"' "$LAB/$c.json"
done
