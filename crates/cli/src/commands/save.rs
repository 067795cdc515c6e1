use crate::Globals;
use anyhow::Context;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use wharf_image::ArchiveFormat;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// oci (OCI image layout) or docker-archive (what `docker load` reads).
    #[arg(long, default_value = "oci")]
    format: String,
    #[arg(required = true)]
    images: Vec<String>,
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<ExitCode> {
    let format = match a.format.as_str() {
        "oci" | "oci-archive" => ArchiveFormat::Oci,
        "docker-archive" | "docker" => ArchiveFormat::Docker,
        other => anyhow::bail!("unknown --format {other:?}: use oci or docker-archive"),
    };
    let store = g.store()?;
    match a.output {
        Some(path) => {
            // Written beside the target and renamed, so a failed save leaves no half archive.
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
            let mut tmp = tempfile::NamedTempFile::new_in(dir)
                .with_context(|| format!("create temp file in {}", dir.display()))?;
            store.save(&a.images, format, std::io::BufWriter::new(tmp.as_file_mut()))?;
            tmp.as_file().sync_all()?;
            tmp.persist(&path).with_context(|| format!("write {}", path.display()))?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                anyhow::bail!("refusing to write an archive to a terminal: use -o FILE or redirect stdout");
            }
            let mut out = crate::output::Stdout::lock();
            store.save(&a.images, format, &mut out)?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
