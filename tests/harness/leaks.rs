//! What killed wharf commands may leave behind, found from outside: mounts,
//! processes, cgroups, state directories.

use std::path::{Path, PathBuf};

/// Every process (but this one) whose cwd, root, exe or command line
/// mentions `marker` (a temp dir path, or a word put in a container's command).
pub fn processes_mentioning(marker: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for ent in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = ent.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let p = ent.path();
        let stat = std::fs::read_to_string(p.join("stat")).unwrap_or_default();
        if stat.rsplit(')').next().is_some_and(|s| s.trim_start().starts_with('Z')) {
            continue; // a zombie holds nothing; only its parent can reap it
        }
        let mut seen: Vec<String> = ["cwd", "root", "exe"]
            .iter()
            .filter_map(|l| std::fs::read_link(p.join(l)).ok())
            .map(|l| l.to_string_lossy().into_owned())
            .collect();
        let cmdline = std::fs::read(p.join("cmdline")).unwrap_or_default();
        seen.push(String::from_utf8_lossy(&cmdline).replace('\0', " "));
        if let Some(s) = seen.iter().find(|s| s.contains(marker)) {
            out.push(format!("pid {pid}: {s}"));
        }
    }
    out
}

/// Every mounted cgroup hierarchy (v1 controllers, and v2), from mountinfo.
pub fn cgroup_mounts() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fs = post.split(' ').next()?;
            let mnt = pre.split(' ').nth(4)?;
            (fs == "cgroup" || fs == "cgroup2").then(|| PathBuf::from(mnt))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Cgroup directories, in any hierarchy, named `name` under `parent`
/// (`/wharf/<id>`, `/wharf-build/<id>`), or under `parent` starting with
/// `prefix` when `name` ends with '*'.
pub fn cgroups_named(parent: &str, name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for m in cgroup_mounts() {
        let dir = m.join(parent.trim_start_matches('/'));
        if let Some(prefix) = name.strip_suffix('*') {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if e.file_name().to_string_lossy().starts_with(prefix) {
                    out.push(e.path());
                }
            }
        } else if dir.join(name).is_dir() {
            out.push(dir.join(name));
        }
    }
    out
}

/// Entries of `dir` (none when it does not exist).
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// What a store's container networking left: attachment records
/// (`<run-root>/containers/*/network.*`), netns files, host-local IP
/// reservations (not its `lock`/`last_reserved_ip.*` bookkeeping), ports on
/// the store's bridges, and iptables rules naming one of `ids` or an
/// address (`/32`) in one of the store's subnets, not in `before` (the
/// [`iptables_rules`] from the test's start: subnets are reused by every
/// store on the host).
pub fn network_leaks(root: &Path, run_root: &Path, ids: &[String], before: &str) -> Vec<String> {
    let mut out = Vec::new();
    for c in entries(&run_root.join("containers")) {
        let dir = run_root.join("containers").join(c);
        out.extend(
            entries(&dir)
                .into_iter()
                .filter(|f| f.starts_with("network."))
                .map(|f| format!("record {}/{f}", dir.display())),
        );
    }
    out.extend(entries(&run_root.join("netns")).into_iter().map(|n| format!("netns {n}")));
    for net in entries(&root.join("cni/ipam")) {
        let dir = root.join("cni/ipam").join(&net);
        out.extend(
            entries(&dir)
                .into_iter()
                .filter(|f| f.parse::<std::net::IpAddr>().is_ok())
                .map(|f| format!("IP reservation {net}/{f}")),
        );
    }
    let mut subnets = Vec::new();
    for rec in entries(&root.join("networks")).into_iter().filter(|r| r.ends_with(".json")) {
        let Ok(bytes) = std::fs::read(root.join("networks").join(&rec)) else { continue };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else { continue };
        let bridge = v["bridge"].as_str().unwrap_or_default();
        let brif = Path::new("/sys/class/net").join(bridge).join("brif");
        out.extend(entries(&brif).into_iter().map(|p| format!("veth {p} on {bridge}")));
        if let Some((addr, prefix)) = v["subnet"].as_str().and_then(|s| s.split_once('/')) {
            if let (Ok(a), Ok(p)) = (addr.parse::<std::net::Ipv4Addr>(), prefix.parse::<u32>()) {
                subnets.push((u32::from(a), u32::MAX.checked_shl(32 - p).unwrap_or(0)));
            }
        }
    }
    let old: std::collections::HashSet<&str> = before.lines().collect();
    for line in iptables_rules().lines().filter(|l| !old.contains(l)) {
        let by_id = ids.iter().any(|id| line.contains(id.as_str()));
        let by_ip = line
            .split_whitespace()
            .filter_map(|w| w.strip_suffix("/32"))
            .filter_map(|w| w.parse::<std::net::Ipv4Addr>().ok())
            .any(|ip| subnets.iter().any(|(net, mask)| u32::from(ip) & mask == net & mask));
        if by_id || by_ip {
            out.push(format!("iptables rule {line}"));
        }
    }
    out
}

/// `iptables-save`'s output (empty when it cannot run).
pub fn iptables_rules() -> String {
    let out = std::process::Command::new("iptables-save").output().map(|o| o.stdout).unwrap_or_default();
    String::from_utf8_lossy(&out).into_owned()
}
