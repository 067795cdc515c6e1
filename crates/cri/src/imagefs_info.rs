//! ImageFsInfo: bytes and inodes used by the image store (blobs and
//! unpacked layers) and by containers' writable layers, counted as `du -x`
//! does (allocated blocks, a hard-linked inode once, not crossing into
//! other filesystems such as a running container's overlay mount).

use k8s_cri::v1 as cri;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub bytes: u64,
    pub inodes: u64,
}

/// Disk usage of `dirs` (missing ones count nothing), on `root`'s filesystem only.
pub(crate) fn usage(root: &Path, dirs: &[PathBuf]) -> Usage {
    let dev = std::fs::symlink_metadata(root).map(|m| m.dev()).unwrap_or(0);
    let mut seen = HashSet::new();
    let mut u = Usage::default();
    let mut stack: Vec<PathBuf> = dirs.to_vec();
    while let Some(p) = stack.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
        if m.dev() != dev {
            continue;
        }
        if seen.insert(m.ino()) {
            u.bytes += m.blocks() * 512;
            u.inodes += 1;
        }
        if m.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        }
    }
    u
}

fn fs_usage(mountpoint: &Path, u: Usage, timestamp: i64) -> cri::FilesystemUsage {
    cri::FilesystemUsage {
        timestamp,
        fs_id: Some(cri::FilesystemIdentifier { mountpoint: mountpoint.display().to_string() }),
        used_bytes: Some(cri::UInt64Value { value: u.bytes }),
        inodes_used: Some(cri::UInt64Value { value: u.inodes }),
    }
}

pub(crate) fn image_fs_info(root: &Path) -> cri::ImageFsInfoResponse {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let images = usage(root, &[root.join("blobs"), root.join("layers"), root.join("ingest")]);
    let containers = usage(root, &[root.join("containers")]);
    cri::ImageFsInfoResponse {
        image_filesystems: vec![fs_usage(root, images, now)],
        container_filesystems: vec![fs_usage(root, containers, now)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_blocks_and_inodes_once() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        std::fs::create_dir_all(a.join("sub")).unwrap();
        std::fs::write(a.join("sub/f"), vec![1u8; 64 * 1024]).unwrap();
        std::fs::hard_link(a.join("sub/f"), a.join("link")).unwrap();
        let u = usage(d.path(), &[a.clone(), d.path().join("missing")]);
        assert_eq!(u.inodes, 3, "a, a/sub, a/sub/f (its link counted once)");
        assert!(u.bytes >= 64 * 1024, "{u:?}");
    }
}
