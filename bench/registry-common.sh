# registry-common.sh — sourced by the build benches: a docker-registry of
# the bench's own on a free loopback port.
#
# start_registry DIR: storage in DIR/reg, log in DIR/reg.log; sets $reg
# (127.0.0.1:PORT) and $regpid, waits until it answers, and writes
# DIR/registries.conf (for buildah/podman: that registry, insecure, no
# search). The caller's EXIT trap kills ${regpid:-}.
start_registry() {
  local dir=$1 port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  reg=127.0.0.1:$port
  printf 'version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage: {filesystem: {rootdirectory: %s/reg}}\nhttp: {addr: %s}\n' "$dir" "$reg" > "$dir/reg.yml"
  docker-registry serve "$dir/reg.yml" >"$dir/reg.log" 2>&1 & regpid=$!
  for _ in $(seq 50); do curl -sf "http://$reg/v2/" >/dev/null && break; sleep 0.1; done
  printf 'unqualified-search-registries = []\n[[registry]]\nlocation = "%s"\ninsecure = true\n' "$reg" > "$dir/registries.conf"
}
