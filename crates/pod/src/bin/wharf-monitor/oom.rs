//! Whether the kernel's OOM killer struck the container: the `oom_kill`
//! counter of its memory cgroup, `memory.events` (cgroup v2) or
//! `memory.oom_control` (v1, kernel 4.13+), found from the init's
//! `/proc/<pid>/cgroup` and the mount table (v1, v2 or hybrid: detected).
//! Read at the exit, before `monitor.json` says "exited", so the first
//! status anyone reads after an OOM kill already says so.

use std::path::{Path, PathBuf};

pub struct OomWatch {
    file: PathBuf,
    base: u64,
}

impl OomWatch {
    /// The counter of `pid`'s memory cgroup, as it is now; None without one.
    pub fn of_pid(pid: i32) -> Option<OomWatch> {
        let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let file = memory_file(&cgroups, &mounts)?;
        let base = count(&file)?;
        Some(OomWatch { file, base })
    }

    /// True if the counter moved since [`OomWatch::of_pid`].
    pub fn killed(&self) -> bool {
        count(&self.file).is_some_and(|n| n > self.base)
    }
}

fn count(file: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| l.strip_prefix("oom_kill ")).and_then(|n| n.trim().parse().ok())
}

/// The counter file from a `/proc/<pid>/cgroup` and a mountinfo: v1's
/// memory hierarchy if there is one, else the v2 hierarchy's (if its
/// memory controller is there).
fn memory_file(cgroups: &str, mountinfo: &str) -> Option<PathBuf> {
    let mut v2 = None;
    for line in cgroups.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(hier), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else { continue };
        if ctrls.split(',').any(|c| c == "memory") {
            let mnt =
                mount_point(mountinfo, |fstype, opts| fstype == "cgroup" && opts.split(',').any(|o| o == "memory"))?;
            return Some(mnt.join(path.trim_start_matches('/')).join("memory.oom_control"));
        }
        if hier == "0" && ctrls.is_empty() {
            v2 = Some(path.to_string());
        }
    }
    let mnt = mount_point(mountinfo, |fstype, _| fstype == "cgroup2")?;
    let file = mnt.join(v2?.trim_start_matches('/')).join("memory.events");
    file.exists().then_some(file)
}

/// The first mount whose filesystem type and super options pass `want`.
fn mount_point(mountinfo: &str, want: impl Fn(&str, &str) -> bool) -> Option<PathBuf> {
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let mut r = right.split_whitespace();
        let (fstype, _src, opts) = (r.next()?, r.next()?, r.next().unwrap_or(""));
        want(fstype, opts).then(|| PathBuf::from(left.split_whitespace().nth(4).unwrap_or("/")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
";

    #[test]
    fn v1_memory_hierarchy_first_then_v2() {
        let hybrid = "12:memory:/wharf/pod-1/c\n0::/wharf/pod-1/c\n";
        assert_eq!(
            memory_file(hybrid, MOUNTS),
            Some(PathBuf::from("/sys/fs/cgroup/memory/wharf/pod-1/c/memory.oom_control"))
        );
        // v2 only, and this test's cgroup2 mount has no such cgroup: none.
        assert_eq!(memory_file("0::/nonexistent-wharf-cgroup\n", MOUNTS), None);
        assert_eq!(memory_file("12:memory:/x\n", "1 0 0:1 / / rw - ext4 /dev/sda rw\n"), None);
    }
}
