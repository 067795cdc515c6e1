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

/// What killed `wharf run`s and builds left (containers, mounts, runtime
/// state): removed first, since their mounts pin layers.
pub struct Leftovers {
    pub containers: usize,
    pub builds: usize,
}

/// Removes what killed commands left; errors are reported after the rest is done.
pub fn remove_leftovers(g: &Globals) -> anyhow::Result<Leftovers> {
    let containers = wharf_pod::leftover::remove_leftovers(&g.root, &g.run_root);
    let builds = wharf_builder::build::remove_leftovers(&g.run_root);
    Ok(Leftovers { containers: containers?, builds: builds? })
}

pub fn print_leftovers(l: &Leftovers) -> anyhow::Result<()> {
    if l.containers > 0 {
        crate::outln!("Deleted {} container(s) whose wharf run was killed", l.containers)?;
    }
    if l.builds > 0 {
        crate::outln!("Deleted what {} killed build(s) left", l.builds)?;
    }
    Ok(())
}

/// Image prune itself, after the leftovers.
pub fn prune_images(g: &Globals, all: bool) -> anyhow::Result<wharf_image::GcReport> {
    let store = g.store()?;
    Ok(if all { store.prune_unused(&wharf_pod::leftover::images_in_use(&g.root))? } else { store.prune()? })
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
    let l = remove_leftovers(g)?;
    print_leftovers(&l)?;
    let r = prune_images(g, a.all)?;
    print_images(&r, a.all)?;
    crate::outln!("Total reclaimed space: {}", output::size(r.bytes))?;
    Ok(ExitCode::SUCCESS)
}
