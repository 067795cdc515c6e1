//! `wharf network create|ls|inspect|rm|prune|connect|disconnect`.

use crate::output;
use crate::Globals;
use std::process::ExitCode;
use wharf_pod::network::{self, CreateOptions, Networks};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Create a network (a bridge with its own subnet).
    Create(CreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show networks' details as JSON.
    Inspect(NamesArgs),
    /// Remove networks no container uses (the default one too: it is made again on use).
    #[command(alias = "remove")]
    Rm(NamesArgs),
    /// Remove every user network no container uses, and what killed `wharf` processes left.
    Prune(PruneArgs),
    /// Connect a running container to a network (one more interface, eth1, eth2 …).
    Connect(ConnectArgs),
    /// Disconnect a running container from a network.
    Disconnect(DisconnectArgs),
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Subnet in CIDR notation (default: a free /24 of 10.90.0.0/16).
    #[arg(long)]
    subnet: Option<String>,
    /// Gateway (default: the subnet's first address).
    #[arg(long)]
    gateway: Option<String>,
    /// No access to the outside: no masquerade, no default route.
    #[arg(long)]
    internal: bool,
    /// Upstream DNS server for names the network's DNS does not know (default: the host's).
    #[arg(long)]
    dns: Vec<String>,
    /// Driver: only bridge.
    #[arg(short, long, default_value = "bridge")]
    driver: String,
    name: String,
}

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Only show network IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Output format: table or json.
    #[arg(long, default_value = "table")]
    format: String,
}

#[derive(clap::Args, Debug)]
pub struct NamesArgs {
    #[arg(required = true)]
    names: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Do not ask (wharf never asks).
    #[arg(short, long)]
    force: bool,
}

#[derive(clap::Args, Debug)]
pub struct ConnectArgs {
    /// Another name for the container on this network.
    #[arg(long)]
    alias: Vec<String>,
    /// The container's IPv4 address on this network (default: the next free one).
    #[arg(long)]
    ip: Option<std::net::Ipv4Addr>,
    network: String,
    /// The container's name, ID or ID prefix.
    container: String,
}

#[derive(clap::Args, Debug)]
pub struct DisconnectArgs {
    /// Disconnect even if the network itself is gone.
    #[arg(short, long)]
    force: bool,
    network: String,
    /// The container's name, ID or ID prefix.
    container: String,
}

/// Errors exit 125, as podman's (and `docker run`'s).
pub fn run(g: &Globals, c: Command) -> anyhow::Result<ExitCode> {
    let nets = Networks::new(&g.root, &g.run_root);
    match dispatch(g, &nets, c) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("wharf: {e:#}");
            Ok(ExitCode::from(125))
        }
    }
}

fn dispatch(g: &Globals, nets: &Networks, c: Command) -> anyhow::Result<ExitCode> {
    match c {
        Command::Create(a) => {
            let o = CreateOptions {
                subnet: a.subnet,
                gateway: a.gateway,
                internal: a.internal,
                dns: a.dns,
                driver: Some(a.driver),
            };
            crate::outln!("{}", nets.create(&a.name, &o)?.id)?;
        }
        Command::Ls(a) => ls(nets, &a)?,
        Command::Inspect(a) => {
            let mut out = Vec::new();
            for n in &a.names {
                let net = nets.get(n)?;
                out.push(nets.inspect(&net));
            }
            crate::outln!("{}", serde_json::to_string_pretty(&out)?)?;
        }
        Command::Rm(a) => {
            let mut failed = None;
            for n in &a.names {
                match nets.remove(n) {
                    Ok(net) => crate::outln!("{}", net.name)?,
                    Err(e) => {
                        eprintln!("wharf: {e}");
                        failed = Some(ExitCode::from(125));
                    }
                }
            }
            return Ok(failed.unwrap_or(ExitCode::SUCCESS));
        }
        Command::Prune(a) => {
            let _ = a.force;
            let removed = nets.prune()?;
            if !removed.is_empty() {
                crate::outln!("Deleted Networks:")?;
                for n in removed {
                    crate::outln!("{n}")?;
                }
            }
        }
        Command::Connect(a) => {
            let id = container_id(g, &a.container)?;
            network::connect(nets, &id, &a.network, &a.alias, a.ip)?;
        }
        Command::Disconnect(a) => {
            let id = container_id(g, &a.container)?;
            network::disconnect(nets, &id, &a.network, a.force)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A container by name or ID (prefix) from its record, else from the
/// network attachments.
fn container_id(g: &Globals, name: &str) -> anyhow::Result<String> {
    match wharf_pod::Containers::new(&g.root, &g.run_root).get(name) {
        Ok(c) => Ok(c.id().to_string()),
        Err(_) => Ok(network::find_attached(&g.run_root, name)?),
    }
}

fn ls(nets: &Networks, a: &LsArgs) -> anyhow::Result<()> {
    let list = nets.list()?;
    match a.format.as_str() {
        "json" => crate::outln!("{}", serde_json::to_string_pretty(&list)?)?,
        "table" if a.quiet => {
            for n in &list {
                crate::outln!("{}", output::short_id(&n.id))?;
            }
        }
        "table" => {
            let mut rows: Vec<Vec<String>> =
                vec![["NETWORK ID", "NAME", "DRIVER", "SUBNET", "INTERNAL"].into_iter().map(String::from).collect()];
            for n in &list {
                rows.push(vec![
                    output::short_id(&n.id),
                    n.name.clone(),
                    n.driver.clone(),
                    n.subnet.clone(),
                    n.internal.to_string(),
                ]);
            }
            output::table(&rows)?;
        }
        other => anyhow::bail!("unknown --format {other:?}: use table or json"),
    }
    Ok(())
}
