//! `cp`: files between a container and the host, or a tar stream (`-`).

use crate::Globals;
use std::path::Path;
use std::process::ExitCode;
use wharf_pod::container::{split_container_arg, CopyOptions, HostEnd};
use wharf_pod::Containers;

#[derive(clap::Args, Debug)]
#[command(after_help = "SRC or DEST is CONTAINER:PATH, the other a host path or - (a tar stream on stdin/stdout).")]
pub struct Args {
    /// Archive mode: files copied in belong to the container's user.
    #[arg(short, long)]
    archive: bool,
    /// Follow a symlink that is SRC.
    #[arg(short = 'L', long)]
    follow_link: bool,
    src: String,
    dest: String,
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<ExitCode> {
    let cs = Containers::new(&g.root, &g.run_root);
    let store = g.store()?;
    let o = CopyOptions { archive: a.archive, follow_link: a.follow_link };
    match (split_container_arg(&a.src), split_container_arg(&a.dest)) {
        (Some(_), Some(_)) => anyhow::bail!("copying between containers is not supported"),
        (None, None) => anyhow::bail!("must specify at least one container source"),
        (Some((name, path)), None) => {
            let c = cs.get(name)?;
            if a.dest == "-" {
                let mut out = crate::output::Stdout::lock();
                cs.copy_from(&store, &c, path, HostEnd::Writer(&mut out), o)?;
            } else {
                cs.copy_from(&store, &c, path, HostEnd::Path(Path::new(&a.dest)), o)?;
            }
        }
        (None, Some((name, path))) => {
            let c = cs.get(name)?;
            if a.src == "-" {
                let mut stdin = std::io::stdin().lock();
                cs.copy_to(&store, &c, HostEnd::Reader(&mut stdin), path, o)?;
            } else {
                cs.copy_to(&store, &c, HostEnd::Path(Path::new(&a.src)), path, o)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
