#!/bin/bash
# runtime-common.sh — sourced by runtime-lifecycle.sh and runtime-parallel.sh:
# builds wharf-runtime as the README does, makes the busybox
# bundle ($B, runc spec, /bin/true, read-only root) and the same bundle with
# Docker's default capabilities and seccomp profile ($D), and works around
# crun's refusal of hybrid cgroup hosts (see runtime-lifecycle.sh).
set -euo pipefail
LAB=${LAB:-/tmp/wharf-rt-bench}; RUNS=${RUNS:-10}; N=20
HERE=$(cd "$(dirname "$0")/.." && pwd)
for t in runc crun jq hyperfine busybox; do
  command -v $t >/dev/null || { apt-get update; apt-get install -y runc crun jq hyperfine busybox-static time; break; }
done
[ -x /usr/bin/time ] || apt-get install -y time

# The binary users get: the README's `cargo build --release` (static and
# non-PIE in release builds, see crates/runtime/build.rs), in the default
# target dir. WHARF=/path/to/binary measures another one instead.
WHARF=${WHARF:-}
if [ -z "$WHARF" ]; then
  (cd "$HERE" && cargo build --release -q -p wharf-runtime)
  WHARF=$HERE/target/release/wharf-runtime
fi
# Peak RSS follows the page cache: the kernel maps a whole large folio per
# text fault, and a file just written by cp or a linker is cached otherwise
# than one read from disk (same binary: 2960 vs 3236 kB). So every runtime's
# binary is dropped from the cache first and read back as from disk.
evict_binaries() {
  for f in "$WHARF" "$(command -v crun || true)" "$(command -v runc)"; do
    [ -n "$f" ] && dd if="$f" iflag=nocache count=0 status=none || true
  done
}
if readelf -lW "$WHARF" | grep -q INTERP; then
  echo "NOTE: $WHARF is dynamically linked (no libc.a, or WHARF_RUNTIME_DYNAMIC=1)"
fi

mkdir -p "$LAB"
B=$LAB/bundle-true
if [ ! -f "$B/config.json" ]; then
  rm -rf "$B"; mkdir -p "$B/rootfs"/{bin,proc,sys,dev,tmp,etc,root}
  cp /bin/busybox "$B/rootfs/bin/busybox"
  chroot "$B/rootfs" /bin/busybox --install -s /bin
  echo "root:x:0:0:root:/root:/bin/sh" > "$B/rootfs/etc/passwd"
  echo "root:x:0:" > "$B/rootfs/etc/group"
  (cd "$B" && runc spec)
  jq '.process.terminal=false | .process.args=["/bin/true"] | .root.readonly=true' \
     "$B/config.json" > "$B/config.json.new" && mv "$B/config.json.new" "$B/config.json"
fi

# The same bundle with what `wharf run` gives a container: Docker's 14
# capabilities and Docker's default seccomp profile (from the spec helper,
# crates/runtime/examples/docker-spec.rs). Every runtime gets this config.json.
D=$LAB/bundle-docker
if [ ! -f "$D/config.json" ]; then
  mkdir -p "$D"
  (cd "$HERE" && cargo run -q --release -p wharf-runtime --example docker-spec) > "$LAB/docker-spec.json"
  jq --slurpfile d "$LAB/docker-spec.json" --arg root "$B/rootfs" \
     '.root.path=$root | .process.capabilities=$d[0].process.capabilities | .linux.seccomp=$d[0].linux.seccomp' \
     "$B/config.json" > "$D/config.json"
fi

U=/sys/fs/cgroup/unified
MOVED=()
# (cgroupfs files report size 0, so test the content, not -s)
if [ "${FIX_HYBRID:-1}" = 1 ] && [ -n "$(cat "$U/cgroup.controllers" 2>/dev/null)" ] && [ "$(stat -f -c %T "$U")" = cgroup2fs ]; then
  for c in $(cat "$U/cgroup.controllers"); do
    if [ ! -d "/sys/fs/cgroup/$c" ] || ! mountpoint -q "/sys/fs/cgroup/$c"; then
      mkdir -p "/sys/fs/cgroup/$c"
      # Refused while a cgroup2 group still uses the controller (e.g. a
      # container someone left running): then crun is skipped below.
      mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c" ||
        { rmdir "/sys/fs/cgroup/$c" 2>/dev/null || true
          echo "NOTE: could not move cgroup controller $c off cgroup2 (in use)"; continue; }
      MOVED+=("$c")
      echo "NOTE: moved cgroup controller $c from cgroup2 to a v1 mount (crun's hybrid-mode workaround; undone at exit)"
    fi
  done
fi
# Leave the host as we found it: unmounting the v1 hierarchy hands the
# controller back to cgroup2 — but only if no removed cgroup is still dying
# at that moment (otherwise the hierarchy lingers unmounted); so check and
# retry by mounting it again briefly. KEEP_HYBRID_FIX=1 keeps the move.
restore_hybrid() {
  [ "${KEEP_HYBRID_FIX:-0}" = 1 ] && return
  for c in "${MOVED[@]}"; do
    umount "/sys/fs/cgroup/$c" && rmdir "/sys/fs/cgroup/$c" || continue
    for try in 1 2 3 4 5; do
      for _ in $(seq 20); do grep -qw "$c" "$U/cgroup.controllers" && break 2; sleep 0.1; done
      tmp=$(mktemp -d); mount -t cgroup -o "$c" cgroup "$tmp" && umount "$tmp"; rmdir "$tmp"
    done
    echo "NOTE: gave cgroup controller $c back to cgroup2: [$(cat $U/cgroup.controllers)]"
  done
}
trap restore_hybrid EXIT

