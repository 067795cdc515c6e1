//! The files Docker generates per container and bind-mounts over the
//! image's: `/etc/hosts` (localhost, the container's own address and names,
//! `--add-host`), `/etc/hostname`, and `/etc/resolv.conf` (the network's DNS
//! server on a user network, else the host's resolvers or `--dns`).

use crate::error::{Error, Result};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// What goes into the three files.
pub(crate) struct Files<'a> {
    pub hostname: &'a str,
    pub ip: Ipv4Addr,
    /// The container's name and aliases, resolvable by itself.
    pub names: &'a [String],
    /// `--add-host NAME:IP`.
    pub add_hosts: &'a [String],
    /// The network's DNS server (its gateway), when it has one.
    pub dns_server: Option<Ipv4Addr>,
    /// `--dns`.
    pub dns: &'a [String],
}

/// Writes `hosts`, `hostname` and `resolv.conf` in `dir`; returns
/// (path in the container, file on the host) pairs to bind-mount.
pub(crate) fn write(dir: &Path, f: &Files) -> Result<Vec<(String, PathBuf)>> {
    let mut hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    let mut own = vec![f.hostname.to_string()];
    own.extend(f.names.iter().filter(|n| n.as_str() != f.hostname).cloned());
    hosts.push_str(&format!("{}\t{}\n", f.ip, own.join(" ")));
    for h in f.add_hosts {
        let (name, ip) = parse_add_host(h)?;
        hosts.push_str(&format!("{ip}\t{name}\n"));
    }
    let resolv = match f.dns_server {
        Some(gw) => format!("nameserver {gw}\n"),
        None if !f.dns.is_empty() => f.dns.iter().map(|d| format!("nameserver {d}\n")).collect(),
        None => host_resolv_conf(),
    };
    let out = [
        ("/etc/hosts", "hosts", hosts),
        ("/etc/hostname", "hostname", format!("{}\n", f.hostname)),
        ("/etc/resolv.conf", "resolv.conf", resolv),
    ];
    let mut mounts = Vec::new();
    for (dst, name, text) in out {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| Error::io(format!("write {}", p.display()), e))?;
        mounts.push((dst.to_string(), p));
    }
    Ok(mounts)
}

/// `--add-host NAME:IP` (Docker also takes `NAME=IP`).
pub(crate) fn parse_add_host(h: &str) -> Result<(String, std::net::IpAddr)> {
    let (name, ip) = h.split_once('=').or_else(|| h.split_once(':')).unwrap_or((h, ""));
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    match ip.parse() {
        Ok(ip) if !name.is_empty() && !name.contains(char::is_whitespace) => Ok((name.to_string(), ip)),
        _ => Err(Error::InvalidArgument(format!("invalid --add-host {h:?}: use NAME:IP"))),
    }
}

/// The host's resolv.conf without loopback nameservers (unreachable from a
/// container), as Docker does; Docker's fallback when none is left.
fn host_resolv_conf() -> String {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut out = String::new();
    let mut servers = 0;
    for line in text.lines() {
        let mut w = line.split_whitespace();
        match (w.next(), w.next()) {
            (Some("nameserver"), Some(ip)) if ip.parse::<std::net::IpAddr>().is_ok_and(|a| !a.is_loopback()) => {
                out.push_str(line);
                out.push('\n');
                servers += 1;
            }
            (Some("search" | "options" | "domain"), _) => {
                out.push_str(line);
                out.push('\n');
            }
            _ => {}
        }
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn add_host() {
        assert_eq!(super::parse_add_host("db:10.1.2.3").unwrap().0, "db");
        assert_eq!(super::parse_add_host("db=10.1.2.3").unwrap().1.to_string(), "10.1.2.3");
        assert!(super::parse_add_host("db").is_err());
        assert!(super::parse_add_host("db:nope").is_err());
    }
}
