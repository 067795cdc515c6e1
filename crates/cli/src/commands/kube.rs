//! `wharf kube play|down|generate`: Kubernetes manifests run locally, as
//! `podman kube play` does (the work is `wharf_pod::kube`).

use crate::Globals;
use std::path::PathBuf;
use std::process::ExitCode;
use wharf_pod::kube::{Kube, PlayOptions};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Create pods (and their ConfigMaps, Secrets, claims) from Kubernetes YAML
    /// (Pod, Deployment, ConfigMap, Secret, PersistentVolumeClaim) and start them.
    Play(PlayArgs),
    /// Remove the pods a `kube play` of the same files made (claims' volumes with --force).
    Down(DownArgs),
    /// Write a Pod manifest for a pod that `kube play` accepts back.
    Generate(GenerateArgs),
}

#[derive(clap::Args, Debug)]
pub struct PlayArgs {
    /// Files with ConfigMaps or Secrets the pods use.
    #[arg(long)]
    configmap: Vec<PathBuf>,
    /// Network of the pods (default: the default network, bridge).
    #[arg(long)]
    network: Option<String>,
    /// Remove existing pods (and a Deployment's pods) of the same names first.
    #[arg(long)]
    replace: bool,
    /// Start the pods' containers (false: create them only).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    start: bool,
    /// Seconds a failing init container is retried (with the kubelet's back-off) before play gives up.
    #[arg(long, default_value_t = 120)]
    init_timeout: u64,
    /// YAML files (`-` for stdin), several documents each.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct DownArgs {
    /// Also remove the named volumes play made for PersistentVolumeClaims.
    #[arg(long)]
    force: bool,
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Write to FILE rather than stdout.
    #[arg(short, long)]
    filename: Option<PathBuf>,
    pod: String,
}

fn read(files: &[PathBuf]) -> anyhow::Result<Vec<(String, String)>> {
    files
        .iter()
        .map(|f| {
            let text = if f.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("read {}: {e}", f.display()))?
            };
            Ok((f.display().to_string(), text))
        })
        .collect()
}

fn notice(msg: &str) {
    eprintln!("{msg}");
}

pub fn run(g: &Globals, c: Command) -> anyhow::Result<ExitCode> {
    let store = g.store()?;
    let kube = Kube::new(&store, &g.run_root);
    match c {
        Command::Play(a) => {
            let o = PlayOptions {
                network: a.network,
                replace: a.replace,
                start: a.start,
                notice: Some(notice),
                init_timeout: Some(std::time::Duration::from_secs(a.init_timeout)),
            };
            let pods = kube.play_files(&read(&a.files)?, &read(&a.configmap)?, &o)?;
            crate::outln!("Pods:")?;
            for p in pods {
                crate::outln!("{p}")?;
            }
        }
        Command::Down(a) => {
            let pods = kube.down_files(&read(&a.files)?, a.force)?;
            crate::outln!("Pods stopped and removed:")?;
            for p in pods {
                crate::outln!("{p}")?;
            }
        }
        Command::Generate(a) => {
            let yaml = kube.generate(&a.pod)?;
            match a.filename {
                Some(f) => std::fs::write(&f, yaml).map_err(|e| anyhow::anyhow!("write {}: {e}", f.display()))?,
                None => crate::output::write_out(format_args!("{yaml}"))?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
