//! Where a built image goes besides the store: `-o type=oci|docker,dest=FILE`
//! (archives `docker load` and skopeo read) and `-o type=local,dest=DIR`
//! (the final filesystem).

use super::error::{BuildError, BuildResult};
use std::path::{Path, PathBuf};
use wharf_image::{ArchiveFormat, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Archive { format: ArchiveFormat, dest: PathBuf },
    Local { dest: PathBuf },
}

impl Output {
    /// Parses `type=oci,dest=FILE` and its kin, as `docker buildx build -o`.
    pub fn parse(s: &str) -> BuildResult<Output> {
        let mut kind = None;
        let mut dest = None;
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("type", t)) => kind = Some(t.to_string()),
                Some(("dest", d)) => dest = Some(PathBuf::from(d)),
                _ => return Err(BuildError::Invalid(format!("-o {s:?}: use type=oci|docker|local,dest=PATH"))),
            }
        }
        let dest = dest.ok_or_else(|| BuildError::Invalid(format!("-o {s:?}: dest= is required")))?;
        match kind.as_deref() {
            Some("oci") => Ok(Output::Archive { format: ArchiveFormat::Oci, dest }),
            Some("docker") => Ok(Output::Archive { format: ArchiveFormat::Docker, dest }),
            Some("local") => Ok(Output::Local { dest }),
            other => Err(BuildError::Invalid(format!("-o {s:?}: unknown type {other:?} (oci, docker or local)"))),
        }
    }

    /// Writes image `name` (a tag or an ID) of `store` out.
    pub fn write(&self, store: &Store, name: &str, work: &Path) -> BuildResult<()> {
        match self {
            Output::Archive { format, dest } => {
                let tmp = dest.with_extension(format!("tmp{}", std::process::id()));
                let f =
                    std::fs::File::create(&tmp).map_err(|e| BuildError::io(format!("create {}", tmp.display()), e))?;
                let res = store.save(&[name.to_string()], *format, std::io::BufWriter::new(f));
                match res
                    .and_then(|()| std::fs::rename(&tmp, dest).map_err(|e| wharf_image::Error::from_io("rename", e)))
                {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        let _ = std::fs::remove_file(&tmp);
                        Err(e.into())
                    }
                }
            }
            Output::Local { dest } => {
                let img = store.resolve(name)?;
                let dir = work.join(format!("export-{}", super::unique()));
                let rootfs = store.mount_rootfs(&img, &dir)?;
                std::fs::create_dir_all(dest).map_err(|e| BuildError::io(format!("create {}", dest.display()), e))?;
                // cp -a keeps owners, modes, links and xattrs exactly.
                let out = std::process::Command::new("cp").arg("-a").arg(rootfs.merged.join(".")).arg(dest).output();
                let _ = wharf_image::Rootfs::remove(&dir);
                match out {
                    Ok(o) if o.status.success() => Ok(()),
                    Ok(o) => Err(BuildError::Invalid(format!(
                        "copy to {}: {}",
                        dest.display(),
                        String::from_utf8_lossy(&o.stderr).trim()
                    ))),
                    Err(e) => Err(BuildError::io("run cp", e)),
                }
            }
        }
    }
}
