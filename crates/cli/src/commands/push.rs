use super::registry_args::RegistryArgs;
use crate::Globals;
use std::path::PathBuf;
use std::process::ExitCode;
use wharf_registry::{PushOptions, Registry};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Local image to push (name or ID).
    source: String,
    /// Where to push it; the source's name when omitted.
    destination: Option<String>,
    /// Write the pushed manifest's digest to this file.
    #[arg(long)]
    digestfile: Option<PathBuf>,
    /// Blobs uploaded at once.
    #[arg(long, default_value_t = 3)]
    max_concurrent_uploads: usize,
    /// Print only the digest.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<ExitCode> {
    let store = g.store()?;
    let dest = wharf_image::Reference::parse(a.destination.as_deref().unwrap_or(&a.source))?;
    let mut opts = a.registry.options();
    opts.max_concurrent_uploads = a.max_concurrent_uploads;
    let reg = Registry::new(dest.domain(), opts)?;
    let popts = PushOptions { progress: crate::progress::reporter(a.quiet, false), digestfile: a.digestfile };
    if !a.quiet {
        eprintln!("The push refers to repository [{}]", dest.repository());
    }
    let pushed = wharf_registry::block_on(reg.push(&store, &a.source, &dest, &popts))?;
    if a.quiet {
        crate::outln!("{}", pushed.digest)?;
    } else {
        crate::outln!("{}: digest: {} size: {}", dest.tag().unwrap_or("latest"), pushed.digest, pushed.size)?;
    }
    Ok(ExitCode::SUCCESS)
}
