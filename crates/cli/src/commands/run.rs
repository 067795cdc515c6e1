use crate::Globals;
use std::io::Write;
use std::process::ExitCode;
use wharf_pod::{NetworkMode, RunOptions};

#[derive(clap::Args, Debug)]
#[command(trailing_var_arg = true)]
pub struct Args {
    /// Run in the background and print the container's ID.
    #[arg(short, long)]
    detach: bool,
    /// Remove the container and its anonymous volumes when it exits.
    #[arg(long)]
    rm: bool,
    /// Restart policy: no, always, unless-stopped, on-failure[:MAX].
    #[arg(long)]
    restart: Option<String>,
    /// Log option: max-size=SIZE (rotate at), max-file=N (files kept).
    #[arg(long = "log-opt")]
    log_opt: Vec<String>,
    /// Signal that `stop` sends (default SIGTERM).
    #[arg(long)]
    stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL (default 10).
    #[arg(long)]
    stop_timeout: Option<u64>,
    /// Command to run to check health (with /bin/sh -c in the container).
    #[arg(long, value_name = "CMD")]
    health_cmd: Option<String>,
    /// Time between health checks (ms|s|m|h) (default 30s).
    #[arg(long, value_name = "TIME")]
    health_interval: Option<String>,
    /// Maximum time a health check may run (ms|s|m|h) (default 30s).
    #[arg(long, value_name = "TIME")]
    health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy (default 3).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    health_retries: Option<i64>,
    /// Start period in which failures do not count (ms|s|m|h) (default 0s).
    #[arg(long, value_name = "TIME")]
    health_start_period: Option<String>,
    /// Time between health checks during the start period (ms|s|m|h) (default 5s).
    #[arg(long, value_name = "TIME")]
    health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long)]
    no_healthcheck: bool,
    /// Set a label: KEY=VALUE.
    #[arg(short, long = "label")]
    label: Vec<String>,
    /// Add an annotation to the container's OCI spec: KEY=VALUE.
    #[arg(long)]
    annotation: Vec<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to pass this one through).
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Read environment variables from a file (KEY=VALUE lines, # comments).
    #[arg(long)]
    env_file: Vec<std::path::PathBuf>,
    /// Working directory inside the container.
    #[arg(short, long)]
    workdir: Option<String>,
    /// user[:group], by name or number.
    #[arg(short, long)]
    user: Option<String>,
    /// Override the image's entrypoint ("" clears it).
    #[arg(long)]
    entrypoint: Option<String>,
    /// Mount the container's root filesystem read-only.
    #[arg(long)]
    read_only: bool,
    /// Memory limit (e.g. 256m, 1g).
    #[arg(short, long)]
    memory: Option<String>,
    /// Maximum number of processes.
    #[arg(long)]
    pids_limit: Option<i64>,
    /// CPUs (e.g. 0.5).
    #[arg(long)]
    cpus: Option<f64>,
    /// Container host name.
    #[arg(long)]
    hostname: Option<String>,
    /// bridge (the default network), a network's name, none (only lo), host, or container:NAME.
    #[arg(long, alias = "net")]
    network: Option<String>,
    /// Join a pod (by name or ID), or `new:NAME` to create one with this container's network and ports.
    #[arg(long)]
    pod: Option<String>,
    /// The container's name (found by it on user networks).
    #[arg(long)]
    name: Option<String>,
    /// Another name for the container on its network.
    #[arg(long = "network-alias", alias = "net-alias")]
    network_alias: Vec<String>,
    /// Add NAME:IP to /etc/hosts.
    #[arg(long = "add-host")]
    add_host: Vec<String>,
    /// DNS server for the container.
    #[arg(long)]
    dns: Vec<String>,
    /// DNS search domain for the container (`.`: none).
    #[arg(long = "dns-search")]
    dns_search: Vec<String>,
    /// DNS resolver option for the container (resolv.conf `options`).
    #[arg(long = "dns-option", alias = "dns-opt")]
    dns_option: Vec<String>,
    /// Publish a port: [IP:][HOST:]CONTAINER[/tcp|udp].
    #[arg(short, long = "publish")]
    publish: Vec<String>,
    /// Publish every EXPOSEd port to a free host port.
    #[arg(short = 'P', long = "publish-all")]
    publish_all: bool,
    /// Mount a volume or host path: NAME:PATH, /HOST:PATH or PATH (anonymous), then
    /// [:ro|rw|nocopy|z|Z|rprivate|private|rshared|shared|rslave|slave].
    #[arg(short, long = "volume")]
    volume: Vec<String>,
    /// Mount: type=bind|volume|tmpfs,source=…,target=…[,readonly][,bind-propagation=…]
    /// [,volume-nocopy][,volume-opt=K=V][,tmpfs-size=…][,tmpfs-mode=…].
    #[arg(long)]
    mount: Vec<String>,
    /// Mount a tmpfs: PATH[:OPTIONS].
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    tty: bool,
    /// Keep stdin open.
    #[arg(short, long)]
    interactive: bool,
    /// missing (pull when not in the store) or never.
    #[arg(long, default_value = "missing")]
    pull: String,
    /// Run this platform's image (os/arch[/variant]) of a multi-platform image.
    #[arg(long)]
    platform: Option<String>,
    #[command(flatten)]
    host: super::run_host::HostFlags,
    /// Image to run.
    image: String,
    /// Command and arguments (replace the image's CMD).
    command: Vec<String>,
}

/// `-e KEY` and env-file lines without '=' take the value from our environment.
fn env_entries(a: &Args) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let pass = |k: &str| std::env::var(k).ok().map(|v| format!("{k}={v}"));
    for f in &a.env_file {
        out.extend(wharf_pod::hostconfig::read_env_file(f)?);
    }
    for e in &a.env {
        if e.contains('=') {
            out.push(e.clone());
        } else if let Some(e) = pass(e) {
            out.push(e);
        }
    }
    Ok(out)
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<ExitCode> {
    let detach = a.detach;
    let (opts, store) = match options(a).and_then(|o| Ok((o, g.store()?))) {
        Ok(v) => v,
        Err(e) => return Ok(refused(&e)),
    };
    if detach {
        return match wharf_pod::run::run_detached(&store, &g.run_root, &opts) {
            Ok(id) => {
                crate::outln!("{id}")?;
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => Ok(failed(&e)),
        };
    }
    match wharf_pod::run_foreground(&store, &g.run_root, &opts) {
        Ok(code) => Ok(ExitCode::from(code.clamp(0, 255) as u8)),
        Err(e) => Ok(failed(&e)),
    }
}

/// A flag wharf cannot use: Docker's 125 too.
pub fn refused(e: &anyhow::Error) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "wharf: {e:#}");
    ExitCode::from(125)
}

/// Docker's convention: 125 when the container could not be run at all,
/// 126 when its command cannot be executed, 127 when it is not found.
pub fn failed(e: &wharf_pod::Error) -> ExitCode {
    let msg = e.to_string();
    let _ = writeln!(std::io::stderr(), "wharf: {msg}");
    let exec = msg.contains("exec");
    if exec && (msg.contains("not found") || msg.contains("No such file or directory")) {
        ExitCode::from(127)
    } else if exec && msg.contains("ermission denied") || msg.contains("is not an executable file") {
        ExitCode::from(126)
    } else {
        ExitCode::from(125)
    }
}

/// The flags as the library's options.
pub fn options(a: Args) -> anyhow::Result<RunOptions> {
    // In a pod the pod owns the network: none given is none set; a new pod
    // (`--pod new:NAME`) gets the container's network, bridge by default.
    let default = if a.pod.as_deref().is_some_and(|p| !p.starts_with("new:")) { "" } else { "bridge" };
    let network = match a.network.as_deref().unwrap_or(default) {
        "" => NetworkMode::None,
        "none" => NetworkMode::None,
        "host" => NetworkMode::Host,
        other => match other.strip_prefix("container:") {
            Some(c) => NetworkMode::Container(c.to_string()),
            None => NetworkMode::Bridge(other.to_string()),
        },
    };
    let pull_missing = match a.pull.as_str() {
        "missing" => true,
        "never" => false,
        other => anyhow::bail!("--pull {other:?}: use missing or never"),
    };
    let opts = RunOptions {
        env: env_entries(&a)?,
        image: a.image,
        cmd: a.command,
        entrypoint: a.entrypoint,
        workdir: a.workdir,
        user: a.user,
        hostname: a.hostname,
        read_only: a.read_only,
        health: wharf_pod::HealthOptions {
            cmd: a.health_cmd,
            interval: a.health_interval,
            timeout: a.health_timeout,
            start_period: a.health_start_period,
            start_interval: a.health_start_interval,
            retries: a.health_retries,
            disable: a.no_healthcheck,
        },
        memory: a.memory,
        pids_limit: a.pids_limit,
        cpus: a.cpus,
        network,
        name: a.name,
        network_aliases: a.network_alias,
        add_hosts: a.add_host,
        dns: a.dns,
        dns_search: a.dns_search,
        dns_options: a.dns_option,
        publish: a.publish,
        publish_all: a.publish_all,
        volumes: a.volume,
        mounts: a.mount,
        tmpfs: a.tmpfs,
        rm: a.rm,
        tty: a.tty,
        interactive: a.interactive,
        pull_missing,
        platform: a.platform,
        restart: a.restart,
        log_opts: a.log_opt,
        runtime: None,
        stop_signal: a.stop_signal,
        stop_timeout: a.stop_timeout,
        labels: a.host.labels(a.label)?,
        annotations: a.annotation,
        host: a.host.to_host_config()?,
        pod: a.pod,
        kubelet: None,
        probes: Vec::new(),
        restart_backoff: None,
        notice: Some(|line| {
            let _ = writeln!(std::io::stderr(), "{line}");
        }),
    };
    Ok(opts)
}
