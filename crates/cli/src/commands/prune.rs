use crate::{output, Globals};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Remove every image no container uses, not just dangling ones.
    #[arg(short, long)]
    all: bool,
    /// Do not ask for confirmation (there is none to ask; accepted for Docker compatibility).
    #[arg(short, long)]
    force: bool,
}

/// What killed `wharf run`s and builds left (their mounts pin layers),
/// then images; errors are reported after the rest is done.
pub fn prune(g: &Globals, all: bool) -> anyhow::Result<wharf_pod::prune::PruneReport> {
    let builds = wharf_builder::build::remove_leftovers(&g.root, &g.run_root);
    let pruned = wharf_pod::prune::prune_images(&g.store()?, &g.run_root, all);
    let builds = builds?;
    if builds > 0 {
        crate::outln!("Deleted what {builds} killed build(s) left")?;
    }
    let pruned = pruned?;
    if pruned.containers > 0 {
        crate::outln!("Deleted {} container(s) whose wharf run was killed", pruned.containers)?;
    }
    Ok(pruned)
}

pub fn print_images(r: &wharf_image::GcReport, all: bool) -> anyhow::Result<()> {
    crate::outln!(
        "Deleted {} {}image(s), {} blob(s), {} layer snapshot(s), {} temp file(s)",
        r.images,
        if all { "" } else { "dangling " },
        r.blobs,
        r.snapshots,
        r.temp_files
    )
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<ExitCode> {
    let r = prune(g, a.all)?.images;
    print_images(&r, a.all)?;
    crate::outln!("Total reclaimed space: {}", output::size(r.bytes))?;
    Ok(ExitCode::SUCCESS)
}
