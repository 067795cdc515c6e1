use crate::Globals;
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use wharf_cri::{config, server, Config, ServeOptions};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Socket to serve on: unix:///PATH (a stale socket left by a killed daemon is replaced).
    #[arg(long, default_value = server::DEFAULT_LISTEN)]
    listen: String,
    /// Configuration file (TOML; see docs/cri.md). Default: /etc/wharf/cri.toml if it exists.
    #[arg(long)]
    config: Option<PathBuf>,
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<ExitCode> {
    let config = match &a.config {
        Some(p) => Config::load(p, true)?,
        None => Config::load(config::DEFAULT_PATH.as_ref(), false)?,
    };
    wharf_cri::serve(ServeOptions {
        listen: a.listen,
        config,
        root: g.root.clone(),
        run_root: g.run_root.clone(),
        wharf_runtime: server::wharf_runtime_binary(),
    })
    .context("wharf cri")?;
    Ok(ExitCode::SUCCESS)
}
