//! `events --stats` in runc's JSON schema (libcontainer's `types/events.go`),
//! the document go-runc decodes for containerd: nested `cpu`, `memory`,
//! `pids`, `blkio`, `hugetlb`, `network_interfaces` objects.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{CgroupRecord, Mode};

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// runc's `types.Stats`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuncStats {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    /// runc leaves this null outside its own network setup; so do we.
    pub network_interfaces: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// Nanoseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    #[serde(rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Blkio {
    #[serde(rename = "ioServiceBytesRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// Where each controller's files are for a record.
struct Dirs<'a>(&'a CgroupRecord);

impl Dirs<'_> {
    /// v1 directory of `ctrl`, or the v2 directory if it holds `ctrl`.
    fn get(&self, ctrl: &str) -> Option<(PathBuf, bool)> {
        let rec = self.0;
        if rec.mode != Mode::V2 {
            if let Some((_, p)) = rec.paths.iter().find(|(c, _)| c.split(',').any(|x| x == ctrl)) {
                return Some((p.clone(), false));
            }
        }
        let (_, p) = rec.paths.iter().find(|(c, _)| c.is_empty())?;
        let ctrls = fs::read_to_string(p.join("cgroup.controllers")).unwrap_or_default();
        let has = ctrl == "cpu" || ctrls.split_whitespace().any(|c| c == ctrl);
        has.then(|| (p.clone(), true))
    }
}

fn num(dir: &Path, file: &str) -> u64 {
    fs::read_to_string(dir.join(file)).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// A limit file: "max" (v2) or v1's page-rounded i64::MAX mean unlimited,
/// which runc reports as u64::MAX (v2) or the kernel's number (v1).
fn limit(dir: &Path, file: &str) -> u64 {
    match fs::read_to_string(dir.join(file)) {
        Ok(s) if s.trim() == "max" => u64::MAX,
        Ok(s) => s.trim().parse().unwrap_or(0),
        Err(_) => 0,
    }
}

/// "key value" lines (memory.stat, cpu.stat, cpuacct.stat, memory.events).
fn kv(dir: &Path, file: &str) -> BTreeMap<String, u64> {
    let text = fs::read_to_string(dir.join(file)).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Reads every figure runc reports for the cgroup in `rec`.
pub fn collect(rec: &CgroupRecord) -> RuncStats {
    let d = Dirs(rec);
    let mut s = RuncStats::default();
    if let Some((p, v2)) = d.get("cpu").or_else(|| d.get("cpuacct")) {
        cpu(&d, &p, v2, &mut s.cpu);
    }
    if let Some((p, v2)) = d.get("memory") {
        s.memory = if v2 { memory_v2(&p) } else { memory_v1(&p) };
    }
    if let Some((p, v2)) = d.get("pids") {
        s.pids.current = num(&p, "pids.current");
        let l = limit(&p, "pids.max");
        s.pids.limit = if l == u64::MAX { 0 } else { l };
        let _ = v2;
    }
    if let Some((p, v2)) = d.get("blkio").or_else(|| d.get("io")) {
        s.blkio = if v2 { blkio_v2(&p) } else { blkio_v1(&p) };
    }
    if let Some((p, v2)) = d.get("hugetlb") {
        s.hugetlb = hugetlb(&p, v2);
    }
    s
}

/// Only the cgroup's total CPU time (ns): the one figure a periodic
/// sampler needs, read from a single file.
pub fn cpu_total_ns(rec: &CgroupRecord) -> u64 {
    let d = Dirs(rec);
    match d.get("cpuacct") {
        Some((a, false)) => num(&a, "cpuacct.usage"),
        _ => match d.get("cpu") {
            Some((p, true)) => kv(&p, "cpu.stat").get("usage_usec").copied().unwrap_or(0) * 1000,
            _ => 0,
        },
    }
}

fn cpu(d: &Dirs, p: &Path, v2: bool, c: &mut Cpu) {
    if v2 {
        let st = kv(p, "cpu.stat");
        let g = |k: &str| st.get(k).copied().unwrap_or(0);
        c.usage.total = g("usage_usec") * 1000;
        c.usage.user = g("user_usec") * 1000;
        c.usage.kernel = g("system_usec") * 1000;
        c.throttling = Throttling {
            periods: g("nr_periods"),
            throttled_periods: g("nr_throttled"),
            throttled_time: g("throttled_usec") * 1000,
        };
        return;
    }
    if let Some((a, _)) = d.get("cpuacct") {
        c.usage.total = num(&a, "cpuacct.usage");
        let percpu = fs::read_to_string(a.join("cpuacct.usage_percpu")).unwrap_or_default();
        c.usage.percpu = percpu.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        // cpuacct.stat counts USER_HZ ticks.
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let st = kv(&a, "cpuacct.stat");
        c.usage.user = st.get("user").copied().unwrap_or(0) * 1_000_000_000 / hz;
        c.usage.kernel = st.get("system").copied().unwrap_or(0) * 1_000_000_000 / hz;
    }
    let st = kv(p, "cpu.stat");
    let g = |k: &str| st.get(k).copied().unwrap_or(0);
    c.throttling = Throttling {
        periods: g("nr_periods"),
        throttled_periods: g("nr_throttled"),
        throttled_time: g("throttled_time"),
    };
}

fn memory_v1(p: &Path) -> Memory {
    let entry = |prefix: &str| MemoryEntry {
        limit: limit(p, &format!("{prefix}limit_in_bytes")),
        usage: num(p, &format!("{prefix}usage_in_bytes")),
        max: num(p, &format!("{prefix}max_usage_in_bytes")),
        failcnt: num(p, &format!("{prefix}failcnt")),
    };
    let raw = kv(p, "memory.stat");
    let mut m = Memory {
        cache: raw.get("cache").copied().unwrap_or(0),
        usage: entry("memory."),
        swap: entry("memory.memsw."),
        kernel: entry("memory.kmem."),
        kernel_tcp: entry("memory.kmem.tcp."),
        raw,
    };
    // Without swap accounting runc reports swap as the memory figures.
    if !p.join("memory.memsw.usage_in_bytes").exists() {
        m.swap = m.usage.clone();
    }
    m
}

fn memory_v2(p: &Path) -> Memory {
    let raw = kv(p, "memory.stat");
    let failcnt = kv(p, "memory.events").get("max").copied().unwrap_or(0);
    let usage = MemoryEntry {
        limit: limit(p, "memory.max"),
        usage: num(p, "memory.current"),
        max: num(p, "memory.peak"),
        failcnt,
    };
    // runc's v2 "swap" is memory+swap, as v1's memsw.
    let swap = MemoryEntry {
        limit: limit(p, "memory.swap.max").saturating_add(if usage.limit == u64::MAX { 0 } else { usage.limit }),
        usage: usage.usage + num(p, "memory.swap.current"),
        max: 0,
        failcnt: 0,
    };
    Memory {
        cache: raw.get("file").copied().unwrap_or(0),
        usage,
        swap,
        kernel: MemoryEntry::default(),
        kernel_tcp: MemoryEntry::default(),
        raw,
    }
}

/// v1 blkio files: "MAJ:MIN Op value" lines and a "Total" line.
fn blkio_v1(p: &Path) -> Blkio {
    let entries = |file: &str| {
        let text = fs::read_to_string(p.join(file)).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let (dev, op, v) = (f.next()?, f.next()?, f.next()?);
                let (ma, mi) = dev.split_once(':')?;
                Some(BlkioEntry {
                    major: ma.parse().ok()?,
                    minor: mi.parse().ok()?,
                    op: op.into(),
                    value: v.parse().ok()?,
                })
            })
            .collect::<Vec<_>>()
    };
    let mut b = Blkio {
        io_service_bytes_recursive: entries("blkio.io_service_bytes_recursive"),
        io_serviced_recursive: entries("blkio.io_serviced_recursive"),
    };
    // With the CFQ/BFQ files empty (other schedulers), runc falls back to throttle stats.
    if b.io_service_bytes_recursive.is_empty() {
        b.io_service_bytes_recursive = entries("blkio.throttle.io_service_bytes_recursive");
        b.io_serviced_recursive = entries("blkio.throttle.io_serviced_recursive");
    }
    b
}

/// v2 io.stat: "MAJ:MIN rbytes=… wbytes=… rios=… wios=…".
fn blkio_v2(p: &Path) -> Blkio {
    let mut b = Blkio::default();
    for l in fs::read_to_string(p.join("io.stat")).unwrap_or_default().lines() {
        let mut f = l.split_whitespace();
        let Some((ma, mi)) = f.next().and_then(|d| d.split_once(':')) else { continue };
        let (Ok(major), Ok(minor)) = (ma.parse(), mi.parse()) else { continue };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else { continue };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut b.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut b.io_service_bytes_recursive, "Write"),
                "rios" => (&mut b.io_serviced_recursive, "Read"),
                "wios" => (&mut b.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry { major, minor, op: op.into(), value });
        }
    }
    b
}

/// Per page size: v1 `hugetlb.2MB.usage_in_bytes`, v2 `hugetlb.2MB.current`.
fn hugetlb(p: &Path, v2: bool) -> BTreeMap<String, Hugetlb> {
    let mut out = BTreeMap::new();
    let Ok(rd) = fs::read_dir(p) else { return out };
    let suffix = if v2 { ".current" } else { ".usage_in_bytes" };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(size) = name.strip_prefix("hugetlb.").and_then(|n| n.strip_suffix(suffix)) else { continue };
        if size.contains('.') {
            continue;
        }
        let h = if v2 {
            let events = kv(p, &format!("hugetlb.{size}.events"));
            Hugetlb { usage: num(p, &name), max: 0, failcnt: events.get("max").copied().unwrap_or(0) }
        } else {
            Hugetlb {
                usage: num(p, &name),
                max: num(p, &format!("hugetlb.{size}.max_usage_in_bytes")),
                failcnt: num(p, &format!("hugetlb.{size}.failcnt")),
            }
        };
        out.insert(size.to_string(), h);
    }
    out
}
