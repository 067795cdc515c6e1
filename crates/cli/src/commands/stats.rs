//! `stats`, `top`, `update`: a container's usage, processes and limits.

use crate::output;
use crate::Globals;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;
use wharf_pod::container::{Sample, Update};
use wharf_pod::{Container, Containers};

#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default: only running ones).
    #[arg(short, long)]
    all: bool,
    /// Print one reading and exit (default: refresh every second until ^C).
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate IDs.
    #[arg(long)]
    no_trunc: bool,
    /// table (default), json (one object per line), or a Go template ('{{.MemUsage}}').
    #[arg(long)]
    format: Option<String>,
    containers: Vec<String>,
}

/// Docker's binary sizes with four significant digits (`3.516MiB`).
fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    // %.4g: four significant digits.
    let digits = v.trunc().to_string().len();
    let s = if v == 0.0 { "0".to_string() } else { format!("{v:.p$}", p = 4usize.saturating_sub(digits)) };
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    format!("{s}{}", UNITS[i])
}

fn row(c: &Container, name_given: &str, prev: &Sample, cur: &Sample, no_trunc: bool) -> Map<String, Value> {
    let id = if no_trunc { c.id().to_string() } else { c.id()[..12].to_string() };
    let mut m = Map::new();
    m.insert("BlockIO".into(), json!(format!("{} / {}", output::size(cur.blk_read), output::size(cur.blk_write))));
    m.insert("CPUPerc".into(), json!(format!("{:.2}%", cur.cpu_percent(prev))));
    m.insert("Container".into(), json!(name_given));
    m.insert("ID".into(), json!(id));
    m.insert("MemPerc".into(), json!(format!("{:.2}%", cur.mem_percent())));
    m.insert("MemUsage".into(), json!(format!("{} / {}", binary_size(cur.mem_usage), binary_size(cur.mem_limit))));
    m.insert("Name".into(), json!(c.name()));
    m.insert("NetIO".into(), json!(format!("{} / {}", output::size(cur.net_rx), output::size(cur.net_tx))));
    m.insert("PIDs".into(), json!(cur.pids.to_string()));
    m
}

/// The containers to show and the name each was asked by.
fn targets(cs: &Containers, a: &StatsArgs) -> anyhow::Result<Vec<(String, Container)>> {
    if a.containers.is_empty() {
        let mut list = cs.list()?;
        if !a.all {
            list.retain(|c| c.is_running());
        }
        return Ok(list.into_iter().map(|c| (c.id()[..12].to_string(), c)).collect());
    }
    a.containers.iter().map(|n| Ok((n.clone(), cs.get(n)?))).collect()
}

fn print(rows: &[Map<String, Value>], format: Option<&str>) -> anyhow::Result<()> {
    match format {
        None | Some("table") => {
            let head = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"];
            let mut t = vec![head.map(String::from).to_vec()];
            for m in rows {
                let f = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                t.push(vec![
                    f("ID"),
                    f("Name"),
                    f("CPUPerc"),
                    f("MemUsage"),
                    f("MemPerc"),
                    f("NetIO"),
                    f("BlockIO"),
                    f("PIDs"),
                ]);
            }
            output::table(&t)
        }
        Some("json") => {
            for m in rows {
                crate::outln!("{}", Value::Object(m.clone()))?;
            }
            Ok(())
        }
        Some(t) => {
            let tpl = t.strip_prefix("table ").unwrap_or(t);
            for m in rows {
                crate::outln!("{}", super::ps::render(tpl, m))?;
            }
            Ok(())
        }
    }
}

pub fn stats(g: &Globals, a: StatsArgs) -> anyhow::Result<ExitCode> {
    let cs = Containers::new(&g.root, &g.run_root);
    cs.sweep();
    let mut prev: std::collections::HashMap<String, Sample> = std::collections::HashMap::new();
    loop {
        let list = targets(&cs, &a)?;
        let first: Vec<Sample> = list
            .iter()
            .map(|(_, c)| prev.get(c.id()).cloned().map_or_else(|| cs.sample(c), Ok))
            .collect::<Result<_, _>>()?;
        std::thread::sleep(Duration::from_secs(1));
        let mut rows = Vec::new();
        prev.clear();
        for ((given, c), p) in list.iter().zip(&first) {
            let c = cs.get(c.id()).unwrap_or_else(|_| c.clone());
            let cur = cs.sample(&c)?;
            rows.push(row(&c, given, p, &cur, a.no_trunc));
            prev.insert(c.id().to_string(), cur);
        }
        if !a.no_stream {
            // Docker's refresh: clear the screen, home the cursor.
            crate::output::write_out(format_args!("\x1b[2J\x1b[H"))?;
        }
        print(&rows, a.format.as_deref())?;
        if a.no_stream {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct TopArgs {
    container: String,
    /// Options for ps (default: -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

pub fn top(g: &Globals, a: TopArgs) -> anyhow::Result<ExitCode> {
    let cs = Containers::new(&g.root, &g.run_root);
    let c = cs.get(&a.container)?;
    let args: Vec<String> = a.ps_args.iter().flat_map(|s| s.split_whitespace().map(String::from)).collect();
    let top = cs.top(&c, &args)?;
    let mut rows = vec![top.titles];
    rows.extend(top.processes);
    output::table(&rows)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// Memory limit (512m, 1g).
    #[arg(short, long)]
    memory: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap.
    #[arg(long)]
    memory_swap: Option<String>,
    /// Number of CPUs (1.5).
    #[arg(long)]
    cpus: Option<f64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    cpu_shares: Option<u64>,
    /// CPUs the container may run on (0-3, 0,1).
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Process limit (-1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Restart policy at the next start: no, always, unless-stopped, on-failure[:N].
    #[arg(long)]
    restart: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn update(g: &Globals, a: UpdateArgs) -> anyhow::Result<ExitCode> {
    let cs = Containers::new(&g.root, &g.run_root);
    let u = Update {
        memory: a.memory,
        memory_swap: a.memory_swap,
        cpus: a.cpus,
        cpu_shares: a.cpu_shares,
        cpuset_cpus: a.cpuset_cpus,
        pids_limit: a.pids_limit,
        restart: a.restart,
    };
    let mut failed = false;
    for n in &a.containers {
        match cs.get(n).and_then(|c| cs.update(&c, &u)) {
            Ok(()) => crate::outln!("{n}")?,
            Err(e) => {
                failed = true;
                let _ = writeln!(std::io::stderr(), "Error response from daemon: {e}");
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

#[cfg(test)]
mod tests {
    #[test]
    fn binary_sizes_as_docker() {
        assert_eq!(super::binary_size(0), "0B");
        assert_eq!(super::binary_size(3_686_400), "3.516MiB");
        assert_eq!(super::binary_size(8_232_476_672), "7.667GiB");
        assert_eq!(super::binary_size(512), "512B");
    }
}
