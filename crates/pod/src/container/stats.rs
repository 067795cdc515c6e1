//! `stats`, `top` and `update`: a running container's resource usage, its
//! processes, and its limits changed while it runs.
//!
//! The figures are Docker's: CPU % is the container's CPU time over the
//! host's between two samples, times the online CPUs; memory usage leaves
//! out the inactive page cache (`total_inactive_file` on cgroup v1,
//! `inactive_file` on v2) and the limit is the host's memory when the
//! container has none; network I/O is read from the container's network
//! namespace (`/proc/<init>/net/dev`, loopback left out); block I/O from
//! blkio (v1) or io.stat (v2). The runtime's reader finds the controllers
//! on v1, v2 or a hybrid host.

use super::record::{self, Container};
use super::Containers;
use crate::error::{Error, Result};
use serde_json::json;
use std::time::Instant;

/// One reading of a container's usage.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Instant,
    /// The container's CPU time, ns.
    pub cpu_ns: u64,
    /// The host's CPU time (all CPUs, every state), ns.
    pub system_ns: u64,
    pub online_cpus: u32,
    pub mem_usage: u64,
    pub mem_limit: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub blk_read: u64,
    pub blk_write: u64,
    pub pids: u64,
}

impl Sample {
    /// A stopped container's row: zeros.
    fn empty() -> Sample {
        Sample {
            at: Instant::now(),
            cpu_ns: 0,
            system_ns: system_cpu_ns(),
            online_cpus: online_cpus(),
            mem_usage: 0,
            mem_limit: 0,
            net_rx: 0,
            net_tx: 0,
            blk_read: 0,
            blk_write: 0,
            pids: 0,
        }
    }

    /// Docker's CPU %: container delta / host delta × online CPUs × 100.
    pub fn cpu_percent(&self, prev: &Sample) -> f64 {
        let cpu = self.cpu_ns.saturating_sub(prev.cpu_ns) as f64;
        let sys = self.system_ns.saturating_sub(prev.system_ns) as f64;
        if cpu <= 0.0 || sys <= 0.0 {
            return 0.0;
        }
        cpu / sys * f64::from(self.online_cpus) * 100.0
    }

    pub fn mem_percent(&self) -> f64 {
        if self.mem_limit == 0 {
            0.0
        } else {
            self.mem_usage as f64 / self.mem_limit as f64 * 100.0
        }
    }
}

/// `/proc/stat`'s first line, in ns (Docker's `system_cpu_usage`).
fn system_cpu_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| l.split_whitespace().skip(1).take(8).filter_map(|v| v.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * (1_000_000_000 / hz)
}

fn online_cpus() -> u32 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as u32
}

fn host_memory() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Bytes received and sent on every interface but loopback of `pid`'s netns.
fn net_io(pid: i32) -> (u64, u64) {
    net_devs(pid).iter().filter(|d| d.name != "lo").fold((0, 0), |(rx, tx), d| (rx + d.rx_bytes, tx + d.tx_bytes))
}

/// One interface's counters from `/proc/<pid>/net/dev`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetDev {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// Every interface (loopback too) of the network namespace `pid` is in.
pub fn net_devs(pid: i32) -> Vec<NetDev> {
    parse_net_dev(&std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default())
}

fn parse_net_dev(text: &str) -> Vec<NetDev> {
    let mut out = Vec::new();
    for l in text.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else { continue };
        let f: Vec<u64> = rest.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        if f.len() >= 12 {
            out.push(NetDev {
                name: name.trim().to_string(),
                rx_bytes: f[0],
                rx_packets: f[1],
                rx_errors: f[2],
                rx_dropped: f[3],
                tx_bytes: f[8],
                tx_packets: f[9],
                tx_errors: f[10],
                tx_dropped: f[11],
            });
        }
    }
    out
}

/// The figures the kubelet reads (CRI stats and cAdvisor's metric names)
/// of one cgroup: a container's or a pod's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// When it was read, ns since the epoch.
    pub timestamp_ns: i64,
    pub cpu_ns: u64,
    pub cpu_user_ns: u64,
    pub cpu_kernel_ns: u64,
    pub cfs_periods: u64,
    pub cfs_throttled_periods: u64,
    pub cfs_throttled_ns: u64,
    /// Memory charged to the cgroup, page cache included.
    pub memory: u64,
    /// `memory` less the inactive file cache (cAdvisor's working set).
    pub working_set: u64,
    pub rss: u64,
    pub cache: u64,
    pub mapped_file: u64,
    pub swap: u64,
    pub active_file: u64,
    pub inactive_file: u64,
    pub page_faults: u64,
    pub major_page_faults: u64,
    /// `None` when unlimited.
    pub memory_limit: Option<u64>,
    pub memory_max_usage: u64,
    pub memory_failcnt: u64,
    pub pids: u64,
    pub io_read_bytes: u64,
    pub io_write_bytes: u64,
    pub io_reads: u64,
    pub io_writes: u64,
}

/// Above this a v1 limit means none (the kernel's page-rounded i64::MAX).
const UNLIMITED: u64 = 1 << 62;

impl Usage {
    /// The usage of the cgroup at `cgroups_path` (absolute, as a pod's
    /// `/wharf/pod-<id>`); `None` when it does not exist.
    pub fn of_cgroup(cgroups_path: &str) -> Option<Usage> {
        let rec = wharf_runtime::cgroups::existing(std::path::Path::new(cgroups_path))?;
        Some(Usage::from_runc(&wharf_runtime::cgroups::runc_stats::collect(&rec)))
    }

    fn from_runc(s: &wharf_runtime::cgroups::runc_stats::RuncStats) -> Usage {
        let raw = &s.memory.raw;
        // v1's hierarchical `total_*` keys first, then v2's names.
        let g = |keys: &[&str]| keys.iter().find_map(|k| raw.get(*k)).copied().unwrap_or(0);
        let memory = s.memory.usage.usage;
        let inactive_file = g(&["total_inactive_file", "inactive_file"]);
        let limit = s.memory.usage.limit;
        let blk = |list: &[wharf_runtime::cgroups::runc_stats::BlkioEntry], op: &str| {
            list.iter().filter(|e| e.op.eq_ignore_ascii_case(op)).map(|e| e.value).sum()
        };
        let b = &s.blkio;
        Usage {
            timestamp_ns: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
            cpu_ns: s.cpu.usage.total,
            cpu_user_ns: s.cpu.usage.user,
            cpu_kernel_ns: s.cpu.usage.kernel,
            cfs_periods: s.cpu.throttling.periods,
            cfs_throttled_periods: s.cpu.throttling.throttled_periods,
            cfs_throttled_ns: s.cpu.throttling.throttled_time,
            memory,
            working_set: memory.saturating_sub(inactive_file),
            rss: g(&["total_rss", "anon"]),
            cache: g(&["total_cache", "file"]),
            mapped_file: g(&["total_mapped_file", "file_mapped"]),
            swap: s.memory.swap.usage.saturating_sub(memory),
            active_file: g(&["total_active_file", "active_file"]),
            inactive_file,
            page_faults: g(&["total_pgfault", "pgfault"]),
            major_page_faults: g(&["total_pgmajfault", "pgmajfault"]),
            memory_limit: (limit > 0 && limit < UNLIMITED).then_some(limit),
            memory_max_usage: s.memory.usage.max,
            memory_failcnt: s.memory.usage.failcnt,
            pids: s.pids.current,
            io_read_bytes: blk(&b.io_service_bytes_recursive, "read"),
            io_write_bytes: blk(&b.io_service_bytes_recursive, "write"),
            io_reads: blk(&b.io_serviced_recursive, "read"),
            io_writes: blk(&b.io_serviced_recursive, "write"),
        }
    }
}

/// The total CPU time (ns) of the cgroup at `cgroups_path`, from one file:
/// what a periodic sampler reads. `None` when the cgroup does not exist.
pub fn cgroup_cpu_ns(cgroups_path: &str) -> Option<u64> {
    let rec = wharf_runtime::cgroups::existing(std::path::Path::new(cgroups_path))?;
    Some(wharf_runtime::cgroups::runc_stats::cpu_total_ns(&rec))
}

/// What `update` changes; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct Update {
    /// `--memory` (`512m`).
    pub memory: Option<String>,
    /// `--memory-swap`: memory plus swap (`1g`), `-1` for unlimited.
    pub memory_swap: Option<String>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
    /// Takes effect at the container's next start.
    pub restart: Option<String>,
}

/// `top`: ps's column titles and the container's rows.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Top {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

impl Containers {
    fn live(&self, c: &Container) -> Option<wharf_runtime::Container> {
        wharf_runtime::Container::load(&self.state_root(), c.id()).ok().filter(|_| c.is_running())
    }

    /// One reading of `c`'s usage; zeros when it does not run.
    pub fn sample(&self, c: &Container) -> Result<Sample> {
        let Some(rt) = self.live(c) else { return Ok(Sample::empty()) };
        let s = match rt.runc_stats() {
            Ok(s) => s,
            Err(_) => return Ok(Sample::empty()), // it stopped meanwhile
        };
        let system_ns = system_cpu_ns();
        let raw = &s.memory.raw;
        let inactive = raw.get("total_inactive_file").or_else(|| raw.get("inactive_file")).copied().unwrap_or(0);
        let usage = s.memory.usage.usage;
        let mem_usage = if inactive < usage { usage - inactive } else { usage };
        let host = host_memory();
        let limit = s.memory.usage.limit;
        let mem_limit = if limit == 0 || limit >= host { host } else { limit };
        let (net_rx, net_tx) = net_io(rt.pid());
        let blk = |op: &str| {
            let list = &s.blkio.io_service_bytes_recursive;
            list.iter().filter(|e| e.op.eq_ignore_ascii_case(op)).map(|e| e.value).sum()
        };
        let pids = match s.pids.current {
            0 => rt.pids().map(|p| p.len() as u64).unwrap_or(0),
            n => n,
        };
        Ok(Sample {
            at: Instant::now(),
            cpu_ns: s.cpu.usage.total,
            system_ns,
            online_cpus: online_cpus(),
            mem_usage,
            mem_limit,
            net_rx,
            net_tx,
            blk_read: blk("read"),
            blk_write: blk("write"),
            pids,
        })
    }

    /// `c`'s [`Usage`], from its runtime state; `None` when it does not run.
    pub fn usage(&self, c: &Container) -> Option<Usage> {
        if self.oci(&c.record).is_some() {
            // A runtime binary's (runc, crun): its cgroup, read as any.
            let path = super::oci::bundle_cgroups_path(&c.dir).filter(|_| c.is_running())?;
            let rec = wharf_runtime::cgroups::existing(&path)?;
            return Some(Usage::from_runc(&wharf_runtime::cgroups::runc_stats::collect(&rec)));
        }
        let rt = self.live(c)?;
        let s = rt.runc_stats().ok()?;
        let mut u = Usage::from_runc(&s);
        if u.pids == 0 {
            u.pids = rt.pids().map(|p| p.len() as u64).unwrap_or(0);
        }
        Some(u)
    }

    /// `top`: runs the host's `ps` with `ps_args` (default `-ef`) and keeps
    /// the rows of the container's processes, as Docker does.
    pub fn top(&self, c: &Container, ps_args: &[String]) -> Result<Top> {
        let rt = self.live(c).ok_or_else(|| Error::Conflict(format!("Container {} is not running", c.id())))?;
        let pids = rt.pids()?;
        let args: Vec<String> = if ps_args.is_empty() { vec!["-ef".into()] } else { ps_args.to_vec() };
        let list: Vec<String> = pids.iter().map(i32::to_string).collect();
        let ps = |extra: &[String]| {
            std::process::Command::new("ps")
                .args(&args)
                .args(extra)
                .output()
                .map_err(|e| Error::io("run ps (is procps installed?)", e))
        };
        // Only the container's pids (-q), as Docker asks; some options
        // (f) refuse -q, then all of them are listed and filtered.
        let mut out = ps(&["-q".to_string(), list.join(",")])?;
        if !out.status.success() || list.is_empty() {
            out = ps(&[])?;
        }
        if !out.status.success() {
            return Err(Error::InvalidArgument(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim().lines().next().unwrap_or("failed")
            )));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }

    /// `update`: the new limits on the live cgroup (if it runs), then in
    /// the record so that the next start applies them too.
    pub fn update(&self, c: &Container, u: &Update) -> Result<()> {
        // The record as it is now (a start may have added anonymous volumes).
        let mut rec = record::load_record(&c.dir)?;
        let o = &mut rec.options;
        if let Some(r) = &u.restart {
            super::check_restart(r)?;
            if o.rm && r != "no" {
                return Err(Error::InvalidArgument("Conflicting options: --restart and --rm".into()));
            }
            o.restart = Some(r.clone());
        }
        let mut res = json!({});
        if let Some(m) = &u.memory {
            res["memory"]["limit"] = json!(crate::spec::parse_bytes(m)?);
            o.memory = Some(m.clone());
        }
        if let Some(s) = &u.memory_swap {
            let v = if s == "-1" { -1 } else { crate::spec::parse_bytes(s)? };
            let mem = o.memory.as_deref().map(crate::spec::parse_bytes).transpose()?;
            if v > 0 && mem.is_none_or(|m| v < m) {
                return Err(Error::InvalidArgument(
                    "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
                ));
            }
            if res["memory"]["limit"].is_null() {
                if let Some(m) = mem {
                    res["memory"]["limit"] = json!(m);
                }
            }
            res["memory"]["swap"] = json!(v);
            o.host.memory_swap = Some(v);
        }
        if let Some(cpus) = u.cpus {
            if cpus <= 0.0 {
                return Err(Error::InvalidArgument("--cpus must be positive".into()));
            }
            res["cpu"]["quota"] = json!((cpus * 100_000.0) as i64);
            res["cpu"]["period"] = json!(100_000);
            o.cpus = Some(cpus);
        }
        if let Some(s) = u.cpu_shares {
            res["cpu"]["shares"] = json!(s);
            o.host.cpu_shares = Some(s);
        }
        if let Some(set) = &u.cpuset_cpus {
            res["cpu"]["cpus"] = json!(set);
            o.host.cpuset_cpus = Some(set.clone());
        }
        if let Some(p) = u.pids_limit {
            res["pids"]["limit"] = json!(if p <= 0 { -1 } else { p });
            o.pids_limit = Some(p).filter(|&p| p > 0);
        }
        if res.as_object().is_some_and(|r| !r.is_empty()) {
            if let Some(rt) = self.live(c) {
                let r: wharf_runtime::oci_spec::runtime::LinuxResources =
                    serde_json::from_value(res).map_err(|e| Error::InvalidArgument(format!("resources: {e}")))?;
                rt.update(&r)?;
            }
        }
        // The monitor holds the owner lock while the container runs; the
        // record is only ever replaced whole (write + rename).
        record::save_record(&c.dir, &rec)?;
        self.event(&rec, "update", &[]);
        Ok(())
    }
}

/// ps's output, only the rows whose PID column is one of `pids`; the last
/// column keeps its spaces (the command line).
fn parse_ps(out: &str, pids: &[i32]) -> Result<Top> {
    let mut lines = out.lines();
    let titles: Vec<String> = lines.next().unwrap_or("").split_whitespace().map(String::from).collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| Error::InvalidArgument("Couldn't find PID field in ps output".into()))?;
    let mut processes = Vec::new();
    for l in lines {
        let fields: Vec<&str> = l.split_whitespace().collect();
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else { continue };
        if !pids.contains(&pid) {
            continue;
        }
        let n = titles.len();
        let mut row: Vec<String> = fields.iter().take(n.saturating_sub(1)).map(|s| s.to_string()).collect();
        if fields.len() >= n {
            row.push(fields[n - 1..].join(" "));
        }
        processes.push(row);
    }
    Ok(Top { titles, processes })
}

#[cfg(test)]
mod tests {
    #[test]
    fn ps_rows_are_the_containers_and_keep_the_command_whole() {
        let out = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init splash\nroot 42 1 0 10:01 ? 00:00:00 sleep 1000\n";
        let top = super::parse_ps(out, &[42]).unwrap();
        assert_eq!(top.titles.len(), 8);
        assert_eq!(top.processes, vec![vec!["root", "42", "1", "0", "10:01", "?", "00:00:00", "sleep 1000"]]);
        assert!(super::parse_ps("USER CMD\n", &[1]).is_err());
    }

    #[test]
    fn usage_reads_v1_and_v2_memory_names() {
        use wharf_runtime::cgroups::runc_stats::RuncStats;
        let mut v1 = RuncStats::default();
        v1.memory.usage.usage = 100 << 20;
        v1.memory.usage.limit = 9_223_372_036_854_771_712; // unlimited on v1
        v1.memory.swap.usage = 100 << 20; // no swap accounting: memsw = usage
        for (k, v) in
            [("total_inactive_file", 30 << 20), ("inactive_file", 1), ("total_rss", 50 << 20), ("total_pgfault", 7)]
        {
            v1.memory.raw.insert(k.into(), v);
        }
        let u = super::Usage::from_runc(&v1);
        assert_eq!((u.working_set, u.rss, u.page_faults, u.swap), (70 << 20, 50 << 20, 7, 0));
        assert_eq!(u.memory_limit, None);
        let mut v2 = RuncStats::default();
        v2.memory.usage.usage = 100 << 20;
        v2.memory.usage.limit = 200 << 20;
        v2.memory.swap.usage = (100 << 20) + 4096; // memory.current + memory.swap.current
        for (k, v) in [("inactive_file", 10 << 20), ("anon", 60 << 20), ("pgmajfault", 2)] {
            v2.memory.raw.insert(k.into(), v);
        }
        let u = super::Usage::from_runc(&v2);
        assert_eq!((u.working_set, u.rss, u.major_page_faults, u.swap), (90 << 20, 60 << 20, 2, 4096));
        assert_eq!(u.memory_limit, Some(200 << 20));
    }

    #[test]
    fn net_dev_counters_per_interface() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n  eth0: 5000 40 1 2 0 0 0 0 3000 30 3 4 0 0 0 0\n";
        let devs = super::parse_net_dev(text);
        assert_eq!(devs.len(), 2);
        let eth0 = &devs[1];
        assert_eq!(eth0.name, "eth0");
        assert_eq!((eth0.rx_bytes, eth0.rx_packets, eth0.rx_errors, eth0.rx_dropped), (5000, 40, 1, 2));
        assert_eq!((eth0.tx_bytes, eth0.tx_packets, eth0.tx_errors, eth0.tx_dropped), (3000, 30, 3, 4));
    }
}
