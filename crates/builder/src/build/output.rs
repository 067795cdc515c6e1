//! Where a built image goes besides the store: `-o type=oci|docker,dest=FILE`
//! (archives `docker load` and skopeo read), `-o type=local,dest=DIR` and
//! `-o type=tar,dest=FILE` (the final filesystem, as a tree or a tar),
//! `-o type=image,name=N[,push=true]` and `-o type=registry,name=N` (more
//! names for the store, pushed or not).
//!
//! Attestations go as BuildKit's exporters put them: in the OCI archive's
//! index (attestation manifests); next to a local/tar filesystem as files
//! (`provenance.json`, `sbom.spdx.json`, about each file of the output); a
//! docker archive has no place for them, so that output is refused with
//! them, as buildx refuses it.

use super::error::{BuildError, BuildResult};
use std::path::{Path, PathBuf};
use wharf_image::{ArchiveFormat, Image, Platform, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Archive {
        format: ArchiveFormat,
        dest: PathBuf,
    },
    /// The filesystem: a directory (`type=local`) or a tar of it (`type=tar`).
    Local {
        dest: PathBuf,
        tar: bool,
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
            Some("local") => Ok(Output::Local { dest, tar: false }),
            Some("tar") if dest.as_os_str() == "-" => {
                Err(BuildError::Invalid(format!("-o {s:?}: the tar goes to a file: dest=FILE")))
            }
            Some("tar") => Ok(Output::Local { dest, tar: true }),
            other => Err(BuildError::Invalid(format!(
                "-o {s:?}: unknown type {other:?} (oci, docker, local, tar, image or registry)"
            ))),
        }
    }

    /// Refuses, before the build, an output that cannot hold what the build
    /// makes: a docker archive holds one image manifest, no index (neither
    /// several platforms nor attestations), as BuildKit's docker exporter.
    pub fn check(&self, opts: &super::BuildOptions) -> BuildResult<()> {
        if let Output::Archive { format: ArchiveFormat::Docker, .. } = self {
            if opts.attest.enabled() {
                return Err(BuildError::Invalid(
                    "-o type=docker: a docker archive has no place for attestations (--provenance, --sbom): \
                     use -o type=oci (buildx refuses this too)"
                        .into(),
                ));
            }
            if opts.platforms.len() > 1 {
                return Err(BuildError::Invalid(
                    "-o type=docker: a docker archive holds one platform's image, not an index: use -o type=oci".into(),
                ));
            }
        }
        Ok(())
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
            Output::Local { dest, tar: false } => export_tree(store, name, platforms, work, dest),
            Output::Local { dest, tar: true } => {
                let tree = work.join(format!("tar-{}", super::unique()));
                let res = export_tree(store, name, platforms, work, &tree).and_then(|()| pack(&tree, dest));
                let _ = wharf_image::Rootfs::remove(&tree);
                res
            }
        }
    }
}

/// The filesystem of each platform's image in `dest` (several: as buildx,
/// one directory per platform, `linux_arm_v7`), with its attestations as files.
fn export_tree(store: &Store, name: &str, platforms: &[Platform], work: &Path, dest: &Path) -> BuildResult<()> {
    if platforms.len() > 1 {
        for p in platforms {
            let img = store.resolve_for(name, p)?;
            let dir = dest.join(p.to_string().replace('/', "_"));
            export_rootfs(store, &img, work, &dir)?;
            crate::attest::write_beside(store, &img, &dir)?;
        }
        return Ok(());
    }
    let img = match platforms {
        [p] => store.resolve_for(name, p)?,
        _ => store.resolve(name)?,
    };
    export_rootfs(store, &img, work, dest)?;
    crate::attest::write_beside(store, &img, dest)
}

/// `dir`'s content as a tar at `dest` (written aside, then renamed).
fn pack(dir: &Path, dest: &Path) -> BuildResult<()> {
    let tmp = dest.with_extension(format!("tmp{}", std::process::id()));
    // The top entries by name, as BuildKit's tar names them (no `./`).
    let mut top: Vec<std::ffi::OsString> = std::fs::read_dir(dir)
        .map_err(|e| BuildError::io(format!("read {}", dir.display()), e))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    top.sort();
    if top.is_empty() {
        // An empty filesystem: an empty tar (tar(1) refuses to write one).
        return std::fs::write(dest, [0u8; 1024]).map_err(|e| BuildError::io(format!("write {}", dest.display()), e));
    }
    let out = std::process::Command::new("tar")
        .args(["--numeric-owner", "--xattrs", "-C"])
        .arg(dir)
        .arg("-cf")
        .arg(&tmp)
        .arg("--")
        .args(&top)
        .output();
    let res = match out {
        Ok(o) if o.status.success() => std::fs::rename(&tmp, dest).map_err(|e| BuildError::io("rename tar", e)),
        Ok(o) => {
            Err(BuildError::Invalid(format!("write {}: {}", dest.display(), String::from_utf8_lossy(&o.stderr).trim())))
        }
        Err(e) => Err(BuildError::io("run tar", e)),
    };
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
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
