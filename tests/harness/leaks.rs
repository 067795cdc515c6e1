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
