//! `--build-context NAME=DIR|docker-image://REF|oci-layout://DIR[:TAG|@DIGEST]`:
//! named contexts, as buildx has them. `FROM NAME`, `COPY --from=NAME` and
//! `RUN --mount=from=NAME` use them before a stage or an image of that name.

use super::error::{BuildError, BuildResult};
use super::state::ImageState;
use serde_json::Value;
use std::path::{Path, PathBuf};
use wharf_image::spec::Descriptor;
use wharf_image::{Digest, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A local directory (COPY --from and RUN --mount from= read it).
    Dir(PathBuf),
    /// An image, from the store or its registry, instead of the one named.
    Image(String),
    /// An image in an OCI layout directory: by tag (its
    /// `org.opencontainers.image.ref.name`), by digest, or its only one.
    OciLayout { dir: PathBuf, reference: Option<String> },
}

impl NamedContext {
    /// Parses `NAME=VALUE` as given to `--build-context`.
    pub fn parse(s: &str) -> BuildResult<(String, NamedContext)> {
        let bad = |why: &str| BuildError::Invalid(format!("--build-context {s:?}: {why}"));
        let (name, value) = s
            .split_once('=')
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
            .ok_or_else(|| bad("use NAME=DIR, NAME=docker-image://REF or NAME=oci-layout://DIR[:TAG]"))?;
        if let Some(r) = value.strip_prefix("docker-image://") {
            wharf_image::Reference::parse(r).map_err(|e| bad(&e.to_string()))?;
            return Ok((name.to_string(), NamedContext::Image(r.to_string())));
        }
        if let Some(rest) = value.strip_prefix("oci-layout://") {
            let (dir, reference) = match rest.rsplit_once('@') {
                Some((d, r)) => (d, Some(r.to_string())),
                None => match rest.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
                    Some((d, t)) => (d, Some(t.to_string())),
                    None => (rest, None),
                },
            };
            let dir = std::fs::canonicalize(dir).map_err(|e| bad(&e.to_string()))?;
            if !dir.join("index.json").is_file() {
                return Err(bad("not an OCI layout (no index.json)"));
            }
            return Ok((name.to_string(), NamedContext::OciLayout { dir, reference }));
        }
        if let Some((scheme, _)) = value.split_once("://") {
            return Err(bad(&format!(
                "{scheme}:// contexts are not supported (a directory, docker-image:// or oci-layout://)"
            )));
        }
        let dir = std::fs::canonicalize(value).map_err(|e| bad(&e.to_string()))?;
        if !dir.is_dir() {
            return Err(bad("not a directory"));
        }
        Ok((name.to_string(), NamedContext::Dir(dir)))
    }
}

/// The image `reference` names in the OCI layout at `dir`, its blobs copied
/// into `store` (digests checked); returns its state and manifest digest.
pub(crate) fn oci_layout_image(
    store: &Store,
    dir: &Path,
    reference: Option<&str>,
) -> BuildResult<(ImageState, Digest)> {
    let bad = |why: String| BuildError::Invalid(format!("oci-layout://{}: {why}", dir.display()));
    let index: Value = serde_json::from_slice(&read(dir, "index.json")?).map_err(|e| bad(e.to_string()))?;
    let manifests: Vec<Descriptor> =
        serde_json::from_value(index["manifests"].clone()).map_err(|e| bad(format!("index.json: {e}")))?;
    let ref_name = |d: &Descriptor| {
        d.annotations().as_ref().and_then(|a| a.get("org.opencontainers.image.ref.name")).cloned().unwrap_or_default()
    };
    let chosen: Vec<&Descriptor> = match reference {
        Some(r) if r.starts_with("sha256:") => manifests.iter().filter(|d| d.digest().to_string() == r).collect(),
        Some(t) => manifests.iter().filter(|d| ref_name(d) == t || ref_name(d).ends_with(&format!(":{t}"))).collect(),
        None => manifests.iter().collect(),
    };
    let desc = match chosen.as_slice() {
        [d] => (*d).clone(),
        [] => return Err(bad(format!("no image {}", reference.unwrap_or("at all")))),
        _ => return Err(bad("holds several images: name one with :TAG or @sha256:…".into())),
    };
    let mut digest = desc.digest().clone();
    let mut manifest: Value =
        serde_json::from_slice(&copy_blob(store, dir, &digest)?).map_err(|e| bad(e.to_string()))?;
    if manifest["manifests"].is_array() {
        // An index: the host's platform.
        let arch = wharf_image::host_arch();
        let m = manifest["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == arch);
        let d =
            m.and_then(|m| m["digest"].as_str()).ok_or_else(|| bad(format!("no linux/{arch} image in the index")))?;
        digest = wharf_image::digest::parse(d)?;
        manifest = serde_json::from_slice(&copy_blob(store, dir, &digest)?).map_err(|e| bad(e.to_string()))?;
    }
    let config_digest = manifest["config"]["digest"].as_str().ok_or_else(|| bad("manifest without config".into()))?;
    let config: Value = serde_json::from_slice(&copy_blob(store, dir, &wharf_image::digest::parse(config_digest)?)?)
        .map_err(|e| bad(e.to_string()))?;
    let layers: Vec<Descriptor> =
        serde_json::from_value(manifest["layers"].clone()).map_err(|e| bad(format!("manifest layers: {e}")))?;
    for l in &layers {
        if !store.blobs().exists(l.digest()) {
            copy_blob(store, dir, l.digest())?;
        }
    }
    let mut state = ImageState { config, layers };
    if !state.config["config"].is_object() {
        state.config["config"] = serde_json::json!({});
    }
    Ok((state, digest))
}

fn read(dir: &Path, rel: &str) -> BuildResult<Vec<u8>> {
    let p = dir.join(rel);
    std::fs::read(&p).map_err(|e| BuildError::io(format!("read {}", p.display()), e))
}

/// A blob of the layout into the store, its digest checked; returns small blobs' bytes.
fn copy_blob(store: &Store, dir: &Path, d: &Digest) -> BuildResult<Vec<u8>> {
    // Checked: only sha256, lowercase hex, so the path stays in blobs/.
    let d = &wharf_image::digest::parse(d.as_ref())?;
    let rel = format!("blobs/sha256/{}", wharf_image::digest::hex(d));
    let p = dir.join(&rel);
    let mut f = std::fs::File::open(&p).map_err(|e| BuildError::io(format!("open {}", p.display()), e))?;
    let size = f.metadata().map_err(|e| BuildError::io("stat blob", e))?.len();
    if !store.blobs().exists(d) {
        store.blobs().put_reader(&mut f, Some((d, size)))?;
    }
    if size > 16 << 20 {
        return Ok(Vec::new());
    }
    read(dir, &rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dirs_and_images() {
        let (n, c) = NamedContext::parse("base=docker-image://debian:bookworm").unwrap();
        assert_eq!((n.as_str(), c), ("base", NamedContext::Image("debian:bookworm".into())));
        let (n, c) = NamedContext::parse("src=/tmp").unwrap();
        assert_eq!((n.as_str(), c), ("src", NamedContext::Dir(std::fs::canonicalize("/tmp").unwrap())));
        for bad in ["noequals", "=x", "a=", "a=/does/not/exist", "a=git://x/y", "a=/etc/passwd", "a=docker-image://UP"]
        {
            assert!(NamedContext::parse(bad).is_err(), "{bad}");
        }
    }
}
