use crate::Globals;
use anyhow::Context;
use std::process::ExitCode;
use wharf_image::{ImportOptions, Reference};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Root filesystem tarball (tar, tar.gz or tar.zst), or - for stdin.
    file: String,
    /// Name for the new image.
    reference: Option<String>,
    /// Dockerfile instruction to apply: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL.
    #[arg(short = 'c', long = "change")]
    changes: Vec<String>,
    /// Commit message for the image's history.
    #[arg(short, long)]
    message: Option<String>,
    /// The image's platform, os/arch[/variant] (default: the host's).
    #[arg(long)]
    platform: Option<String>,
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<ExitCode> {
    let reference = a.reference.as_deref().map(Reference::parse).transpose()?;
    let platform = a.platform.as_deref().map(wharf_image::Platform::parse).transpose()?;
    let opts = ImportOptions { reference, changes: a.changes, message: a.message, platform };
    let store = g.store()?;
    let img = if a.file == "-" {
        store.import(&mut std::io::stdin().lock(), &opts)?
    } else {
        let mut f = std::fs::File::open(&a.file).with_context(|| format!("open {}", a.file))?;
        store.import(&mut f, &opts)?
    };
    crate::outln!("{}", img.id())?;
    Ok(ExitCode::SUCCESS)
}
