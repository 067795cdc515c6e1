//! `-p [IP:][HOST:]CTR[/udp]`, `-p IP::CTR`, `-P`: published ports, and their
//! host ports held open while the container runs (as podman does), so that
//! a port taken by a host program or another container is a clear error and
//! `HOST` 0 is a free port picked by the kernel.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Empty: every host address.
    pub host_ip: String,
    /// 0 until reserved: any free port.
    pub host_port: u16,
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// Parses one `-p` value.
pub fn parse_publish(spec: &str) -> Result<PortMapping> {
    let bad = |why: &str| Error::InvalidArgument(format!("invalid publish spec {spec:?}: {why}"));
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((r, p @ ("tcp" | "udp"))) => (r, p),
        Some((_, p)) => return Err(bad(&format!("unknown protocol {p:?} (tcp or udp)"))),
        None => (spec, "tcp"),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, ctr) = match parts.as_slice() {
        [c] => ("", "", *c),
        [h, c] => ("", *h, *c),
        [i, h, c] => (*i, *h, *c),
        _ => return Err(bad("use [IP:][HOST:]CONTAINER[/PROTO] (IPv6 addresses are not supported yet)")),
    };
    let port = |s: &str, what: &str| -> Result<u16> {
        if s.contains('-') {
            return Err(bad("port ranges are not supported yet"));
        }
        s.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| bad(&format!("{what} port {s:?} is not 1-65535")))
    };
    if !ip.is_empty() {
        ip.parse::<Ipv4Addr>().map_err(|_| bad(&format!("{ip:?} is not an IPv4 address")))?;
    }
    Ok(PortMapping {
        host_ip: ip.to_string(),
        host_port: if host.is_empty() { 0 } else { port(host, "host")? },
        container_port: port(ctr, "container")?,
        protocol: protocol.to_string(),
    })
}

/// `-P`: every EXPOSEd port (`80/tcp`, `53/udp`, `8080`) to a free host port.
pub(crate) fn exposed(ports: &[String]) -> Result<Vec<PortMapping>> {
    ports.iter().map(|p| parse_publish(p)).collect()
}

/// Holds every mapping's host port; fills in the ports the kernel picks.
pub(crate) fn reserve(maps: &mut [PortMapping]) -> Result<Vec<OwnedFd>> {
    let mut held = Vec::new();
    for m in maps.iter_mut() {
        let ip: Ipv4Addr = if m.host_ip.is_empty() {
            Ipv4Addr::UNSPECIFIED
        } else {
            m.host_ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED)
        };
        let (fd, port) = hold(ip, m.host_port, m.protocol == "udp").map_err(|e| {
            let shown = if m.host_ip.is_empty() { "0.0.0.0" } else { &m.host_ip };
            Error::InvalidArgument(format!(
                "bind for {shown}:{}/{} failed: port is already allocated ({e})",
                m.host_port, m.protocol
            ))
        })?;
        m.host_port = port;
        held.push(fd);
    }
    Ok(held)
}

fn hold(ip: Ipv4Addr, port: u16, udp: bool) -> std::io::Result<(OwnedFd, u16)> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let kind = if udp { SocketType::DGRAM } else { SocketType::STREAM };
    let fd = rustix::net::socket_with(AddressFamily::INET, kind, SocketFlags::CLOEXEC, None)?;
    if !udp {
        // TIME_WAIT leftovers are no conflict; a listener is (listen below).
        rustix::net::sockopt::set_socket_reuseaddr(&fd, true)?;
    }
    rustix::net::bind(&fd, &SocketAddrV4::new(ip, port))?;
    if !udp {
        rustix::net::listen(&fd, 1)?;
    }
    let got = std::net::SocketAddr::try_from(rustix::net::getsockname(&fd)?).map_or(port, |a| a.port());
    Ok((fd, got))
}

/// portmap's `runtimeConfig.portMappings`.
pub(crate) fn runtime_config(maps: &[PortMapping]) -> Value {
    let list: Vec<Value> = maps
        .iter()
        .map(|m| {
            json!({"hostPort": m.host_port, "containerPort": m.container_port, "protocol": m.protocol, "hostIP": m.host_ip})
        })
        .collect();
    if list.is_empty() {
        json!({})
    } else {
        json!({"portMappings": list})
    }
}

#[cfg(test)]
mod tests {
    use super::parse_publish;

    #[test]
    fn publish_specs() {
        let m = parse_publish("127.0.0.1:8080:80").unwrap();
        assert_eq!(
            (m.host_ip.as_str(), m.host_port, m.container_port, m.protocol.as_str()),
            ("127.0.0.1", 8080, 80, "tcp")
        );
        let m = parse_publish("127.0.0.1::80/udp").unwrap();
        assert_eq!((m.host_port, m.protocol.as_str()), (0, "udp"));
        assert_eq!(parse_publish("8080:80").unwrap().host_ip, "");
        assert_eq!(parse_publish("80").unwrap().host_port, 0);
        for bad in ["x:80", "1:2:3:4", "80/sctp", "0:80", "70000:80", "1.2.3:80:80", "8000-8010:80"] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
    }
}
