#!/bin/bash
# make-toolchain.sh OUT.tar — a C toolchain image's rootfs from the host's own
# Debian packages (gcc, binutils, libc6-dev and what they load), for
# `wharf import OUT.tar wharf-examples/gcc`. No internet: the files come from
# the host, listed by dpkg. The image holds no shell; use exec-form RUN.
set -euo pipefail
out=${1:?usage: make-toolchain.sh OUT.tar}
gccver=$(gcc -dumpversion | cut -d. -f1)
pkgs=(gcc "gcc-$gccver" "cpp-$gccver" "libgcc-$gccver-dev" binutils binutils-x86-64-linux-gnu libbinutils
      libctf0 libctf-nobfd0 libsframe0 libgprofng0 libjansson4 libc6 libc6-dev libc-dev-bin linux-libc-dev
      libcrypt1 libcrypt-dev libgcc-s1 libisl23 libmpc3 libmpfr6 libgmp10 libzstd1 zlib1g libstdc++6 libcc1-0
      libnsl-dev libtirpc-dev)
list=$(mktemp)
trap 'rm -f "$list"' EXIT
installed=()
for p in "${pkgs[@]}"; do dpkg-query -W "$p" >/dev/null 2>&1 && installed+=("$p"); done
# usrmerge: /lib/... is /usr/lib/...; files are stored under their real
# directory, and the top-level links are added so /lib64/ld-linux... resolves.
dpkg -L "${installed[@]}" | python3 -c '
import os, sys
out = set()
for f in sys.stdin.read().split("\n"):
    if not f.startswith("/") or not os.path.lexists(f):
        continue
    if os.path.isdir(f) and not os.path.islink(f):
        continue
    d = os.path.realpath(os.path.dirname(f))
    p = os.path.join(d, os.path.basename(f)).lstrip("/")
    if p and p not in ("lib", "lib64", "bin", "sbin"):
        out.add(p)
for p in sorted(out):
    print(p)
for l in ("bin", "sbin", "lib", "lib64"):
    if os.path.islink("/" + l):
        print(l)
' > "$list"
mkdir -p "$(dirname "$out")"
tar -C / --no-recursion -cf "$out" -T "$list"
