#!/bin/bash
# runtime-systemd.sh — `run` of /bin/true with the systemd cgroup driver
# (--systemd-cgroup) against the cgroupfs one, wharf-runtime vs runc, all
# four in the same hyperfine run.
#
# This host runs no systemd, so (as crates/runtime/tests/systemd_cgroup.rs
# does) the script boots Debian's systemd as PID 1 of a container of its own:
# pid, mount and cgroup namespaces, the host's / read-only, tmpfs on /run,
# /tmp, /var/*, a cgroup subtree wharf-sdbench-<pid> as its cgroup root, and
# dbus-daemon under it (runc's driver talks to the system bus; wharf-runtime,
# as root, to systemd's private socket). Everything is timed inside it
# through nsenter; the box is killed by pid and its cgroups removed on exit.
# Each timed command is a loop of N=20 sequential lifecycles.
#
# Usage: LAB=/tmp/wharf-sd-bench RUNS=10 [WHARF=/path/to/wharf-runtime] bench/runtime-systemd.sh
# Needs: systemd dbus runc busybox-static jq hyperfine util-linux (scripts/deps.sh).
set -euo pipefail
LAB=${LAB:-/tmp/wharf-sd-bench}; RUNS=${RUNS:-10}; N=20
HERE=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${WHARF:-}" ]; then
  (cd "$HERE" && cargo build --release -q -p wharf-runtime)
  WHARF=$HERE/target/release/wharf-runtime
fi
rm -rf "$LAB"; mkdir -p "$LAB/share/bundle/rootfs"/{bin,proc,sys,dev,tmp,etc,root}
B=$LAB/share/bundle
cp /bin/busybox "$B/rootfs/bin/busybox"
chroot "$B/rootfs" /bin/busybox --install -s /bin
(cd "$B" && runc spec)
jq '.process.terminal=false | .process.args=["/bin/true"] | .root.readonly=true | .root.path="/run/wharf-test/bundle/rootfs"' \
  "$B/config.json" > "$B/c" && mv "$B/c" "$B/config.json"
cp "$WHARF" "$LAB/share/wharf-runtime"

CG=wharf-sdbench-$$
SDPID=
cleanup() {
  [ -n "$SDPID" ] && kill -9 "$SDPID" 2>/dev/null || true
  sleep 0.5
  for _ in 1 2 3 4 5; do
    find /sys/fs/cgroup/*/"$CG" /sys/fs/cgroup/"$CG" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    ls -d /sys/fs/cgroup/*/"$CG" /sys/fs/cgroup/"$CG" >/dev/null 2>&1 || break
    sleep 0.3
  done
}
trap cleanup EXIT

cat > "$LAB/inner.sh" <<'EOF'
set -eu
work=$1; R=$work/root
mount --make-rprivate /
mkdir -p "$R"; mount --rbind / "$R"; mount -o remount,bind,ro "$R"
for t in run tmp var/tmp var/lib/systemd var/log; do mount -t tmpfs -o mode=755 tmpfs "$R/$t"; done
mkdir "$R/run/wharf-test"; mount --bind "$work/share" "$R/run/wharf-test"
umount -l "$R/proc"; mount -t proc proc "$R/proc"
v2=; [ -f /sys/fs/cgroup/cgroup.controllers ] && v2=1
umount -l "$R/sys/fs/cgroup"
if [ -n "$v2" ]; then mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"; else
mount -t tmpfs -o mode=755 cgroup "$R/sys/fs/cgroup"
awk '$3=="cgroup2"{print $2, "-"} $3=="cgroup"{n=split($4,o,","); c=""; for(i=1;i<=n;i++) if(o[i]!="rw"&&o[i]!="relatime") c=c (c?",":"") o[i]; print $2, c}' /proc/self/mounts |
while read -r mp opts; do
  case $mp in /sys/fs/cgroup/*) ;; *) continue ;; esac
  mkdir -p "$R$mp"
  if [ "$opts" = - ]; then mount -t cgroup2 cgroup2 "$R$mp"; else mount -t cgroup -o "$opts" cgroup "$R$mp"; fi
done
fi
U=$R/run/wharf-units; mkdir "$U"
printf '[Unit]\nDefaultDependencies=no\nWants=dbus.socket dbus.service\n' > "$U/wharf-bench.target"
printf '[Unit]\nDefaultDependencies=no\n[Socket]\nListenStream=/run/dbus/system_bus_socket\n' > "$U/dbus.socket"
printf '[Unit]\nDefaultDependencies=no\nRequires=dbus.socket\n[Service]\nType=notify\nNotifyAccess=main\nExecStart=/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile --systemd-activation --syslog-only\n' > "$U/dbus.service"
cd "$R"; pivot_root . .; umount -l .
exec env -i container=wharf SYSTEMD_UNIT_PATH=/run/wharf-units: PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  /lib/systemd/systemd --unit=wharf-bench.target
EOF
# Into our subtree first, so that it becomes the cgroup namespace's root.
setsid bash -c '
  dirs=/sys/fs/cgroup/*/
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then dirs=/sys/fs/cgroup/; fi
  for d in $dirs; do
    d=${d%/}; mkdir "$d/$1"
    if [ -f "$d/cpuset.cpus" ]; then cat "$d/cpuset.cpus" > "$d/$1/cpuset.cpus"; cat "$d/cpuset.mems" > "$d/$1/cpuset.mems"; fi
    echo $$ > "$d/$1/cgroup.procs"
  done
  exec unshare --pid --mount --cgroup --fork --kill-child /bin/bash "$2/inner.sh" "$2"' box "$CG" "$LAB" \
  >"$LAB/systemd.log" 2>&1 &
UNSHARE=$!
IN() { nsenter -t "$SDPID" -m -p -C -r -w /bin/sh -c 'for f in /sys/fs/cgroup/*/cgroup.procs; do echo $$ > "$f"; done; exec "$@"' sh "$@"; }
for _ in $(seq 300); do
  SDPID=$(cat /proc/$UNSHARE/task/*/children 2>/dev/null | tr ' ' '\n' | grep -m1 . || true)
  [ -n "$SDPID" ] && [ "$(IN systemctl is-system-running 2>/dev/null)" = running ] && break
  sleep 0.1
done
[ "$(IN systemctl is-system-running 2>/dev/null)" = running ] || { cat "$LAB/systemd.log"; exit 1; }
IN busctl --system status org.freedesktop.systemd1 >/dev/null

W=/run/wharf-test/wharf-runtime; BB=/run/wharf-test/bundle; S=/run/wharf-test
loop() { echo "for i in \$(seq $N); do $1 --root $S/state-$2 run --bundle $BB $2\$i >/dev/null || exit 1; done"; }
echo "systemd $(IN systemctl --version | head -1); runc $(runc --version | head -1); $N lifecycles per command"
IN hyperfine -N --warmup 1 --runs "$RUNS" \
  -n "wharf --systemd-cgroup" "sh -c '$(loop "$W --systemd-cgroup" ws)'" \
  -n "runc --systemd-cgroup" "sh -c '$(loop "runc --systemd-cgroup" rs)'" \
  -n "wharf cgroupfs" "sh -c '$(loop "$W" wc)'" \
  -n "runc cgroupfs" "sh -c '$(loop runc rc)'"
left=$(IN systemctl list-units --all --no-legend --no-pager '*-ws*.scope' 'runc-*.scope' || true)
[ -z "$left" ] || { echo "units left: $left"; exit 1; }
