//! Host-side links: the bridge a network owns, made when the network is
//! created (so its subnet is routed, and no other store or host network can
//! take it) and deleted with the network. Through iproute2's `ip`.

use crate::error::{Error, Result};
use crate::network::subnet::Subnet;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

pub(crate) fn exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().map_err(|e| Error::io("run ip (apt-get install iproute2)", e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Network(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())))
}

/// Makes bridge `name` with `gateway/prefix` on it, up. Leaves nothing on failure.
pub(crate) fn create_bridge(name: &str, gateway: Ipv4Addr, subnet: &Subnet) -> Result<()> {
    ip(&["link", "add", "name", name, "type", "bridge"])?;
    let addr = format!("{gateway}/{}", subnet.prefix);
    let res = ip(&["addr", "add", &addr, "brd", &subnet.broadcast().to_string(), "dev", name])
        .and_then(|()| ip(&["link", "set", name, "up"]));
    if res.is_err() {
        let _ = delete(name);
    }
    res
}

/// Deletes link `name`; one that is already gone is fine.
pub(crate) fn delete(name: &str) -> Result<()> {
    if !exists(name) {
        return Ok(());
    }
    ip(&["link", "del", name])
}
