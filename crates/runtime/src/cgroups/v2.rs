//! cgroup v2 (unified hierarchy) driver.
//!
//! Device rules are an eBPF program on v2 (see `devfilter`).

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::{read_file, read_u64, write_file, CgroupManager, CgroupRecord, Mode, Stats};
use crate::error::{Error, Result};

pub(super) struct V2 {
    rec: CgroupRecord,
}

/// Enables `want` (those available) in every cgroup from `root` down to the
/// parent of `leaf`, as v2 requires before a child can use a controller.
pub(super) fn enable_controllers(root: &Path, leaf: &Path, want: &[&str]) -> Result<()> {
    let rel = leaf.strip_prefix(root).unwrap_or(leaf);
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        let avail = read_file(&cur, "cgroup.controllers").unwrap_or_default();
        let enabled = read_file(&cur, "cgroup.subtree_control").unwrap_or_default();
        let add: Vec<String> = avail
            .split_whitespace()
            .filter(|a| want.is_empty() || want.contains(a))
            .filter(|a| !enabled.split_whitespace().any(|e| e == *a))
            .map(|a| format!("+{a}"))
            .collect();
        if !add.is_empty() {
            write_file(&cur, "cgroup.subtree_control", &add.join(" "))?;
        }
        cur.push(c);
    }
    Ok(())
}

impl V2 {
    pub(super) fn from_record(rec: CgroupRecord) -> Self {
        V2 { rec }
    }

    pub(super) fn create(root: &Path, rel: &Path) -> Result<Self> {
        let mut created = vec![];
        let dir = super::mkdir_recorded(root, rel, &mut created)?;
        let v = V2 {
            rec: CgroupRecord { mode: Mode::V2, paths: vec![(String::new(), dir.clone())], created, systemd: None },
        };
        if let Err(e) = enable_controllers(root, &dir, &[]) {
            let _ = v.destroy();
            return Err(e);
        }
        Ok(v)
    }

    fn dir(&self) -> &Path {
        &self.rec.paths[0].1
    }
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

impl V2 {
    fn apply_memory(&self, r: &LinuxResources) -> Result<()> {
        let Some(m) = r.memory() else { return Ok(()) };
        let dir = self.dir();
        if let Some(l) = m.limit() {
            write_file(dir, "memory.max", &max_or(l))?;
        }
        if let Some(v) = m.reservation() {
            write_file(dir, "memory.low", &max_or(v))?;
        }
        if let Some(s) = m.swap() {
            // OCI swap is memory+swap; v2 counts swap alone.
            let v = match (s, m.limit()) {
                (s, _) if s < 0 => "max".to_string(),
                (s, Some(l)) if l >= 0 => (s - l).max(0).to_string(),
                (s, _) => s.to_string(),
            };
            if dir.join("memory.swap.max").exists() {
                write_file(dir, "memory.swap.max", &v)?;
            }
        }
        Ok(())
    }

    fn apply_cpu(&self, r: &LinuxResources) -> Result<()> {
        let Some(c) = r.cpu() else { return Ok(()) };
        let dir = self.dir();
        if let Some(s) = c.shares().filter(|&s| s != 0) {
            write_file(dir, "cpu.weight", &super::shares_to_weight(s).to_string())?;
        }
        if c.quota().is_some() || c.period().is_some() {
            let q = c.quota().filter(|&q| q > 0).map_or("max".into(), |q| q.to_string());
            let p = c.period().filter(|&p| p > 0).unwrap_or(100_000);
            write_file(dir, "cpu.max", &format!("{q} {p}"))?;
        }
        if let Some(v) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
            write_file(dir, "cpuset.cpus", v)?;
        }
        if let Some(v) = c.mems().as_deref().filter(|v| !v.is_empty()) {
            write_file(dir, "cpuset.mems", v)?;
        }
        Ok(())
    }

    fn apply_io(&self, r: &LinuxResources) -> Result<()> {
        let Some(b) = r.block_io() else { return Ok(()) };
        let dir = self.dir();
        if let Some(w) = b.weight() {
            write_file(dir, "io.weight", &format!("default {}", super::blkio_to_io_weight(w)))?;
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(w) = d.weight() {
                let v = format!("{}:{} {}", d.major(), d.minor(), super::blkio_to_io_weight(w));
                write_file(dir, "io.weight", &v)?;
            }
        }
        let throttles = [
            ("rbps", b.throttle_read_bps_device()),
            ("wbps", b.throttle_write_bps_device()),
            ("riops", b.throttle_read_iops_device()),
            ("wiops", b.throttle_write_iops_device()),
        ];
        for (key, list) in throttles {
            for d in list.iter().flatten() {
                let v = format!("{}:{} {key}={}", d.major(), d.minor(), d.rate());
                write_file(dir, "io.max", &v)?;
            }
        }
        Ok(())
    }
}

impl CgroupManager for V2 {
    fn add_task(&self, pid: i32) -> Result<()> {
        write_file(self.dir(), "cgroup.procs", &pid.to_string())
    }

    fn apply(&self, r: &LinuxResources) -> Result<()> {
        let dir = self.dir().to_path_buf();
        // No device rules asked (also an `update` of other resources): the
        // filter in place, if any, stays.
        let rules = super::devfilter::rules(r)?;
        if !rules.is_empty() {
            super::devfilter::apply(&dir, &rules)?;
        }
        self.apply_memory(r)?;
        self.apply_cpu(r)?;
        if let Some(p) = r.pids() {
            let v = if p.limit() > 0 { p.limit().to_string() } else { "max".into() };
            write_file(&dir, "pids.max", &v)?;
        }
        self.apply_io(r)?;
        for h in r.hugepage_limits().iter().flatten() {
            let f = format!("hugetlb.{}.max", h.page_size());
            write_file(&dir, &f, &h.limit().to_string())?;
        }
        for (k, v) in r.unified().iter().flatten() {
            if k.contains('/') {
                return Err(Error::InvalidArgument(format!("unified key {k:?} contains '/'")));
            }
            write_file(&dir, k, v)?;
        }
        Ok(())
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        let dir = self.dir();
        write_file(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
        let want = if frozen { "frozen 1" } else { "frozen 0" };
        for _ in 0..1000 {
            if read_file(dir, "cgroup.events")?.lines().any(|l| l == want) {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Err(Error::cgroup(dir, std::io::Error::new(std::io::ErrorKind::TimedOut, "cgroup.freeze did not settle")))
    }

    fn is_frozen(&self) -> bool {
        read_file(self.dir(), "cgroup.freeze").is_ok_and(|s| s.trim() == "1")
    }

    fn pids(&self) -> Result<Vec<i32>> {
        super::read_procs(self.dir())
    }

    fn stats(&self) -> Result<Stats> {
        let d = self.dir();
        let mut s = Stats {
            memory_usage: read_u64(d, "memory.current").unwrap_or(0),
            memory_max_usage: read_u64(d, "memory.peak").unwrap_or(0),
            memory_limit: read_u64(d, "memory.max"),
            pids_current: read_u64(d, "pids.current").unwrap_or(0),
            pids_limit: read_u64(d, "pids.max"),
            ..Stats::default()
        };
        let kv = |file: &str, key: &str| -> Option<u64> {
            read_file(d, file).ok()?.lines().find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == key).then(|| v.trim().parse().ok())?
            })
        };
        s.oom_kills = kv("memory.events", "oom_kill").unwrap_or(0);
        s.cpu_usage_ns = kv("cpu.stat", "usage_usec").unwrap_or(0) * 1000;
        Ok(s)
    }

    fn destroy(&self) -> Result<()> {
        let dir: PathBuf = self.dir().to_path_buf();
        if !dir.exists() {
            return Ok(());
        }
        if self.is_frozen() {
            let _ = self.set_frozen(false);
        }
        // cgroup.kill (5.14+) kills the whole subtree atomically.
        let _ = write_file(&dir, "cgroup.kill", "1");
        super::kill_and_remove(&[&dir], &self.rec.created)
    }

    fn record(&self) -> &CgroupRecord {
        &self.rec
    }

    fn placement(&self) -> Result<super::Placement> {
        super::Placement::new(vec![], Some(self.dir()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v2 hierarchy to test against: /sys/fs/cgroup itself on a pure v2
    /// host, the `unified` mount on a hybrid one.
    fn v2_root() -> Option<PathBuf> {
        [super::super::CGROUP_ROOT, "/sys/fs/cgroup/unified"]
            .iter()
            .map(PathBuf::from)
            .find(|p| crate::sys::fs_magic(p).ok() == Some(super::super::CGROUP2_SUPER_MAGIC))
    }

    /// On the real stderr: libtest hides captured output of passing tests.
    fn skipped(why: &str) {
        use std::io::Write;
        let _ =
            std::io::stderr().write_all(format!("SKIPPED v2_driver_places_freezes_and_cleans_up: {why}\n").as_bytes());
    }

    #[test]
    fn v2_driver_places_freezes_and_cleans_up() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            if std::env::var("WHARF_SKIP_PRIVILEGED").as_deref() == Ok("1") {
                skipped("needs root");
                return;
            }
            panic!("v2_driver_places_freezes_and_cleans_up needs root (or WHARF_SKIP_PRIVILEGED=1)");
        }
        let Some(root) = v2_root() else {
            skipped("no cgroup2 mount on this host");
            return;
        };
        let rel = PathBuf::from(format!("wharf-v2-test-{}/leaf", std::process::id()));
        let cg = V2::create(&root, &rel).unwrap();
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        cg.add_task(child.id() as i32).unwrap();
        assert_eq!(cg.pids().unwrap(), vec![child.id() as i32]);
        cg.set_frozen(true).unwrap();
        assert!(cg.is_frozen());
        cg.set_frozen(false).unwrap();
        assert!(!cg.is_frozen());
        let _ = cg.stats().unwrap();
        cg.destroy().unwrap();
        let _ = child.wait();
        assert!(!root.join(&rel).exists());
        assert!(!root.join(rel.parent().unwrap()).exists(), "created parent removed too");
    }
}
