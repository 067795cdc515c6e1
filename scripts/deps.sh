#!/bin/bash
# deps.sh — install what wharf's build, demo and tests need on Debian bookworm
# (as root). Idempotent; refreshes the package lists only when they are stale.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(
  busybox-static
  skopeo umoci oci-image-tool
  zstd jq
  runc crun
  docker-registry buildah podman containerd conmon
  libseccomp-dev pkg-config gcc libc6-dev
  iproute2 util-linux hyperfine time
  groff-base man-db zsh fish   # man pages and completion scripts (tests/cli_docs.rs)
  containernetworking-plugins iptables aardvark-dns
  systemd dbus  # systemd as PID 1 (and its system bus) in crates/runtime/tests/systemd_cgroup.rs
  curl
  openssh-client  # ssh-agent, ssh-add, ssh-keygen: --ssh KEYFILE and tests/build_ssh.rs
  tini  # --init: /usr/bin/tini-static bound at /sbin/docker-init (tests/run_flags.rs)
  procps  # `ps` for `wharf top` (tests/engine_cmds.rs)
  python3  # a pty for run -it, exec -it and attach (tests/engine_io.rs)
  strace  # holds a syscall so a kill -9 lands at one step (tests/pod.rs)
  # multi-platform builds (tests/multiplatform.rs, bench/multiplatform.sh): QEMU for
  # emulated RUN, the aarch64 cross toolchain for a cross-compiled stage, file(1)
  qemu-user-static gcc-aarch64-linux-gnu libc6-dev-arm64-cross file
  debootstrap  # the debian:bookworm base of tests/real_dockerfiles.rs
  protobuf-compiler  # protoc: the CRI protos (k8s-cri's build script, crates/cri)
  catatonit  # podman's local pause image for `podman pod create` (bench/pod.sh)
)
missing=()
for p in "${pkgs[@]}"; do
  [[ $p == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
    apt-get update -qq
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# An arm64 busybox for emulated RUN (tests/multiplatform.rs): it cannot be
# installed next to the host's busybox-static, so only its .deb is kept.
if ! ls /var/cache/wharf-deps/busybox-static_*_arm64.deb >/dev/null 2>&1; then
  dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64 && apt-get update -qq; }
  mkdir -p /var/cache/wharf-deps
  (cd /var/cache/wharf-deps && apt-get download -qq busybox-static:arm64 2>/dev/null) ||
    (apt-get update -qq && cd /var/cache/wharf-deps && apt-get download -qq busybox-static:arm64)
fi
if ! command -v cargo >/dev/null; then
  for d in "$HOME/.cargo/bin" /root/.cargo/bin /usr/local/cargo/bin; do
    [ -x "$d/cargo" ] && export PATH="$d:$PATH" && break
  done
fi
# Under sudo, the toolchain may be the invoking user's rustup install.
if ! command -v cargo >/dev/null && [ -n "${SUDO_USER:-}" ]; then
  h=$(getent passwd "$SUDO_USER" | cut -d: -f6)
  if [ -n "$h" ] && [ -x "$h/.cargo/bin/cargo" ]; then
    export PATH="$h/.cargo/bin:$PATH"
    [ -d "$h/.rustup" ] && export RUSTUP_HOME="${RUSTUP_HOME:-$h/.rustup}"
  fi
fi
command -v cargo >/dev/null || { echo "deps.sh: no cargo: install a Rust toolchain >= 1.85 (rustup)" >&2; exit 1; }
