//! The files Docker generates per container and bind-mounts over the
//! image's: `/etc/hosts` (localhost, the container's own address and names,
//! `--add-host`), `/etc/hostname`, and `/etc/resolv.conf` (the network's DNS
//! server on a user network, else the host's resolvers or `--dns`; the
//! host's `search`/`options` lines, or `--dns-search`/`--dns-option`).
//!
//! `network connect`/`disconnect` edit `hosts` and `resolv.conf` of a
//! running container: in place (truncate and write), never by rename, as
//! the container sees them through bind mounts of these very inodes.

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
    /// `--dns-search` (`.` alone: no search line).
    pub dns_search: &'a [String],
    /// `--dns-option`.
    pub dns_options: &'a [String],
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
    let resolv = resolv_conf(f);
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

/// resolv.conf: the servers, then (off user networks) the host's
/// `search`/`options` unless the flags replace them (Docker's rule), then the flags'.
fn resolv_conf(f: &Files) -> String {
    let (host_servers, host_rest) = host_resolv_conf();
    let (mut out, host_rest): (String, String) = match f.dns_server {
        Some(gw) => (format!("nameserver {gw}\n"), String::new()),
        None if !f.dns.is_empty() => (f.dns.iter().map(|d| format!("nameserver {d}\n")).collect(), host_rest),
        None => (host_servers, host_rest),
    };
    for line in host_rest.lines() {
        let kind = line.split_whitespace().next().unwrap_or_default();
        let replaced = match kind {
            "search" | "domain" => !f.dns_search.is_empty(),
            "options" => !f.dns_options.is_empty(),
            _ => false,
        };
        if !replaced {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !f.dns_search.is_empty() && f.dns_search != ["."] {
        out.push_str(&format!("search {}\n", f.dns_search.join(" ")));
    }
    if !f.dns_options.is_empty() {
        out.push_str(&format!("options {}\n", f.dns_options.join(" ")));
    }
    out
}

/// `--dns-search`/`--dns-option` values are single resolv.conf words.
pub(crate) fn check_resolv_words(flag: &str, words: &[String]) -> Result<()> {
    match words.iter().find(|w| w.is_empty() || w.contains(|c: char| c.is_whitespace() || c == '#' || c == ';')) {
        Some(w) => Err(Error::InvalidArgument(format!("invalid {flag} {w:?}: one word without blanks or comments"))),
        None => Ok(()),
    }
}

/// Adds `ip\tnames…` to the hosts file in `dir`, in place.
pub(crate) fn add_host_line(dir: &Path, ip: Ipv4Addr, names: &[String]) -> Result<()> {
    edit(&dir.join("hosts"), |text| {
        let mut text = text.to_string();
        text.push_str(&format!("{ip}\t{}\n", names.join(" ")));
        text
    })
}

/// Removes the lines for `ip` from the hosts file in `dir`, in place.
pub(crate) fn remove_host_line(dir: &Path, ip: Ipv4Addr) -> Result<()> {
    let ip = ip.to_string();
    edit(&dir.join("hosts"), |text| {
        text.lines().filter(|l| l.split_whitespace().next() != Some(ip.as_str())).map(|l| format!("{l}\n")).collect()
    })
}

/// Puts `nameserver gw` first in resolv.conf in `dir` (podman's order for
/// a connected network), in place.
pub(crate) fn add_nameserver(dir: &Path, gw: Ipv4Addr) -> Result<()> {
    let line = format!("nameserver {gw}");
    edit(&dir.join("resolv.conf"), |text| {
        if text.lines().any(|l| l.trim() == line) {
            return text.to_string();
        }
        format!("{line}\n{text}")
    })
}

/// Removes `nameserver gw` from resolv.conf in `dir`, unless it is the only one.
pub(crate) fn remove_nameserver(dir: &Path, gw: Ipv4Addr) -> Result<()> {
    let line = format!("nameserver {gw}");
    edit(&dir.join("resolv.conf"), |text| {
        let servers = text.lines().filter(|l| l.trim_start().starts_with("nameserver")).count();
        if servers <= 1 {
            return text.to_string();
        }
        text.lines().filter(|l| l.trim() != line).map(|l| format!("{l}\n")).collect()
    })
}

/// Rewrites `p` in place with `f` of its text; a missing file is left missing.
fn edit(p: &Path, f: impl FnOnce(&str) -> String) -> Result<()> {
    let text = match std::fs::read_to_string(p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(format!("read {}", p.display()), e)),
    };
    let new = f(&text);
    if new != text {
        std::fs::write(p, new).map_err(|e| Error::io(format!("write {}", p.display()), e))?;
    }
    Ok(())
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
/// container), as Docker does; Docker's fallback when none is left. The
/// nameserver lines, then the `search`/`options`/`domain` lines.
fn host_resolv_conf() -> (String, String) {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let (mut out, mut rest) = (String::new(), String::new());
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
                rest.push_str(line);
                rest.push('\n');
            }
            _ => {}
        }
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    (out, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files<'a>(search: &'a [String], options: &'a [String]) -> Files<'a> {
        let gw = Some(Ipv4Addr::new(10, 90, 0, 1));
        Files {
            hostname: "h",
            ip: Ipv4Addr::new(10, 90, 0, 2),
            names: &[],
            add_hosts: &[],
            dns_server: gw,
            dns: &[],
            dns_search: search,
            dns_options: options,
        }
    }

    #[test]
    fn dns_search_and_options() {
        let (s, o) = (vec!["a.example".to_string(), "b.example".to_string()], vec!["ndots:2".to_string()]);
        let text = resolv_conf(&files(&s, &o));
        assert!(text.starts_with("nameserver 10.90.0.1\n"), "{text}");
        assert!(text.contains("search a.example b.example\n"), "{text}");
        assert!(text.contains("options ndots:2\n"), "{text}");
        assert_eq!(text.matches("search").count(), 1, "the host's search line is replaced: {text}");
        let text = resolv_conf(&files(&[".".to_string()], &[]));
        assert!(!text.contains("search"), "--dns-search . means none: {text}");
        assert!(check_resolv_words("--dns-option", &["a b".to_string()]).is_err());
        assert!(check_resolv_words("--dns-search", &[String::new()]).is_err());
    }

    #[test]
    fn in_place_edits_keep_the_inode() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("hosts"), "127.0.0.1\tlocalhost\n").unwrap();
        std::fs::write(tmp.path().join("resolv.conf"), "nameserver 10.90.0.1\n").unwrap();
        let ino = std::fs::metadata(tmp.path().join("hosts")).unwrap().ino();
        let ip = Ipv4Addr::new(10, 91, 0, 3);
        add_host_line(tmp.path(), ip, &["h".into(), "web".into()]).unwrap();
        let hosts = std::fs::read_to_string(tmp.path().join("hosts")).unwrap();
        assert!(hosts.ends_with("10.91.0.3\th web\n"), "{hosts}");
        remove_host_line(tmp.path(), ip).unwrap();
        assert_eq!(std::fs::read_to_string(tmp.path().join("hosts")).unwrap(), "127.0.0.1\tlocalhost\n");
        assert_eq!(std::fs::metadata(tmp.path().join("hosts")).unwrap().ino(), ino);
        let gw = Ipv4Addr::new(10, 91, 0, 1);
        add_nameserver(tmp.path(), gw).unwrap();
        let r = std::fs::read_to_string(tmp.path().join("resolv.conf")).unwrap();
        assert_eq!(r, "nameserver 10.91.0.1\nnameserver 10.90.0.1\n");
        remove_nameserver(tmp.path(), gw).unwrap();
        remove_nameserver(tmp.path(), Ipv4Addr::new(10, 90, 0, 1)).unwrap();
        let r = std::fs::read_to_string(tmp.path().join("resolv.conf")).unwrap();
        assert_eq!(r, "nameserver 10.90.0.1\n", "the last nameserver stays");
    }

    #[test]
    fn add_host() {
        assert_eq!(super::parse_add_host("db:10.1.2.3").unwrap().0, "db");
        assert_eq!(super::parse_add_host("db=10.1.2.3").unwrap().1.to_string(), "10.1.2.3");
        assert!(super::parse_add_host("db").is_err());
        assert!(super::parse_add_host("db:nope").is_err());
    }
}
