//! `wharf volume create|ls|inspect|rm|prune`, as Docker's.

use crate::{output, Globals};
use std::collections::BTreeMap;
use std::process::ExitCode;
use wharf_pod::volume::{CreateVolume, ListFilter, Volumes};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Create a volume (prints its name).
    Create(CreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show volumes' details as JSON.
    Inspect(InspectArgs),
    /// Remove volumes (not those in use).
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused anonymous volumes (every unused one with -a).
    Prune(PruneArgs),
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Volume driver (only local).
    #[arg(short, long, default_value = "local")]
    driver: String,
    /// Driver option KEY=VALUE (local: type, device, o).
    #[arg(short = 'o', long = "opt")]
    opt: Vec<String>,
    /// Label KEY=VALUE.
    #[arg(long)]
    label: Vec<String>,
    /// Volume name (a random one if omitted).
    name: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Only show names.
    #[arg(short, long)]
    quiet: bool,
    /// dangling=true|false, name=…, label=KEY[=VALUE].
    #[arg(short, long)]
    filter: Vec<String>,
    /// Output format: table or json (one object per line).
    #[arg(long, default_value = "table")]
    format: String,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    #[arg(required = true)]
    names: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Do not complain about volumes that do not exist.
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    names: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Remove every unused volume, not only anonymous ones.
    #[arg(short, long)]
    all: bool,
    /// Do not ask for confirmation (there is none to ask; accepted for Docker compatibility).
    #[arg(short, long)]
    force: bool,
}

fn key_values(flag: &str, items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|i| match i.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ if flag == "--label" && !i.is_empty() => Ok((i.clone(), String::new())),
            _ => anyhow::bail!("invalid {flag} {i:?}: use KEY=VALUE"),
        })
        .collect()
}

pub fn run(g: &Globals, c: Command) -> anyhow::Result<ExitCode> {
    let vols = Volumes::new(&g.root);
    match c {
        Command::Create(a) => {
            let req = CreateVolume {
                name: a.name,
                driver: Some(a.driver),
                options: key_values("--opt", &a.opt)?,
                labels: key_values("--label", &a.label)?,
            };
            crate::outln!("{}", vols.create(&req)?.name)?;
        }
        Command::Ls(a) => ls(&vols, &a)?,
        Command::Inspect(a) => {
            let mut out = Vec::new();
            let mut failed = false;
            for n in &a.names {
                match vols.get(n) {
                    Ok(v) => out.push(v.inspect_json()),
                    Err(e) => {
                        eprintln!("wharf: {e}");
                        failed = true;
                    }
                }
            }
            crate::outln!("{}", serde_json::to_string_pretty(&out)?)?;
            return Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS });
        }
        Command::Rm(a) => return rm(&vols, &a),
        Command::Prune(a) => {
            let r = vols.prune(a.all)?;
            if !r.removed.is_empty() {
                crate::outln!("Deleted Volumes:")?;
                for n in &r.removed {
                    crate::outln!("{n}")?;
                }
                crate::outln!()?;
            }
            crate::outln!("Total reclaimed space: {}", output::size(r.bytes))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ls(vols: &Volumes, a: &LsArgs) -> anyhow::Result<()> {
    let list = vols.list_filtered(&ListFilter::parse(&a.filter)?)?;
    match a.format.as_str() {
        _ if a.quiet => {
            for v in &list {
                crate::outln!("{}", v.name)?;
            }
        }
        "json" => {
            for v in &list {
                let labels: Vec<String> = v.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let j = serde_json::json!({
                    "Availability": "N/A", "Driver": v.driver, "Group": "N/A", "Labels": labels.join(","),
                    "Links": "N/A", "Mountpoint": v.mountpoint, "Name": v.name, "Scope": "local",
                    "Size": "N/A", "Status": "N/A",
                });
                crate::outln!("{j}")?;
            }
        }
        "table" => {
            let mut rows = vec![vec!["DRIVER".to_string(), "VOLUME NAME".to_string()]];
            rows.extend(list.iter().map(|v| vec![v.driver.clone(), v.name.clone()]));
            output::table(&rows)?;
        }
        other => anyhow::bail!("unknown --format {other:?}: use table or json"),
    }
    Ok(())
}

/// Docker removes what it can and reports the rest; a volume in use exits
/// 125 (the engine's "cannot do it" code), any other failure 1.
fn rm(vols: &Volumes, a: &RmArgs) -> anyhow::Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    for n in &a.names {
        match vols.remove(n) {
            Ok(()) => crate::outln!("{n}")?,
            Err(wharf_pod::Error::NoSuchVolume(_)) if a.force => {}
            Err(e) => {
                eprintln!("wharf: {e}");
                code = if matches!(e, wharf_pod::Error::VolumeInUse { .. }) {
                    ExitCode::from(125)
                } else if code == ExitCode::SUCCESS {
                    ExitCode::FAILURE
                } else {
                    code
                };
            }
        }
    }
    Ok(code)
}
