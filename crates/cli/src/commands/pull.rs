use super::registry_args::RegistryArgs;
use crate::Globals;
use std::process::ExitCode;
use wharf_registry::{PullOptions, Registry};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Image to pull: NAME[:TAG] or NAME@DIGEST.
    image: String,
    /// Platform to pull from a multi-platform image, as os/arch[/variant].
    #[arg(long)]
    platform: Option<String>,
    /// Keep the whole index and every platform's image.
    #[arg(long)]
    all_platforms: bool,
    /// Blobs downloaded at once.
    #[arg(long, default_value_t = 3)]
    max_concurrent_downloads: usize,
    /// Print only the digest.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<ExitCode> {
    let store = g.store()?;
    let r = wharf_image::Reference::parse(&a.image)?;
    let mut opts = a.registry.options();
    opts.max_concurrent_downloads = a.max_concurrent_downloads;
    let reg = Registry::new(r.domain(), opts)?;
    let popts = PullOptions {
        platform: a.platform,
        all_platforms: a.all_platforms,
        keep_index: false,
        progress: crate::progress::reporter(a.quiet, true),
    };
    if !a.quiet {
        eprintln!("{}: Pulling from {}", r.tag().or(r.digest()).unwrap_or("latest"), r.path());
    }
    let pulled = wharf_registry::block_on(reg.pull(&store, &r, &popts))?;
    if a.quiet {
        crate::outln!("{}", pulled.remote_digest)?;
    } else {
        crate::outln!("Digest: {}", pulled.remote_digest)?;
        crate::outln!("{r}")?;
    }
    Ok(ExitCode::SUCCESS)
}
