//! `update [--resources FILE|-] [--memory N …] ID`.

use super::{bad, string, value, Args, Global};
use lexopt::prelude::*;
use wharf_runtime::oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};
use wharf_runtime::{Container, Result};

fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T> {
    v.parse().map_err(|_| bad(format!("--{flag}: {v:?} is not a number")))
}

pub(crate) fn run(g: &Global, p: &mut Args) -> Result<i32> {
    let mut r = LinuxResources::default();
    let (mut mem, mut cpu, mut ids) = (LinuxMemory::default(), LinuxCpu::default(), vec![]);
    let (mut mem_set, mut cpu_set) = (false, false);
    while let Some(a) = p.next().map_err(bad)? {
        match a {
            Long("resources") | Short('r') => {
                let path = value(p)?;
                let data = if path == "-" {
                    std::io::read_to_string(std::io::stdin()).map_err(|e| bad(format!("read stdin: {e}")))?
                } else {
                    std::fs::read_to_string(&path).map_err(|e| bad(format!("read {path}: {e}")))?
                };
                r = serde_json::from_str(&data).map_err(|e| bad(format!("{path}: {e}")))?;
            }
            Long("memory") => {
                mem.set_limit(Some(num("memory", value(p)?)?));
                mem_set = true;
            }
            Long("memory-reservation") => {
                mem.set_reservation(Some(num("memory-reservation", value(p)?)?));
                mem_set = true;
            }
            Long("memory-swap") => {
                mem.set_swap(Some(num("memory-swap", value(p)?)?));
                mem_set = true;
            }
            Long("cpu-shares") => {
                cpu.set_shares(Some(num("cpu-shares", value(p)?)?));
                cpu_set = true;
            }
            Long("cpu-quota") => {
                cpu.set_quota(Some(num("cpu-quota", value(p)?)?));
                cpu_set = true;
            }
            Long("cpu-period") => {
                cpu.set_period(Some(num("cpu-period", value(p)?)?));
                cpu_set = true;
            }
            Long("cpuset-cpus") => {
                cpu.set_cpus(Some(value(p)?));
                cpu_set = true;
            }
            Long("cpuset-mems") => {
                cpu.set_mems(Some(value(p)?));
                cpu_set = true;
            }
            Long("pids-limit") => {
                let mut pids = LinuxPids::default();
                pids.set_limit(num("pids-limit", value(p)?)?);
                r.set_pids(Some(pids));
            }
            Long("blkio-weight") => {
                let mut b = LinuxBlockIo::default();
                b.set_weight(Some(num("blkio-weight", value(p)?)?));
                r.set_block_io(Some(b));
            }
            Value(v) => ids.push(string(v)?),
            a => return Err(super::unexpected(a)),
        }
    }
    if mem_set {
        r.set_memory(Some(mem));
    }
    if cpu_set {
        r.set_cpu(Some(cpu));
    }
    Container::load(&g.root, &super::need_id(ids)?)?.update(&r)?;
    Ok(0)
}
