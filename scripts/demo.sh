#!/bin/bash
# demo.sh — wharf's main job, end to end on local defaults, no internet:
# make a busybox root filesystem from Debian's busybox-static, import it as
# an image, list it, save it and load it back, run it, and check the store.
# Store: $WHARF_ROOT (default /var/lib/wharf).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
cargo build --release -q -p wharf -p wharf-runtime
export PATH="$PWD/target/release:$PATH"
work=$(mktemp -d /tmp/wharf-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/rootfs"/{bin,etc,tmp,root}
cp /bin/busybox "$work/rootfs/bin/busybox"
for a in $("$work/rootfs/bin/busybox" --list); do ln -sf busybox "$work/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/rootfs/etc/passwd"
echo 'root:x:0:' > "$work/rootfs/etc/group"
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .

set -x
wharf import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' "$work/rootfs.tar" wharf.local/busybox:latest
wharf images
wharf inspect wharf.local/busybox | head -20
wharf save -o "$work/busybox-oci.tar" wharf.local/busybox
wharf save --format docker-archive -o "$work/busybox-docker.tar" wharf.local/busybox
wharf rmi wharf.local/busybox
wharf load -i "$work/busybox-docker.tar"
wharf load -i "$work/busybox-oci.tar"
wharf images
wharf run --rm wharf.local/busybox sh -c 'echo "hello from $(hostname), pid $$, in $(cat /proc/1/cgroup | head -1)"; ls /'
wharf run --rm --memory 64m --pids-limit 32 -e GREETING=hi wharf.local/busybox sh -c 'echo $GREETING; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max'
wharf system check
