#!/bin/bash
# multiplatform.sh — a two-platform build (linux/amd64 + linux/arm64, the arm64
# binary cross-compiled in a `FROM --platform=$BUILDPLATFORM` stage with
# Debian's gcc-12-aarch64-linux-gnu) against the same build for one platform,
# and against buildah `bud --platform linux/amd64,linux/arm64 --manifest` on
# the same Dockerfile, same run. Every build is --no-cache on a store that
# already holds the toolchain base image (pulled from a local registry), so
# what is measured is the stages, the compiles, the layers and the index.
# Target (issue 14): two platforms ≤ 1.5× one.
#
# Figures (release, 2026-11-29, 2 shared cores, medians of 7 alternated
# pairs): at load 8-10, wharf one platform 900-1160 ms, two 1310-1960 ms,
# ratio 1.46-1.69 (CPU, containers included: 230-260 ms vs 480-580 ms,
# 2.1-2.2); buildah 3170 vs 6420 ms, 2.0. Where the second platform's time
# goes: the steps before `ARG TARGETARCH` of the `$BUILDPLATFORM` stage run
# once (its COPY is CACHED for the other platform); the two compiles (~75% of
# the CPU), their layers and the final stages run in a thread per platform;
# nothing is serialized but the index (a few ms). So the CPU doubles and the
# wall ratio is what the machine's free cores allow: near 1.1 on two idle
# cores, toward 2 when others keep them busy. The old 1.59 (and a 2.93 of the
# same binary at 06:16) came from running all the one-platform builds, then
# all the two-platform ones while the load changed; alternating them, the
# same binary measures 1.46. Per step, a COPY --from mounted the source stage
# twice (cache key, then copy) and each read-only overlay synced the work
# dir's filesystem at unmount; mounted once and volatile, both builds are
# ~10% faster (A/B alternated at load 10: one 1390 -> 1240 ms, two 2030 ->
# 1845 ms; ratio 1.46 -> 1.49, unchanged since both gain).
# 2026-11-29 08:48, quiet (load 0.5-0.9), RUNS=5: wharf one 340 ms, two 350 ms:
# ratio 1.03 (CPU 2.04); buildah 920 vs 1890 ms: 2.05.
#
#   LAB=/tmp/wharf-bench-mp RUNS=5 bash bench/multiplatform.sh
#   WHARF=target/debug/wharf bash bench/multiplatform.sh   # skip the release build
set -euo pipefail
me=$(readlink -f "$0"); cd "$(dirname "$me")/.."
LAB=${LAB:-/tmp/wharf-bench-mp}; RUNS=${RUNS:-5}
export CONTAINERS_REGISTRIES_CONF="$LAB/registries.conf"
bah() { buildah --root "$LAB/b" --runroot "$LAB/br" --storage-driver overlay "$@"; }
step() {  # TOOL CASE
  local W; W=$(cat "$LAB/wharf-bin"); cd "$LAB/ctx"
  case "$1/$2" in
    wharf/one) "$W" --root "$LAB/w" --run-root "$LAB/wr" build -q --no-cache --platform linux/amd64 -t hello:one . >/dev/null ;;
    wharf/two) "$W" --root "$LAB/w" --run-root "$LAB/wr" build -q --no-cache --platform linux/amd64,linux/arm64 -t hello:two . >/dev/null ;;
    buildah/one) bah bud -q --no-cache --isolation chroot --platform linux/amd64 -t hello:one . >/dev/null ;;
    buildah/two)
      bah manifest rm hello:two >/dev/null 2>&1 || true
      bah bud -q --no-cache --isolation chroot --platform linux/amd64,linux/arm64 --manifest hello:two . >/dev/null ;;
  esac
}
if [ "${1:-}" = step ]; then shift; step "$@"; exit; fi

source scripts/deps.sh
if [ -z "${WHARF:-}" ]; then
  cargo build --release -q -p wharf -p wharf-runtime
  WHARF=$PWD/target/release/wharf
fi
WHARF=$(readlink -f "$WHARF")
rm -rf "$LAB"; mkdir -p "$LAB/ctx"; echo "$WHARF" > "$LAB/wharf-bin"
cleanup() {
  kill ${regpid:-} 2>/dev/null || true
  grep -o " $LAB/b[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount 2>/dev/null || true
}
trap cleanup EXIT
source bench/registry-common.sh
start_registry "$LAB"

# The toolchain base (the host's gcc-12 and gcc-12-aarch64-linux-gnu), in the registry.
bash tests/multiplatform/toolchain-rootfs.sh "$LAB/tc" >/dev/null
tar -C "$LAB/tc" -cf "$LAB/tc.tar" .
"$WHARF" --root "$LAB/w-seed" --run-root "$LAB/wr" import "$LAB/tc.tar" "$reg/toolchain:1" >/dev/null
"$WHARF" --root "$LAB/w-seed" --run-root "$LAB/wr" push -q "$reg/toolchain:1" >/dev/null
"$WHARF" --root "$LAB/w" --run-root "$LAB/wr" pull -q "$reg/toolchain:1" >/dev/null
bah pull -q "$reg/toolchain:1" >/dev/null

# A small C program, a few translation units so the compile is not nothing.
for i in 1 2 3 4; do
  printf '#include <stdio.h>\nint f%d(int x){int s=0;for(int i=0;i<x;i++)s+=i*%d;return s;}\n' "$i" "$i" > "$LAB/ctx/f$i.c"
done
printf '#include <stdio.h>\nint f1(int);int f2(int);int f3(int);int f4(int);\nint main(void){printf("hello %%d\\n",f1(3)+f2(3)+f3(3)+f4(3));return 0;}\n' > "$LAB/ctx/main.c"
cat > "$LAB/ctx/Dockerfile" <<EOF
FROM --platform=\$BUILDPLATFORM $reg/toolchain:1 AS build
ARG TARGETARCH
COPY *.c /src/
RUN cd /src && case "\$TARGETARCH" in amd64) CC=gcc-12;; arm64) CC=aarch64-linux-gnu-gcc-12;; esac \\
 && \$CC -static -O2 -o /hello *.c
FROM scratch
COPY --from=build /hello /hello
ENTRYPOINT ["/hello"]
EOF
step wharf two  # warm the page cache and check it builds
"$WHARF" --root "$LAB/w" --run-root "$LAB/wr" manifest inspect hello:two | jq -c '[.manifests[].platform.architecture]'
tools=(wharf)
if step buildah two 2>"$LAB/buildah.err"; then tools+=(buildah); else
  echo "buildah cannot build it here: $(tail -1 "$LAB/buildah.err")"; fi

# One and two platforms in turns (one-two, then two-one, ...), not all the
# ones and then all the twos: on a shared machine the load drifts, and a
# drift between the two series was read as the ratio (1.59, then 2.93 for
# the same binary). Wall and CPU (user+sys, the RUN containers included)
# per build; the medians' ratios.
echo "load before: $(uptime | sed 's/.*load/load/')"
for t in "${tools[@]}"; do
  step "$t" one; step "$t" two  # warm-up
  : > "$LAB/$t.times"
  for i in $(seq "$RUNS"); do
    order="one two"; [ $((i % 2)) = 0 ] && order="two one"
    for c in $order; do
      /usr/bin/time -f "$c %e %U %S" -a -o "$LAB/$t.times" bash "$me" step "$t" "$c"
    done
  done
  python3 - "$t" "$LAB/$t.times" <<'PY'
import statistics, sys
t, path = sys.argv[1], sys.argv[2]
wall, cpu = {}, {}
for line in open(path):
    c, e, u, s = line.split()
    wall.setdefault(c, []).append(float(e)); cpu.setdefault(c, []).append(float(u) + float(s))
w = {c: statistics.median(v) for c, v in wall.items()}
u = {c: statistics.median(v) for c, v in cpu.items()}
print(f"{t}: one platform {w['one']*1000:.0f} ms (cpu {u['one']*1000:.0f} ms), two platforms "
      f"{w['two']*1000:.0f} ms (cpu {u['two']*1000:.0f} ms): ratio {w['two']/w['one']:.2f} "
      f"(cpu {u['two']/u['one']:.2f})")
PY
done
echo "load after: $(uptime | sed 's/.*load/load/')"
