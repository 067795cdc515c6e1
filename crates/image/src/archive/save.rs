use super::{tar_header, ArchiveFormat, CONTAINERD_NAME};
use crate::compression::{self, Compression};
use crate::digest::{self, Digest};
use crate::error::{Error, IoContext, Result};
use crate::images::{Image, REF_NAME};
use crate::layout::Store;
use crate::reference::Reference;
use oci_spec::image::Descriptor;
use serde_json::json;
use std::collections::HashSet;
use std::io::{self, Seek, Write};

/// One image to save and the name it goes under, if any.
struct Item {
    image: Image,
    /// The index entry: the image's own target, or its host manifest when the
    /// target is an index whose other platforms are not in the store.
    entry: Descriptor,
    name: Option<Reference>,
}

impl Store {
    /// Writes `names` to `out` as one archive.
    pub fn save(&self, names: &[String], format: ArchiveFormat, out: impl Write) -> Result<()> {
        let _content = self.content_lock()?;
        let mut items = Vec::new();
        for n in names {
            let image = self.resolve(n)?;
            let name = Reference::parse(n).ok().filter(|r| r.tag().is_some() && !is_id(n, &image));
            let entry = if self.complete(&image.target) { image.target.clone() } else { self.manifest_desc(&image)? };
            items.push(Item { image, entry, name });
        }
        let mut tar = tar::Builder::new(out);
        match format {
            ArchiveFormat::Oci => self.save_oci(&items, &mut tar)?,
            ArchiveFormat::Docker => self.save_docker(&items, &mut tar)?,
        }
        tar.into_inner().and_then(|mut w| w.flush()).map_err(|e| Error::other("write archive", e))?;
        Ok(())
    }

    /// True when every blob under `d` is in the store.
    fn complete(&self, d: &Descriptor) -> bool {
        self.blob_closure(d).is_ok()
    }

    /// `d` and every blob it references, in an order a reader can stream.
    fn blob_closure(&self, d: &Descriptor) -> Result<Vec<Descriptor>> {
        let mut out = Vec::new();
        let bytes = self.blobs().read(d.digest(), crate::layout::MAX_METADATA_BLOB)?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::malformed(d.digest().to_string(), e))?;
        if let Some(children) = v.get("manifests") {
            let children: Vec<Descriptor> =
                serde_json::from_value(children.clone()).map_err(|e| Error::malformed(d.digest().to_string(), e))?;
            for c in &children {
                out.extend(self.blob_closure(c)?);
            }
        } else {
            let m: oci_spec::image::ImageManifest =
                serde_json::from_value(v).map_err(|e| Error::malformed(d.digest().to_string(), e))?;
            for l in m.layers().iter().chain([m.config()]) {
                if !self.blobs().exists(l.digest()) {
                    return Err(Error::BlobNotFound(l.digest().to_string()));
                }
                out.push(l.clone());
            }
        }
        out.push(d.clone());
        Ok(out)
    }

    fn save_oci<W: Write>(&self, items: &[Item], tar: &mut tar::Builder<W>) -> Result<()> {
        let mut written = HashSet::new();
        let mut entries = Vec::new();
        for it in items {
            for b in self.blob_closure(&it.entry)? {
                if written.insert(b.digest().clone()) {
                    self.append_blob(tar, b.digest(), &format!("blobs/sha256/{}", digest::hex(b.digest())))?;
                }
            }
            let mut e = it.entry.clone();
            let mut ann = e.annotations().clone().unwrap_or_default();
            ann.remove(REF_NAME);
            if let Some(n) = &it.name {
                ann.insert(REF_NAME.to_string(), n.to_string());
                ann.insert(CONTAINERD_NAME.to_string(), n.to_string());
            }
            e.set_annotations(if ann.is_empty() { None } else { Some(ann) });
            entries.push(e);
        }
        let index =
            json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries});
        append_bytes(tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        append_bytes(tar, "index.json", &serde_json::to_vec(&index).map_err(|e| Error::malformed("index.json", e))?)
    }

    fn save_docker<W: Write>(&self, items: &[Item], tar: &mut tar::Builder<W>) -> Result<()> {
        let mut written = HashSet::new();
        let mut manifest = Vec::new();
        for it in items {
            let img = &it.image;
            let config_name = format!("{}.json", digest::hex(&img.config_digest));
            if written.insert(img.config_digest.clone()) {
                self.append_blob(tar, &img.config_digest, &config_name)?;
            }
            let mut layers = Vec::new();
            for (l, diff_id) in img.manifest.layers().iter().zip(img.diff_ids()?) {
                let name = format!("{}.tar", digest::hex(&diff_id));
                if written.insert(diff_id.clone()) {
                    self.append_uncompressed(tar, l.digest(), &name)?;
                }
                layers.push(name);
            }
            let tags: Vec<String> = it.name.iter().map(|n| n.familiar()).collect();
            manifest.push(json!({"Config": config_name, "RepoTags": tags, "Layers": layers}));
        }
        append_bytes(
            tar,
            "manifest.json",
            &serde_json::to_vec(&manifest).map_err(|e| Error::malformed("manifest.json", e))?,
        )
    }

    fn append_blob<W: Write>(&self, tar: &mut tar::Builder<W>, d: &Digest, path: &str) -> Result<()> {
        let f = self.blobs().open(d)?;
        let size = f.metadata().ctx("stat blob", self.blobs().path(d))?.len();
        tar.append_data(&mut tar_header(size, 0o644), path, f).map_err(|e| Error::other("write archive", e))
    }

    /// Docker's format wants layers as plain tars: compressed ones are
    /// inflated into a temp file first (a tar header needs the size).
    fn append_uncompressed<W: Write>(&self, tar: &mut tar::Builder<W>, d: &Digest, path: &str) -> Result<()> {
        let mut f = self.blobs().open(d)?;
        if compression::sniff_file(&mut f).ctx("read blob", self.blobs().path(d))? == Compression::None {
            return self.append_blob(tar, d, path);
        }
        let (_, mut r) = compression::decompress(f)?;
        let mut tmp = tempfile_in(self.blobs().ingest_dir())?;
        io::copy(&mut r, &mut tmp.0).map_err(|e| Error::other(format!("inflate layer {d}"), e))?;
        let size = tmp.0.stream_position().ctx("seek", &tmp.1)?;
        tmp.0.rewind().ctx("seek", &tmp.1)?;
        tar.append_data(&mut tar_header(size, 0o644), path, &mut tmp.0).map_err(|e| Error::other("write archive", e))
    }
}

/// An unlinked-on-drop temp file, flocked so a cleaner leaves it alone.
struct TempFile(std::fs::File, std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.1);
    }
}

fn tempfile_in(dir: &std::path::Path) -> Result<TempFile> {
    let p = dir.join(crate::blobs::unique_name("inflate-"));
    let f = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&p).ctx("create", &p)?;
    crate::lock::hold(&f);
    Ok(TempFile(f, p))
}

fn is_id(name: &str, img: &Image) -> bool {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    img.config_digest.digest().starts_with(hex) || img.target.digest().digest().starts_with(hex)
}

impl Store {
    /// A descriptor of the host manifest itself, for an index that is incomplete.
    fn manifest_desc(&self, img: &Image) -> Result<Descriptor> {
        let size = self.blobs().size(&img.manifest_digest)?;
        let mt = img.manifest.media_type().clone().unwrap_or(oci_spec::image::MediaType::ImageManifest);
        Ok(Descriptor::new(mt, size, img.manifest_digest.clone()))
    }
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> Result<()> {
    tar.append_data(&mut tar_header(bytes.len() as u64, 0o644), path, bytes)
        .map_err(|e| Error::other("write archive", e))
}
