//! `wharf pod create|ls|ps|inspect|start|stop|restart|kill|pause|unpause|rm|prune|top|stats|logs`.

use crate::output;
use crate::Globals;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::ExitCode;
use wharf_pod::container::logs::LogOptions;
use wharf_pod::{NetworkMode, PodOptions, Pods, Share};

// Parsed once per process: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Create a pod: shared network, IPC and UTS namespaces and a parent cgroup.
    Create(CreateArgs),
    /// List pods.
    #[command(alias = "ps", alias = "list")]
    Ls(LsArgs),
    /// Show pods' details as JSON.
    Inspect(NamesArgs),
    /// Start pods: the infra, then the containers in creation order.
    Start(NamesArgs),
    /// Stop pods: the containers in reverse order, then the infra.
    Stop(StopArgs),
    /// Stop, then start pods.
    Restart(StopArgs),
    /// Send a signal to every running member of pods.
    Kill(KillArgs),
    /// Pause every running container of pods.
    Pause(NamesArgs),
    /// Unpause every paused container of pods.
    Unpause(NamesArgs),
    /// Remove pods, their containers, network, namespaces and cgroup.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove every pod with no running member.
    Prune(PruneArgs),
    /// Show the processes of a pod's containers.
    Top(TopArgs),
    /// Show the usage of pods' containers, refreshed every second (--no-stream: one reading).
    Stats(StatsArgs),
    /// Show the logs of a pod's containers, each line prefixed by the container's name.
    Logs(LogsArgs),
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// The pod's name (default: a random one).
    #[arg(long)]
    name: Option<String>,
    /// Publish a port of the pod: [IP:][HOST:]CONTAINER[/PROTO].
    #[arg(short, long)]
    publish: Vec<String>,
    /// bridge (the default network), a network's name, none (only lo), or host.
    #[arg(long, alias = "net", default_value = "bridge")]
    network: String,
    /// The pod's host name (default: its name).
    #[arg(long)]
    hostname: Option<String>,
    /// Add NAME:IP to the pod's /etc/hosts.
    #[arg(long)]
    add_host: Vec<String>,
    /// DNS server for the pod's resolv.conf.
    #[arg(long)]
    dns: Vec<String>,
    /// DNS search domain.
    #[arg(long)]
    dns_search: Vec<String>,
    /// resolv.conf option.
    #[arg(long)]
    dns_option: Vec<String>,
    /// Namespaces the containers share: net, ipc, uts, pid (comma-separated).
    #[arg(long, default_value = "net,ipc,uts")]
    share: String,
    /// CPUs for the whole pod (e.g. 1.5).
    #[arg(long)]
    cpus: Option<f64>,
    /// Memory limit of the whole pod (e.g. 256m).
    #[arg(short, long)]
    memory: Option<String>,
    /// KEY=VALUE label.
    #[arg(short, long)]
    label: Vec<String>,
    /// KEY=VALUE annotation of the pod.
    #[arg(long)]
    annotation: Vec<String>,
    /// Run the infra process (wharf-infra); needed by --share pid.
    #[arg(long, default_value = "true", default_missing_value = "true", num_args = 0..=1, action = clap::ArgAction::Set)]
    infra: bool,
}

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Only show pod IDs.
    #[arg(short, long)]
    quiet: bool,
    /// table or json.
    #[arg(long, default_value = "table")]
    format: String,
    /// Do not truncate IDs.
    #[arg(long)]
    no_trunc: bool,
}

#[derive(clap::Args, Debug)]
pub struct NamesArgs {
    #[arg(required = true)]
    pods: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait for each container before SIGKILL (default: each one's stop timeout).
    #[arg(short = 't', long = "time", alias = "timeout")]
    time: Option<u64>,
    #[arg(required = true)]
    pods: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct KillArgs {
    /// The signal (default SIGKILL).
    #[arg(short, long, default_value = "SIGKILL")]
    signal: String,
    #[arg(required = true)]
    pods: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Stop and remove running pods too.
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    pods: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Do not ask (wharf never asks).
    #[arg(short, long)]
    force: bool,
}

#[derive(clap::Args, Debug)]
pub struct TopArgs {
    pod: String,
    /// ps options (default: -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    /// Pods (default: all).
    pods: Vec<String>,
    /// Print one reading and exit (default: refresh every second until ^C).
    #[arg(long)]
    no_stream: bool,
    /// table (default) or json (an array per reading, podman's keys).
    #[arg(long)]
    format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// Follow the logs until no chosen container runs.
    #[arg(short, long)]
    follow: bool,
    /// Only this container (name or ID prefix).
    #[arg(short, long)]
    container: Option<String>,
    /// Show timestamps.
    #[arg(short, long)]
    timestamps: bool,
    /// Only the last N lines of each container.
    #[arg(long)]
    tail: Option<usize>,
    pod: String,
}

/// Errors exit 125, as podman's.
pub fn run(g: &Globals, c: Command) -> anyhow::Result<ExitCode> {
    let pods = Pods::new(&g.root, &g.run_root);
    match dispatch(&pods, c) {
        Ok(code) => Ok(code),
        Err(e) if output::is_stdout_closed(&e) => Err(e),
        Err(e) => {
            eprintln!("wharf: {e:#}");
            Ok(ExitCode::from(125))
        }
    }
}

fn dispatch(pods: &Pods, c: Command) -> anyhow::Result<ExitCode> {
    match c {
        Command::Create(a) => {
            let p = pods.create(&options(a)?)?;
            crate::outln!("{}", p.id)?;
        }
        Command::Ls(a) => ls(pods, &a)?,
        Command::Inspect(a) => {
            let mut out = Vec::new();
            for n in &a.pods {
                out.push(pods.inspect(&pods.get(n)?));
            }
            crate::outln!("{}", serde_json::to_string_pretty(&out)?)?;
        }
        Command::Start(a) => each(&a.pods, |p| pods.start(p))?,
        Command::Stop(a) => each(&a.pods, |p| pods.stop(p, a.time))?,
        Command::Restart(a) => each(&a.pods, |p| pods.restart(p, a.time))?,
        Command::Kill(a) => each(&a.pods, |p| pods.kill(p, &a.signal))?,
        Command::Pause(a) => each(&a.pods, |p| pods.pause(p))?,
        Command::Unpause(a) => each(&a.pods, |p| pods.unpause(p))?,
        Command::Rm(a) => each(&a.pods, |p| pods.rm(p, a.force))?,
        Command::Prune(_) => {
            for id in pods.prune()? {
                crate::outln!("{id}")?;
            }
        }
        Command::Top(a) => top(pods, &a)?,
        Command::Stats(a) => stats(pods, &a)?,
        Command::Logs(a) => {
            let o = LogOptions { follow: a.follow, timestamps: a.timestamps, tail: a.tail, ..Default::default() };
            let mut out = output::Stdout::lock();
            pods.logs(&a.pod, a.container.as_deref(), &o, &mut out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `f` on each pod, printing its ID when done; every pod is tried.
fn each(names: &[String], f: impl Fn(&str) -> wharf_pod::Result<()>) -> anyhow::Result<()> {
    let mut failed = None;
    for n in names {
        match f(n) {
            Ok(()) => crate::outln!("{n}")?,
            Err(e) => {
                eprintln!("wharf: {n}: {e}");
                failed = Some(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn options(a: CreateArgs) -> anyhow::Result<PodOptions> {
    let network = match a.network.as_str() {
        "none" => NetworkMode::None,
        "host" => NetworkMode::Host,
        other if other.starts_with("container:") => anyhow::bail!("--network container:NAME is not supported for pods"),
        other => NetworkMode::Bridge(other.to_string()),
    };
    let mut labels = BTreeMap::new();
    for l in a.label {
        let (k, v) = l.split_once('=').unwrap_or((&l, ""));
        anyhow::ensure!(!k.is_empty(), "invalid label {l:?}: KEY=VALUE");
        labels.insert(k.to_string(), v.to_string());
    }
    let mut annotations = BTreeMap::new();
    for l in a.annotation {
        let (k, v) = l.split_once('=').unwrap_or((&l, ""));
        anyhow::ensure!(!k.is_empty() && l.contains('='), "invalid annotation {l:?}: KEY=VALUE");
        annotations.insert(k.to_string(), v.to_string());
    }
    Ok(PodOptions {
        name: a.name,
        publish: a.publish,
        network,
        hostname: a.hostname,
        add_hosts: a.add_host,
        dns: a.dns,
        dns_search: a.dns_search,
        dns_options: a.dns_option,
        share: Share::parse(&a.share)?,
        cpus: a.cpus,
        memory: a.memory.as_deref().map(wharf_pod::pod::parse_size).transpose()?,
        labels,
        annotations,
        infra: a.infra,
        cni: None,
        ..Default::default()
    })
}

fn ls(pods: &Pods, a: &LsArgs) -> anyhow::Result<()> {
    let list = pods.list()?;
    if a.format == "json" {
        let v: Vec<Value> = list.iter().map(|p| pods.ls_entry(p)).collect();
        crate::outln!("{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    anyhow::ensure!(a.format == "table", "--format {:?}: use table or json", a.format);
    let id = |s: &str| if a.no_trunc { s.to_string() } else { output::short_id(s) };
    if a.quiet {
        for p in &list {
            crate::outln!("{}", id(&p.id))?;
        }
        return Ok(());
    }
    let mut rows = vec![["POD ID", "NAME", "STATUS", "CREATED", "IP", "INFRA PID", "# OF CONTAINERS"]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()];
    for p in &list {
        let infra = if p.infra.running { p.infra.pid.to_string() } else { "-".into() };
        rows.push(vec![
            id(&p.id),
            p.name.clone(),
            p.status().to_string(),
            output::age(Some(&p.created)),
            p.ip.clone().unwrap_or_else(|| "-".into()),
            infra,
            p.containers.len().to_string(),
        ]);
    }
    output::table(&rows)
}

fn top(pods: &Pods, a: &TopArgs) -> anyhow::Result<()> {
    let cs = wharf_pod::Containers::new(pods.root(), pods.run_root());
    let mut rows: Vec<Vec<String>> = Vec::new();
    for c in pods.containers(&a.pod)?.iter().filter(|c| c.is_running()) {
        let t = cs.top(c, &a.ps_args)?;
        if rows.is_empty() {
            rows.push(std::iter::once("CONTAINER".to_string()).chain(t.titles.iter().cloned()).collect());
        }
        for p in t.processes {
            rows.push(std::iter::once(c.name().to_string()).chain(p).collect());
        }
    }
    anyhow::ensure!(!rows.is_empty(), "pod {} has no running container", a.pod);
    output::table(&rows)
}

/// podman pod stats' columns and (for `--format json`) keys.
const STATS_COLUMNS: [(&str, &str); 9] = [
    ("Pod", "POD"),
    ("CID", "CID"),
    ("Name", "NAME"),
    ("CPU", "CPU %"),
    ("MemUsage", "MEM USAGE/ LIMIT"),
    ("Mem", "MEM %"),
    ("NetIO", "NET IO"),
    ("BlockIO", "BLOCK IO"),
    ("PIDS", "PIDS"),
];

/// `pod stats`: as `wharf stats`, a reading a second (the screen cleared
/// before each) until interrupted, or one with `--no-stream`.
fn stats(pods: &Pods, a: &StatsArgs) -> anyhow::Result<()> {
    use wharf_pod::container::Sample;
    let format = a.format.as_deref().unwrap_or("table");
    anyhow::ensure!(matches!(format, "table" | "json"), "--format {format:?}: use table or json");
    let cs = wharf_pod::Containers::new(pods.root(), pods.run_root());
    let mut prev: std::collections::HashMap<String, Sample> = std::collections::HashMap::new();
    loop {
        let chosen = if a.pods.is_empty() {
            pods.list()?
        } else {
            a.pods.iter().map(|n| pods.get(n)).collect::<Result<Vec<_>, _>>()?
        };
        let running: Vec<_> =
            chosen.iter().flat_map(|p| p.containers.iter().filter(|c| c.is_running()).map(move |c| (p, c))).collect();
        let first: Vec<Sample> = running
            .iter()
            .map(|(_, c)| prev.get(c.id()).cloned().map_or_else(|| cs.sample(c), Ok))
            .collect::<Result<_, _>>()?;
        std::thread::sleep(std::time::Duration::from_secs(1));
        prev.clear();
        let mut rows: Vec<Vec<String>> = Vec::new();
        for ((p, c), before) in running.iter().zip(&first) {
            let Ok(cur) = cs.sample(c) else { continue }; // stopped meanwhile
            rows.push(vec![
                output::short_id(&p.id),
                output::short_id(c.id()),
                c.name().to_string(),
                format!("{:.2}%", cur.cpu_percent(before)),
                format!("{} / {}", output::size(cur.mem_usage), output::size(cur.mem_limit)),
                format!("{:.2}%", cur.mem_percent()),
                format!("{} / {}", output::size(cur.net_rx), output::size(cur.net_tx)),
                format!("{} / {}", output::size(cur.blk_read), output::size(cur.blk_write)),
                cur.pids.to_string(),
            ]);
            prev.insert(c.id().to_string(), cur);
        }
        if !a.no_stream && format == "table" {
            // As `wharf stats` (and podman): clear the screen, home the cursor.
            output::write_out(format_args!("\x1b[2J\x1b[H"))?;
        }
        if format == "json" {
            let list: Vec<Value> = rows
                .iter()
                .map(|r| {
                    Value::Object(
                        STATS_COLUMNS.iter().zip(r).map(|((k, _), v)| (k.to_string(), v.clone().into())).collect(),
                    )
                })
                .collect();
            crate::outln!("{}", serde_json::to_string_pretty(&list)?)?;
        } else {
            let head: Vec<String> = STATS_COLUMNS.iter().map(|(_, h)| h.to_string()).collect();
            output::table(&std::iter::once(head).chain(rows).collect::<Vec<_>>())?;
        }
        if a.no_stream {
            return Ok(());
        }
    }
}
