//! Image archives: `wharf save` and `wharf load`, in the OCI layout format
//! and in the format `docker save` writes and `docker load` reads.

mod load;
mod save;

pub use load::LoadedImage;

/// Which archive format `save` writes; `load` tells them apart by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// A tar of an OCI image layout (`oci-layout`, `index.json`, `blobs/`).
    Oci,
    /// `manifest.json` + config + uncompressed layer tars, as `docker save` writes.
    Docker,
}

/// The annotation containerd and Docker use for the full image name.
pub(crate) const CONTAINERD_NAME: &str = "io.containerd.image.name";

fn tar_header(size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}
