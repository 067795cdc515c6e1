//! `wharf system check`: verifies every blob, reference and snapshot.

use crate::digest::Digest;
use crate::error::Result;
use crate::images::ref_name;
use crate::layout::{Store, MAX_METADATA_BLOB};
use crate::reference::Reference;
use oci_spec::image::Descriptor;
use std::collections::HashSet;
use std::sync::Mutex;

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct CheckReport {
    /// Damage: a non-empty list means the store is not consistent.
    pub problems: Vec<String>,
    /// Worth knowing, not damage (garbage prune would remove, temp files).
    pub notes: Vec<String>,
    pub blobs: usize,
    pub images: usize,
    pub snapshots: usize,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Store {
    pub fn check(&self) -> Result<CheckReport> {
        let mut rep = CheckReport::default();
        self.check_blobs(&mut rep)?;
        let needed = self.check_references(&mut rep)?;
        self.check_snapshots(&mut rep, &needed)?;
        let (live, dead) = self.temp_files();
        if live > 0 {
            rep.notes.push(format!("{live} temp file(s) in ingest/ in use by running commands"));
        }
        if dead > 0 {
            rep.notes
                .push(format!("{dead} temp file(s) in ingest/ left by killed processes (image prune removes them)"));
        }
        Ok(rep)
    }

    /// Temp files in `ingest/`: (in use, left by dead writers).
    fn temp_files(&self) -> (usize, usize) {
        let dir = self.blobs().ingest_dir();
        let (mut live, mut dead) = (0, 0);
        for ent in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = ent.path();
            match std::fs::File::open(&p) {
                Ok(f) if crate::blobs::abandoned(&p, &f) => dead += 1,
                Ok(_) => live += 1,
                Err(_) => {} // gone meanwhile
            }
        }
        (live, dead)
    }

    fn check_blobs(&self, rep: &mut CheckReport) -> Result<()> {
        let (blobs, bad) = self.blobs().list()?;
        for b in bad {
            rep.problems.push(format!("blobs/sha256/{b}: not a sha256 digest name"));
        }
        rep.blobs = blobs.len();
        let queue = Mutex::new(blobs);
        let problems = Mutex::new(Vec::new());
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(4);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let Some(d) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop() else { break };
                    if let Err(e) = self.blobs().verify(&d) {
                        problems.lock().unwrap_or_else(|e| e.into_inner()).push(format!("blob {d}: {e}"));
                    }
                });
            }
        });
        rep.problems.extend(problems.into_inner().unwrap_or_else(|e| e.into_inner()));
        Ok(())
    }

    /// Checks every index entry down to its layers; returns the diffIDs in use.
    fn check_references(&self, rep: &mut CheckReport) -> Result<HashSet<Digest>> {
        let index = self.index()?;
        let mut needed = HashSet::new();
        let mut seen = HashSet::new();
        for d in index.manifests() {
            let label = ref_name(d).map_or_else(|| d.digest().to_string(), str::to_string);
            if let Some(n) = ref_name(d) {
                if n.contains('/') && Reference::parse(n).is_err() {
                    rep.problems.push(format!("{n}: not a valid reference"));
                }
            }
            if !seen.insert(d.digest().clone()) {
                continue;
            }
            rep.images += 1;
            for img in self.check_targets(d, &label, rep) {
                self.check_image(&img, &label, rep, &mut needed);
            }
        }
        Ok(needed)
    }

    /// The images under an index entry: itself, or each platform of an
    /// index whose manifest is here (an index may list platforms never
    /// pulled: a build for one platform keeps the index; not all absent).
    fn check_targets(&self, d: &Descriptor, label: &str, rep: &mut CheckReport) -> Vec<crate::Image> {
        if crate::images::is_index(d.media_type()) {
            let children: Vec<Descriptor> = self
                .blobs()
                .read(d.digest(), MAX_METADATA_BLOB)
                .ok()
                .and_then(|b| serde_json::from_slice::<oci_spec::image::ImageIndex>(&b).ok())
                .map(|i| i.manifests().clone())
                .unwrap_or_default();
            let here: Vec<&Descriptor> = children.iter().filter(|c| self.blobs().exists(c.digest())).collect();
            if !here.is_empty() {
                let mut out = Vec::new();
                for c in here {
                    match self.load_image(c) {
                        Ok(i) => out.push(i),
                        Err(e) => rep.problems.push(format!("image {label}: {}: {e}", c.digest())),
                    }
                }
                return out;
            }
        }
        match self.load_image(d) {
            Ok(i) => vec![i],
            Err(e) => {
                rep.problems.push(format!("image {label}: {e}"));
                Vec::new()
            }
        }
    }

    fn check_image(&self, img: &crate::Image, label: &str, rep: &mut CheckReport, needed: &mut HashSet<Digest>) {
        {
            for l in img.manifest.layers() {
                if !self.blobs().exists(l.digest()) {
                    rep.problems.push(format!("image {label}: layer blob {} is missing", l.digest()));
                }
            }
            // An attestation manifest's "layers" are in-toto statements, never unpacked.
            let attestation = img.config.os().to_string() == "unknown";
            match img.diff_ids() {
                Ok(_) if attestation => {}
                Ok(ids) if ids.len() == img.manifest.layers().len() => needed.extend(ids),
                Ok(ids) => rep.problems.push(format!(
                    "image {label}: config lists {} diffIDs for {} layers",
                    ids.len(),
                    img.manifest.layers().len()
                )),
                Err(e) => rep.problems.push(format!("image {label}: {e}")),
            }
            if let Err(e) = self.blobs().read(&img.config_digest, MAX_METADATA_BLOB) {
                rep.problems.push(format!("image {label}: config: {e}"));
            }
        }
    }

    fn check_snapshots(&self, rep: &mut CheckReport, needed: &HashSet<Digest>) -> Result<()> {
        let (snaps, bad) = self.snapshots().list()?;
        for b in bad {
            rep.problems.push(format!("layers/sha256/{b}: not a diffID name"));
        }
        rep.snapshots = snaps.len();
        let mut unused = 0;
        for s in &snaps {
            let p = self.snapshots().path(s);
            if !p.is_dir() {
                rep.problems.push(format!("snapshot {s}: not a directory"));
            }
            if !needed.contains(s) {
                unused += 1;
            }
        }
        if unused > 0 {
            rep.notes.push(format!("{unused} snapshot(s) used by no image (image prune removes them)"));
        }
        let have: HashSet<&Digest> = snaps.iter().collect();
        let missing = needed.iter().filter(|d| !have.contains(d)).count();
        if missing > 0 {
            rep.notes.push(format!("{missing} layer(s) not unpacked yet (unpacked when first used)"));
        }
        Ok(())
    }
}
