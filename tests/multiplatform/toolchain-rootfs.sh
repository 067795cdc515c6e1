#!/bin/bash
# toolchain-rootfs.sh DIR — a root filesystem holding the host's C toolchains
# (gcc-12 for amd64, gcc-12-aarch64-linux-gnu for arm64, static libcs) and
# busybox as /bin/sh: the files of those Debian packages (no docs) and the
# shared libraries their programs load, at the paths they have on the host.
# The base of a `FROM --platform=$BUILDPLATFORM` cross-compilation stage.
set -euo pipefail
dir=$1
mkdir -p "$dir"
pkgs=(gcc-12 cpp-12 binutils binutils-x86-64-linux-gnu libbinutils libctf0 libctf-nobfd0 libgprofng0 libsframe0
  libc6-dev libgcc-12-dev linux-libc-dev libc6 libcrypt-dev libgcc-s1
  gcc-12-aarch64-linux-gnu cpp-12-aarch64-linux-gnu binutils-aarch64-linux-gnu
  libc6-dev-arm64-cross libc6-arm64-cross libgcc-12-dev-arm64-cross linux-libc-dev-arm64-cross libgcc-s1-arm64-cross)
list=$(mktemp)
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || continue
  dpkg -L "$p"
done | grep -Ev '^/usr/share/(doc|man|info|locale|lintian|bug|gdb)|/lto1$|lto-dump|ld\.gold|gprofng|/plugin/|/lib(a|t|l|ub|hwa)san' | sort -u > "$list"
# Programs' shared libraries (and the loader), by the names ldd prints.
libs=$(mktemp)
grep -E '/(bin|libexec|lib/gcc|lib/gcc-cross)/' "$list" | while read -r f; do
  [ -f "$f" ] && [ -x "$f" ] && [ ! -L "$f" ] || continue
  ldd "$f" 2>/dev/null | grep -oE '/[^ ]+' || true
done | sort -u > "$libs"
# Packages' files as they are (symlinks kept), but not directories that are
# symlinks on a merged-/usr host (/lib, /bin); then the libraries, dereferenced.
while read -r f; do
  { [ -L "$f" ] && [ -d "$f" ]; } || { [ -d "$f" ] && ! [ -L "$f" ]; } || { [ -e "$f" ] || [ -L "$f" ]; } && printf '%s\n' "${f#/}"
done < "$list" | grep -v '^$' | while read -r f; do [ -d "/$f" ] || echo "$f"; done > "$list.files"
tar -C / --no-recursion -cf - -T "$list.files" | tar -C "$dir" -xf -
sed 's|^/||' "$libs" | tar -C / --no-recursion -hcf - -T - | tar -C "$dir" --skip-old-files -xf -
rm -f "$list.files"
rm -f "$list" "$libs"
mkdir -p "$dir/bin" "$dir/tmp" "$dir/etc" "$dir/src"
cp /bin/busybox "$dir/bin/busybox"
for a in sh echo cat ls mkdir rm cp mv test; do ln -sf busybox "$dir/bin/$a"; done
echo "root:x:0:0:root:/root:/bin/sh" > "$dir/etc/passwd"
