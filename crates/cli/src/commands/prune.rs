use crate::{output, Globals};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Do not ask for confirmation (there is none to ask; accepted for Docker compatibility).
    #[arg(short, long)]
    force: bool,
}

pub fn run(g: &Globals, _a: Args) -> anyhow::Result<ExitCode> {
    let r = g.store()?.prune()?;
    crate::outln!(
        "Deleted {} dangling image(s), {} blob(s), {} layer snapshot(s), {} temp file(s)",
        r.images,
        r.blobs,
        r.snapshots,
        r.temp_files
    )?;
    crate::outln!("Total reclaimed space: {}", output::size(r.bytes))?;
    Ok(ExitCode::SUCCESS)
}
