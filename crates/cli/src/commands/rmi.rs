use crate::Globals;
use std::process::ExitCode;
use wharf_image::Removed;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Remove an image named by ID even when several tags point at it.
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    images: Vec<String>,
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<ExitCode> {
    for r in g.store()?.remove_images(&a.images, a.force)? {
        match r {
            Removed::Untagged(n) => crate::outln!("Untagged: {n}")?,
            Removed::Deleted(id) => crate::outln!("Deleted: {id}")?,
        }
    }
    Ok(ExitCode::SUCCESS)
}
