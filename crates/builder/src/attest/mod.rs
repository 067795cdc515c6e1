//! Build attestations (`--provenance`, `--sbom`), made and attached as
//! BuildKit does: per platform, in-toto statements in an attestation
//! manifest next to the image manifest, in an OCI image index (an index
//! even for one platform). Off unless asked for: without them a build's
//! output is the plain image manifest it always was.
//!
//! - `packages`: the package databases' parsers (dpkg, apk, os-release, Python, npm).
//! - `binaries`: Go build info and cargo-auditable data in ELF programs.
//! - `rootfs`: the final image's files read from its unpacked layers.
//! - `sbom`: the scan and the SPDX 2.3 document.
//! - `provenance`: the SLSA provenance v0.2 statement.
//! - `export`: the statements as files next to a `-o type=local|tar` output.

mod binaries;
mod export;
mod packages;
pub mod provenance;
mod rootfs;
mod sbom;

pub(crate) use export::write_beside;

use crate::build::{state::ImageState, Ctx};
use crate::build::{BuildError, BuildResult};
use serde_json::{json, Value};
use std::sync::Mutex;
use wharf_image::spec::Descriptor;
use wharf_image::{Platform, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvenanceMode {
    Min,
    Max,
}

/// What `--provenance`, `--sbom` and `--attest` ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttestOptions {
    pub provenance: Option<ProvenanceMode>,
    /// `builder-id=URI` of the provenance (BuildKit's; empty by default).
    pub builder_id: String,
    pub sbom: bool,
}

fn bool_word(s: &str) -> Option<bool> {
    match s {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

impl AttestOptions {
    pub fn enabled(&self) -> bool {
        self.provenance.is_some() || self.sbom
    }

    /// buildx's `--provenance`: `true|false|1|0`, `min|max`, or
    /// `mode=min|max[,builder-id=URI][,disabled=true]`.
    pub fn set_provenance(&mut self, s: &str) -> BuildResult<()> {
        let bad = |why: &str| BuildError::Invalid(format!("--provenance {s:?}: {why}"));
        if let Some(on) = bool_word(s) {
            self.provenance = on.then_some(ProvenanceMode::Min);
            return Ok(());
        }
        let mut mode = ProvenanceMode::Min;
        let mut on = true;
        for part in s.split(',').filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                None if part == "min" => mode = ProvenanceMode::Min,
                None if part == "max" => mode = ProvenanceMode::Max,
                Some(("mode", "min")) => mode = ProvenanceMode::Min,
                Some(("mode", "max")) => mode = ProvenanceMode::Max,
                Some(("mode", m)) => return Err(bad(&format!("mode {m:?}: use min or max"))),
                Some(("builder-id", id)) => self.builder_id = id.to_string(),
                Some(("disabled", d)) => on = !bool_word(d).ok_or_else(|| bad("disabled= takes true or false"))?,
                Some(("type", "provenance")) => {}
                Some((k, _)) => return Err(bad(&format!("unknown option {k:?} (mode, builder-id)"))),
                None => return Err(bad("use true, false, mode=min or mode=max")),
            }
        }
        self.provenance = on.then_some(mode);
        Ok(())
    }

    /// buildx's `--sbom`: `true|false|1|0` or `generator=IMAGE`; wharf has
    /// one generator, built in (the image's package databases): another is refused.
    pub fn set_sbom(&mut self, s: &str) -> BuildResult<()> {
        let bad = |why: &str| BuildError::Invalid(format!("--sbom {s:?}: {why}"));
        if let Some(on) = bool_word(s) {
            self.sbom = on;
            return Ok(());
        }
        let mut on = true;
        for part in s.split(',').filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some(("generator", g)) => {
                    return Err(bad(&format!(
                        "generator {g:?}: wharf has one SBOM generator, built in (it reads the image's dpkg, apk, \
                         Python and npm package databases and Go/cargo-auditable binaries, without a network); \
                         it runs no generator image: use --sbom=true"
                    )))
                }
                Some(("disabled", d)) => on = !bool_word(d).ok_or_else(|| bad("disabled= takes true or false"))?,
                Some(("type", "sbom")) => {}
                Some(("scan-context" | "scan-stage", _)) => {
                    return Err(bad("scanning the build context or stages is not supported"))
                }
                _ => return Err(bad("use true, false (generator= is not supported)")),
            }
        }
        self.sbom = on;
        Ok(())
    }

    /// buildx's `--attest type=provenance,…` / `--attest type=sbom,…`.
    pub fn set_attest(&mut self, s: &str) -> BuildResult<()> {
        let kind = s.split(',').find_map(|p| p.strip_prefix("type="));
        match kind {
            Some("provenance") => self.set_provenance(if s == "type=provenance" { "true" } else { s }),
            Some("sbom") => self.set_sbom(if s == "type=sbom" { "true" } else { s }),
            _ => Err(BuildError::Invalid(format!("--attest {s:?}: use type=provenance[,mode=…] or type=sbom"))),
        }
    }
}

/// A base image a platform's build used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Material {
    pub uri: String,
    pub digest: String,
}

/// What one platform's build recorded for its provenance.
#[derive(Debug, Default)]
pub(crate) struct Recorded {
    pub materials: Vec<Material>,
    pub steps: Vec<Value>,
}

/// Filled while a platform builds (base images, steps).
#[derive(Default)]
pub(crate) struct Recorder {
    on: bool,
    inner: Mutex<Recorded>,
}

impl Recorder {
    pub(crate) fn new(opts: &AttestOptions) -> Self {
        Recorder { on: opts.provenance.is_some(), inner: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A base image resolved for `platform` (FROM, COPY --from, mounts).
    pub(crate) fn material(&self, name: &str, platform: &Platform, img: &wharf_image::Image) {
        if !self.on {
            return;
        }
        let Ok(r) = wharf_image::Reference::parse(name) else { return };
        let m = Material { uri: provenance::docker_purl(&r, Some(platform)), digest: img.target.digest().to_string() };
        let mut g = self.lock();
        if !g.materials.contains(&m) {
            g.materials.push(m);
        }
    }

    /// A step starts (`id` as in the progress events).
    pub(crate) fn step(&self, id: usize, stage: &str, platform: &Platform, step: &crate::Step) {
        if !self.on {
            return;
        }
        self.lock().steps.push(json!({
            "id": format!("step{id}"),
            "stage": stage,
            "platform": platform.to_string(),
            "lines": [step.lines.start, step.lines.end],
            "instruction": step.original,
            "cached": false,
        }));
    }

    /// Progress events: which steps came from the cache.
    pub(crate) fn observe(&self, e: &crate::build::progress::Event) {
        if let (true, crate::build::progress::Event::Cached { id }) = (self.on, e) {
            let want = format!("step{id}");
            if let Some(s) = self.lock().steps.iter_mut().rev().find(|s| s["id"] == want.as_str()) {
                s["cached"] = json!(true);
            }
        }
    }
}

/// The attestation manifests a build made, one per platform's image.
pub(crate) struct Attached {
    started: String,
    invocation: String,
    entries: Mutex<Vec<Value>>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl Attached {
    pub(crate) fn new() -> Self {
        Attached { started: now(), invocation: crate::build::unique(), entries: Mutex::default() }
    }

    /// Makes the statements for one platform's committed image `manifest`
    /// and stores its attestation manifest.
    pub(crate) fn attach(
        &self,
        ctx: &Ctx,
        rec: &Recorder,
        state: &ImageState,
        manifest: &Descriptor,
    ) -> BuildResult<()> {
        let a = &ctx.opts.attest;
        if !a.enabled() {
            return Ok(());
        }
        let digest = manifest.digest().to_string();
        let mut statements = Vec::new();
        if a.sbom {
            ctx.say(&format!("{}generating SBOM", ctx.label));
            let fs = rootfs::LayeredFs::new(ctx.lowers(state)?);
            let found = sbom::scan(&fs);
            let name = ctx.opts.tags.first().map_or_else(|| digest.clone(), |t| t.to_string());
            let doc = sbom::spdx_document(&found, &name, &digest, &now());
            statements.push(json!({
                "_type": wharf_image::attestation::STATEMENT_V01,
                "predicateType": wharf_image::attestation::SPDX_DOCUMENT,
                "subject": provenance::subjects(&ctx.opts.tags, &ctx.platform, &digest),
                "predicate": doc,
            }));
        }
        if let Some(mode) = a.provenance {
            let path = ctx.opts.dockerfile.clone().unwrap_or_else(|| ctx.opts.context.join("Dockerfile"));
            let dockerfile = std::fs::read(&path).ok();
            let recorded = rec.lock();
            let facts = provenance::Facts {
                platform: &ctx.platform,
                manifest: &digest,
                invocation_id: &self.invocation,
                started: &self.started,
                finished: &now(),
                recorded: &recorded,
                dockerfile: dockerfile.as_deref(),
            };
            statements.push(provenance::statement(ctx.opts, mode, &a.builder_id, &facts));
        }
        let entry = ctx.store.put_attestations(manifest.digest(), &statements)?;
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
        Ok(())
    }

    /// The build's result with the attestation manifests: an image manifest
    /// becomes an index of it and its attestations; an index gets them
    /// after its images (its annotations and entries kept as they are).
    pub(crate) fn wrap(&self, store: &Store, result: Descriptor) -> BuildResult<Descriptor> {
        let entries = std::mem::take(&mut *self.entries.lock().unwrap_or_else(|e| e.into_inner()));
        if entries.is_empty() {
            return Ok(result);
        }
        if result.media_type() != &wharf_image::spec::MediaType::ImageIndex {
            let mut all = vec![store.index_entry(&result)?];
            all.extend(entries);
            return Ok(store.put_index(&all, &Default::default())?);
        }
        let raw = store.blobs().read(result.digest(), 16 << 20)?;
        let mut index: Value =
            serde_json::from_slice(&raw).map_err(|e| BuildError::Invalid(format!("the build's index: {e}")))?;
        let list =
            index["manifests"].as_array_mut().ok_or_else(|| BuildError::Invalid("index without manifests".into()))?;
        // In the order of the images they attest, as BuildKit lists them.
        let order: Vec<String> = list.iter().filter_map(|m| m["digest"].as_str().map(str::to_string)).collect();
        let mut entries = entries;
        entries.sort_by_key(|e| {
            let d = e["annotations"][wharf_image::attestation::REFERENCE_DIGEST].as_str().unwrap_or_default();
            order.iter().position(|o| o == d).unwrap_or(usize::MAX)
        });
        list.extend(entries);
        let bytes = serde_json::to_vec(&index).map_err(|e| BuildError::Invalid(format!("index: {e}")))?;
        let d = store.blobs().put_bytes(&bytes)?;
        let mut wrapped = Descriptor::new(wharf_image::spec::MediaType::ImageIndex, bytes.len() as u64, d);
        // `--annotation index-descriptor:` stays on the new index's descriptor.
        wrapped.set_annotations(result.annotations().clone());
        Ok(wrapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_as_buildx() {
        let mut a = AttestOptions::default();
        a.set_provenance("mode=max").unwrap();
        assert_eq!(a.provenance, Some(ProvenanceMode::Max));
        a.set_provenance("false").unwrap();
        assert_eq!(a.provenance, None);
        a.set_provenance("1").unwrap();
        assert_eq!(a.provenance, Some(ProvenanceMode::Min));
        a.set_provenance("mode=max,builder-id=https://ci.example/run/1").unwrap();
        assert_eq!(a.builder_id, "https://ci.example/run/1");
        a.set_provenance("max").unwrap();
        assert_eq!(a.provenance, Some(ProvenanceMode::Max));
        assert!(a.set_provenance("mode=huge").is_err());
        assert!(a.set_provenance("maybe").is_err());
        a.set_sbom("true").unwrap();
        assert!(a.sbom);
        let e = a.set_sbom("generator=docker/buildkit-syft-scanner").unwrap_err().to_string();
        assert!(e.contains("one SBOM generator"), "{e}");
        a.set_sbom("0").unwrap();
        assert!(!a.sbom);
        a.set_attest("type=sbom").unwrap();
        assert!(a.sbom);
        a.set_attest("type=provenance,mode=min").unwrap();
        assert_eq!(a.provenance, Some(ProvenanceMode::Min));
        assert!(a.set_attest("type=vex").is_err());
    }
}
