#!/bin/bash
# demo.sh — wharf's main job end to end, on local defaults, no internet:
# build an image from examples/Dockerfiles (FROM scratch + Debian's
# busybox-static), build a website on it, push both to a docker-registry on
# a loopback port, pull them into a second store, run them, and check both
# stores. Store: $WHARF_ROOT (default /var/lib/wharf).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
cargo build --release -q -p wharf -p wharf-runtime -p wharf-pod
export PATH="$PWD/target/release:$PATH"
work=$(mktemp -d /tmp/wharf-demo.XXXXXX)
regpid=
# The temp store's default network owns a bridge: remove it with the store.
cleanup() {
  [ -n "$regpid" ] && kill "$regpid" 2>/dev/null
  [ -d "$work/second-store/networks" ] && wharf --root "$work/second-store" network rm bridge >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

cp -a examples/Dockerfiles/busybox "$work/busybox-ctx"
cp /bin/busybox "$work/busybox-ctx/busybox"

# A registry of our own on a free loopback port.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s/registry}}\nhttp: {addr: 127.0.0.1:%s}\n' "$work" "$port" > "$work/registry.yml"
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 & regpid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
reg=127.0.0.1:$port

set -x
wharf build -t wharf-examples/busybox "$work/busybox-ctx"
wharf build -t wharf-examples/website -t "$reg/demo/website:1" examples/Dockerfiles/website
wharf images
wharf run --rm wharf-examples/website sh -c 'httpd -p 8080 -h /www; sleep 0.3; wget -qO- http://127.0.0.1:8080/'
wharf run --rm --memory 64m --pids-limit 32 -e GREETING=hi wharf-examples/busybox \
  sh -c 'echo "$GREETING from $(hostname), pid $$"; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max'
wharf push "$reg/demo/website:1"
wharf --root "$work/second-store" pull "$reg/demo/website:1"
wharf --root "$work/second-store" run --rm "$reg/demo/website:1" ls /www
wharf save -o "$work/website.tar" wharf-examples/website
wharf --root "$work/third-store" load -i "$work/website.tar"
wharf system check
wharf --root "$work/second-store" system check
