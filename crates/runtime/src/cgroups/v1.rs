//! cgroup v1 driver; on hybrid hosts it also places the container in the v2
//! hierarchy so controllers that live only there (e.g. hugetlb) still apply.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::{read_file, read_u64, write_file, CgroupManager, CgroupRecord, Mode, Stats};
use crate::error::{Error, Result};

const KNOWN: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

pub(super) struct V1 {
    rec: CgroupRecord,
}

/// v1 hierarchies mounted on this host: (controllers joined by ',', mount point).
pub(super) fn hierarchies() -> Result<Vec<(String, PathBuf)>> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    let mi = crate::sys::mountinfo().map_err(|e| Error::io("read /proc/self/mountinfo", e))?;
    for m in mi.iter().filter(|m| m.fs_type == "cgroup") {
        let ctrls: Vec<&str> = m.super_opts.split(',').filter(|o| KNOWN.contains(o)).collect();
        if ctrls.is_empty() || m.root != "/" {
            continue;
        }
        let key = ctrls.join(",");
        if !out.iter().any(|(k, _)| *k == key) {
            out.push((key, m.mount_point.clone()));
        }
    }
    Ok(out)
}

impl V1 {
    pub(super) fn from_record(rec: CgroupRecord) -> Self {
        V1 { rec }
    }

    pub(super) fn create(mode: Mode, rel: &Path) -> Result<Self> {
        let mut rec = CgroupRecord { mode, paths: vec![], created: vec![], systemd: None };
        let result = (|| {
            for (ctrl, mnt) in hierarchies()? {
                let dir = super::mkdir_recorded(&mnt, rel, &mut rec.created)?;
                if ctrl.split(',').any(|c| c == "cpuset") {
                    init_cpuset(&mnt, rel)?;
                }
                rec.paths.push((ctrl, dir));
            }
            if mode == Mode::Hybrid {
                let unified = Path::new(super::CGROUP_ROOT).join("unified");
                let dir = super::mkdir_recorded(&unified, rel, &mut rec.created)?;
                rec.paths.push((String::new(), dir));
            }
            Ok(())
        })();
        let v = V1 { rec };
        if let Err(e) = result {
            let _ = v.destroy();
            return Err(e);
        }
        Ok(v)
    }

    fn dir(&self, ctrl: &str) -> Option<&Path> {
        self.rec.paths.iter().find(|(c, _)| c.split(',').any(|x| x == ctrl)).map(|(_, p)| p.as_path())
    }

    fn unified(&self) -> Option<&Path> {
        self.rec.paths.iter().find(|(c, _)| c.is_empty()).map(|(_, p)| p.as_path())
    }
}

/// A new v1 cpuset cgroup starts with empty cpus/mems and refuses tasks;
/// copy the parent's values down every level we created.
pub(super) fn init_cpuset(mnt: &Path, rel: &Path) -> Result<()> {
    let mut cur = mnt.to_path_buf();
    for c in rel.components() {
        let parent = cur.clone();
        cur.push(c);
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if read_file(&cur, f)?.trim().is_empty() {
                let v = read_file(&parent, f)?;
                write_file(&cur, f, v.trim())?;
            }
        }
    }
    Ok(())
}

fn limit(v: i64) -> String {
    if v < 0 {
        "-1".into()
    } else {
        v.to_string()
    }
}

impl V1 {
    fn apply_memory(&self, r: &LinuxResources) -> Result<()> {
        let (Some(m), Some(dir)) = (r.memory(), self.dir("memory")) else {
            return Ok(());
        };
        if let Some(l) = m.limit() {
            // Raising: memsw first, since memsw must stay >= limit.
            let has_memsw = dir.join("memory.memsw.limit_in_bytes").exists();
            if let (Some(s), true) = (m.swap(), has_memsw) {
                let _ = write_file(dir, "memory.memsw.limit_in_bytes", &limit(s));
                write_file(dir, "memory.limit_in_bytes", &limit(l))?;
                write_file(dir, "memory.memsw.limit_in_bytes", &limit(s))?;
            } else {
                write_file(dir, "memory.limit_in_bytes", &limit(l))?;
            }
        }
        if let Some(v) = m.reservation() {
            write_file(dir, "memory.soft_limit_in_bytes", &limit(v))?;
        }
        if let Some(v) = m.swappiness() {
            if v > 100 {
                return Err(Error::InvalidArgument(format!("memory swappiness {v} is out of range 0..100")));
            }
            write_file(dir, "memory.swappiness", &v.to_string())?;
        }
        if m.disable_oom_killer() == Some(true) {
            write_file(dir, "memory.oom_control", "1")?;
        }
        Ok(())
    }

    fn apply_cpu(&self, r: &LinuxResources) -> Result<()> {
        let Some(c) = r.cpu() else { return Ok(()) };
        if let Some(dir) = self.dir("cpu") {
            if let Some(s) = c.shares().filter(|&s| s != 0) {
                write_file(dir, "cpu.shares", &s.to_string())?;
            }
            if let Some(p) = c.period().filter(|&p| p != 0) {
                write_file(dir, "cpu.cfs_period_us", &p.to_string())?;
            }
            if let Some(q) = c.quota().filter(|&q| q != 0) {
                write_file(dir, "cpu.cfs_quota_us", &q.to_string())?;
            }
            if let Some(p) = c.realtime_period().filter(|&p| p != 0) {
                write_file(dir, "cpu.rt_period_us", &p.to_string())?;
            }
            if let Some(q) = c.realtime_runtime().filter(|&q| q != 0) {
                write_file(dir, "cpu.rt_runtime_us", &q.to_string())?;
            }
        }
        if let Some(dir) = self.dir("cpuset") {
            if let Some(v) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
                write_file(dir, "cpuset.cpus", v)?;
            }
            if let Some(v) = c.mems().as_deref().filter(|v| !v.is_empty()) {
                write_file(dir, "cpuset.mems", v)?;
            }
        }
        Ok(())
    }

    fn apply_blkio(&self, r: &LinuxResources) -> Result<()> {
        let (Some(b), Some(dir)) = (r.block_io(), self.dir("blkio")) else {
            return Ok(());
        };
        // CFQ exposes blkio.weight; BFQ kernels only blkio.bfq.weight.
        let weight_file = if dir.join("blkio.weight").exists() { "blkio.weight" } else { "blkio.bfq.weight" };
        if let Some(w) = b.weight() {
            if !dir.join(weight_file).exists() {
                return Err(Error::Unsupported(
                    "blkio weight on this kernel (no blkio.weight or blkio.bfq.weight)".into(),
                ));
            }
            write_file(dir, weight_file, &w.to_string())?;
        }
        if let Some(w) = b.leaf_weight() {
            write_file(dir, "blkio.leaf_weight", &w.to_string())?;
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(w) = d.weight() {
                let f = format!("{weight_file}_device");
                write_file(dir, &f, &format!("{}:{} {w}", d.major(), d.minor()))?;
            }
        }
        let throttles = [
            ("blkio.throttle.read_bps_device", b.throttle_read_bps_device()),
            ("blkio.throttle.write_bps_device", b.throttle_write_bps_device()),
            ("blkio.throttle.read_iops_device", b.throttle_read_iops_device()),
            ("blkio.throttle.write_iops_device", b.throttle_write_iops_device()),
        ];
        for (f, list) in throttles {
            for d in list.iter().flatten() {
                write_file(dir, f, &format!("{}:{} {}", d.major(), d.minor(), d.rate()))?;
            }
        }
        Ok(())
    }

    fn apply_devices(&self, r: &LinuxResources) -> Result<()> {
        // One list of rules for both renderings: v1's allow/deny files, or
        // the eBPF filter on the v2 mount of a hybrid host that lacks the
        // v1 devices controller.
        let rules = super::devfilter::rules(r)?;
        if rules.is_empty() {
            return Ok(());
        }
        match (self.dir("devices"), self.unified()) {
            (Some(dir), _) => {
                for rule in &rules {
                    let file = if rule.allow { "devices.allow" } else { "devices.deny" };
                    write_file(dir, file, &rule.v1_line())?;
                }
                Ok(())
            }
            (None, Some(u)) => super::devfilter::apply(u, &rules),
            (None, None) => Ok(()),
        }
    }

    fn apply_hugetlb(&self, r: &LinuxResources) -> Result<()> {
        for h in r.hugepage_limits().iter().flatten() {
            if let Some(dir) = self.dir("hugetlb") {
                let f = format!("hugetlb.{}.limit_in_bytes", h.page_size());
                write_file(dir, &f, &h.limit().to_string())?;
            } else if let Some(dir) = self.unified() {
                // Hybrid host whose hugetlb controller sits on the v2 mount.
                super::v2::enable_controllers(&Path::new(super::CGROUP_ROOT).join("unified"), dir, &["hugetlb"])?;
                write_file(dir, &format!("hugetlb.{}.max", h.page_size()), &h.limit().to_string())?;
            } else {
                return Err(Error::Unsupported("hugetlb limits: no hugetlb controller".into()));
            }
        }
        Ok(())
    }
}

impl CgroupManager for V1 {
    fn add_task(&self, pid: i32) -> Result<()> {
        for (_, dir) in &self.rec.paths {
            write_file(dir, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    fn apply(&self, r: &LinuxResources) -> Result<()> {
        self.apply_memory(r)?;
        self.apply_cpu(r)?;
        if let (Some(p), Some(dir)) = (r.pids(), self.dir("pids")) {
            let v = if p.limit() > 0 { p.limit().to_string() } else { "max".into() };
            write_file(dir, "pids.max", &v)?;
        }
        self.apply_blkio(r)?;
        self.apply_hugetlb(r)?;
        self.apply_devices(r)?;
        if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            let Some(dir) = self.unified() else {
                return Err(Error::Unsupported("linux.resources.unified on a cgroup v1 host".into()));
            };
            for (k, v) in r.unified().iter().flatten() {
                write_file(dir, k, v)?;
            }
        }
        Ok(())
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        let Some(dir) = self.dir("freezer") else {
            return Err(Error::Unsupported("pause without a freezer cgroup".into()));
        };
        let want = if frozen { "FROZEN" } else { "THAWED" };
        for _ in 0..1000 {
            write_file(dir, "freezer.state", want)?;
            if read_file(dir, "freezer.state")?.trim() == want {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Err(Error::cgroup(dir, std::io::Error::new(std::io::ErrorKind::TimedOut, "freezer did not settle")))
    }

    fn is_frozen(&self) -> bool {
        self.dir("freezer").and_then(|d| read_file(d, "freezer.state").ok()).is_some_and(|s| s.trim() == "FROZEN")
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let dir = self
            .dir("pids")
            .or_else(|| self.dir("freezer"))
            .or_else(|| self.rec.paths.first().map(|(_, p)| p.as_path()));
        match dir {
            Some(d) => super::read_procs(d),
            None => Ok(vec![]),
        }
    }

    fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        if let Some(d) = self.dir("memory") {
            s.memory_usage = read_u64(d, "memory.usage_in_bytes").unwrap_or(0);
            s.memory_max_usage = read_u64(d, "memory.max_usage_in_bytes").unwrap_or(0);
            // The kernel reports "unlimited" as a huge page-aligned number.
            s.memory_limit = read_u64(d, "memory.limit_in_bytes").filter(|&l| l < (1 << 62));
            s.oom_kills = read_file(d, "memory.oom_control")
                .ok()
                .and_then(|t| t.lines().find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok()))
                .unwrap_or(0);
        }
        if let Some(d) = self.dir("cpuacct") {
            s.cpu_usage_ns = read_u64(d, "cpuacct.usage").unwrap_or(0);
        }
        if let Some(d) = self.dir("pids") {
            s.pids_current = read_u64(d, "pids.current").unwrap_or(0);
            s.pids_limit = read_u64(d, "pids.max");
        }
        Ok(s)
    }

    fn destroy(&self) -> Result<()> {
        if self.is_frozen() {
            let _ = self.set_frozen(false);
        }
        let dirs: Vec<&Path> = self.rec.paths.iter().map(|(_, p)| p.as_path()).collect();
        if dirs.is_empty() {
            return Ok(());
        }
        super::kill_and_remove(&dirs, &self.rec.created)
    }

    fn record(&self) -> &CgroupRecord {
        &self.rec
    }

    fn placement(&self) -> Result<super::Placement> {
        let v1 = self.rec.paths.iter().filter(|(c, _)| !c.is_empty()).map(|(_, p)| p.as_path()).collect();
        super::Placement::new(v1, self.unified())
    }
}
