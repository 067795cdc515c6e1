//! Where a built image goes besides the store: `-o type=oci|docker,dest=FILE`
//! (archives `docker load` and skopeo read) and `-o type=local,dest=DIR`
//! (the final filesystem), `-o type=image,name=N[,push=true]` and
//! `-o type=registry,name=N` (more names for the store, pushed or not).

use super::error::{BuildError, BuildResult};
use std::path::{Path, PathBuf};
use wharf_image::{ArchiveFormat, Image, Platform, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Archive {
        format: ArchiveFormat,
        dest: PathBuf,
    },
    Local {
        dest: PathBuf,
    },
    /// Names the image also gets in the store; `push`: pushed there too.
    Image {
        names: Vec<String>,
        push: bool,
    },
}

impl Output {
    /// Parses `type=oci,dest=FILE` and its kin, as `docker buildx build -o`.
    pub fn parse(s: &str) -> BuildResult<Output> {
        let mut kind = None;
        let mut dest = None;
        let mut names = Vec::new();
        let mut push = None;
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("type", t)) => kind = Some(t.to_string()),
                Some(("dest", d)) => dest = Some(PathBuf::from(d)),
                Some(("name", n)) => names.push(n.to_string()),
                Some(("push", p)) => push = Some(parse_bool(s, p)?),
                // A name holding a comma (buildx's `name=a,b`): the rest are names too.
                None if !part.is_empty() && !names.is_empty() => names.push(part.to_string()),
                _ => {
                    return Err(BuildError::Invalid(format!(
                        "-o {s:?}: use type=oci|docker|local,dest=PATH or type=image|registry,name=NAME[,push=true]"
                    )))
                }
            }
        }
        if let Some(k @ ("image" | "registry")) = kind.as_deref() {
            if names.is_empty() {
                return Err(BuildError::Invalid(format!("-o {s:?}: name= is required")));
            }
            return Ok(Output::Image { names, push: push.unwrap_or(k == "registry") });
        }
        let dest = dest.ok_or_else(|| BuildError::Invalid(format!("-o {s:?}: dest= is required")))?;
        match kind.as_deref() {
            Some("oci") => Ok(Output::Archive { format: ArchiveFormat::Oci, dest }),
            Some("docker") => Ok(Output::Archive { format: ArchiveFormat::Docker, dest }),
            Some("local") => Ok(Output::Local { dest }),
            other => Err(BuildError::Invalid(format!(
                "-o {s:?}: unknown type {other:?} (oci, docker, local, image or registry)"
            ))),
        }
    }

    /// Writes image `name` (a tag or an ID) of `store` out; `platforms`:
    /// what the build was for (several: `name` is their index).
    pub fn write(&self, store: &Store, name: &str, platforms: &[Platform], work: &Path) -> BuildResult<()> {
        match self {
            // The caller tags (and pushes) these names with the build's own.
            Output::Image { .. } => Ok(()),
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
            Output::Local { dest } if platforms.len() > 1 => {
                // As buildx: one directory per platform, `linux_arm_v7`.
                for p in platforms {
                    let img = store.resolve_for(name, p)?;
                    export_rootfs(store, &img, work, &dest.join(p.to_string().replace('/', "_")))?;
                }
                Ok(())
            }
            Output::Local { dest } => export_rootfs(store, &store.resolve(name)?, work, dest),
        }
    }
}

/// The image's final filesystem copied to `dest`.
fn export_rootfs(store: &Store, img: &Image, work: &Path, dest: &Path) -> BuildResult<()> {
    let dir = work.join(format!("export-{}", super::unique()));
    let rootfs = store.mount_rootfs(img, &dir)?;
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

fn parse_bool(s: &str, v: &str) -> BuildResult<bool> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(BuildError::Invalid(format!("-o {s:?}: push= takes true or false"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_and_registry_outputs() {
        // Were refused as unknown types.
        let o = Output::parse("type=image,name=reg.example/a:1,push=true").unwrap();
        assert_eq!(o, Output::Image { names: vec!["reg.example/a:1".into()], push: true });
        let o = Output::parse("type=registry,name=r/a:1,r/a:2").unwrap();
        assert_eq!(o, Output::Image { names: vec!["r/a:1".into(), "r/a:2".into()], push: true });
        let o = Output::parse("type=image,name=a").unwrap();
        assert_eq!(o, Output::Image { names: vec!["a".into()], push: false });
        assert!(Output::parse("type=image").is_err());
        assert!(Output::parse("type=image,name=a,push=maybe").is_err());
    }
}
