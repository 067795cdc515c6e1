use crate::Globals;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Existing image name or ID.
    source: String,
    /// New name.
    target: String,
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<ExitCode> {
    g.store()?.tag(&a.source, &a.target)?;
    Ok(ExitCode::SUCCESS)
}
