//! `wharf system prune`: what killed commands left (containers, mounts,
//! runtime state of `run` and `build`), dangling (with `-a`: unused) images,
//! unreferenced blobs and layers, temp files, and the build cache.

use crate::{output, Globals};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Remove every image no container uses, not just dangling ones.
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
    /// Prune anonymous volumes too.
    #[arg(long)]
    volumes: bool,
}

const WARNING: &str = "WARNING! This will remove:
  - all stopped containers, and what killed commands left
  - all networks not used by at least one container
  - all dangling images
  - unused build cache";

pub fn run(g: &Globals, a: Args) -> anyhow::Result<ExitCode> {
    if !a.force && !confirmed(a.all, a.volumes)? {
        eprintln!("wharf: nothing removed (confirm with y, or pass -f)");
        return Ok(ExitCode::FAILURE);
    }
    // Stopped containers first (Docker's order): their images become unused.
    let ctrs = wharf_pod::Containers::new(&g.root, &g.run_root).prune()?;
    if !ctrs.is_empty() {
        crate::outln!("Deleted Containers:\n{}\n", ctrs.join("\n"))?;
    }
    let r = super::prune::prune(g, a.all)?.images;
    super::prune::print_images(&r, a.all)?;
    let nets = wharf_pod::network::Networks::new(&g.root, &g.run_root).prune()?;
    if !nets.is_empty() {
        crate::outln!("Deleted Networks:\n{}", nets.join("\n"))?;
    }
    let mut bytes = r.bytes;
    if a.volumes {
        let v = wharf_pod::volume::Volumes::new(&g.root).prune(false)?;
        if !v.removed.is_empty() {
            crate::outln!("Deleted Volumes:\n{}", v.removed.join("\n"))?;
        }
        bytes += v.bytes;
    }
    let n = wharf_builder::build::BuildCache::prune(&g.root)?;
    crate::outln!("Deleted {n} build cache entr{}", if n == 1 { "y" } else { "ies" })?;
    crate::outln!("Total reclaimed space: {}", output::size(bytes))?;
    Ok(ExitCode::SUCCESS)
}

/// Docker's prompt: on stdin, whatever it is (`echo y | wharf system prune`
/// works); end of input or anything but y/yes is a no.
fn confirmed(all: bool, volumes: bool) -> anyhow::Result<bool> {
    let mut warning =
        if all { WARNING.replace("all dangling images", "all images without a container") } else { WARNING.into() };
    if volumes {
        warning = warning.replace(
            "  - all dangling",
            "  - all anonymous volumes not used by at least one container\n  - all dangling",
        );
    }
    eprint!("{warning}\n\nAre you sure you want to continue? [y/N] ");
    std::io::stderr().flush()?;
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        tracing::debug!("stdin is not a terminal: reading the answer from it anyway, as docker does");
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    if line.is_empty() {
        eprintln!();
    }
    Ok(matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}
