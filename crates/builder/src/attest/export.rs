//! Attestations of a filesystem output (`-o type=local|tar`), as BuildKit's
//! local exporter writes them: each statement an indented JSON file next to
//! the rootfs (`provenance.json`, `sbom.spdx.json`, mode 0600), its
//! subjects every regular file of the output by relative path and sha256
//! (not the image manifest, which such an output does not have).

use crate::build::{BuildError, BuildResult};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::path::Path;
use wharf_image::attestation::{Statement, SLSA_PROVENANCE_V02, SPDX_DOCUMENT};
use wharf_image::{Image, Store};

/// The file BuildKit names a statement of `predicate_type` after (its
/// attestation's path: `provenance.json`, the scanner's `sbom.spdx.json`).
pub(crate) fn file_name(predicate_type: &str) -> Option<&'static str> {
    match predicate_type {
        SLSA_PROVENANCE_V02 => Some("provenance.json"),
        SPDX_DOCUMENT => Some("sbom.spdx.json"),
        _ => None,
    }
}

/// Regular files under `dir` (not following links), relative paths in
/// lexical order, with their sha256: the subjects of the statements.
pub(crate) fn file_subjects(dir: &Path) -> BuildResult<Vec<Value>> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<Value>) -> BuildResult<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| BuildError::io(format!("read {}", dir.display()), e))?;
    for e in rd {
        let e = e.map_err(|e| BuildError::io(format!("read {}", dir.display()), e))?;
        let t = e.file_type().map_err(|e| BuildError::io("file type", e))?;
        let p = e.path();
        if t.is_dir() {
            walk(root, &p, out)?;
        } else if t.is_file() {
            let mut f = std::fs::File::open(&p).map_err(|e| BuildError::io(format!("open {}", p.display()), e))?;
            let mut h = Sha256::new();
            std::io::copy(&mut f, &mut h).map_err(|e| BuildError::io(format!("read {}", p.display()), e))?;
            let rel = p.strip_prefix(root).unwrap_or(&p).to_string_lossy().into_owned();
            out.push(json!({"name": rel, "digest": {"sha256": hex::encode(h.finalize())}}));
        }
    }
    Ok(())
}

/// The statements `img` carries (none: nothing is written) as files in
/// `dir`, which holds the image's filesystem.
pub(crate) fn write_beside(store: &Store, img: &Image, dir: &Path) -> BuildResult<()> {
    let statements = store.attestations(img)?;
    write_statements(&statements, dir)
}

fn write_statements(statements: &[Statement], dir: &Path) -> BuildResult<()> {
    let named: Vec<(&str, &Statement)> =
        statements.iter().filter_map(|s| file_name(&s.predicate_type).map(|n| (n, s))).collect();
    if named.is_empty() {
        return Ok(());
    }
    let subjects = file_subjects(dir)?;
    for (name, s) in named {
        let mut st = s.statement.clone();
        st["subject"] = json!(subjects);
        let p = dir.join(name);
        if std::fs::symlink_metadata(&p).is_ok() {
            return Err(BuildError::Invalid(format!(
                "the image has a /{name}: the attestation file of that name would replace it"
            )));
        }
        let text = serde_json::to_vec_pretty(&st).map_err(|e| BuildError::Invalid(format!("{name}: {e}")))?;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .map_err(|e| BuildError::io(format!("create {}", p.display()), e))?;
        std::io::Write::write_all(&mut f, &text).map_err(|e| BuildError::io(format!("write {}", p.display()), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_named_and_subjects_are_the_files() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        std::fs::write(t.path().join("etc/os-release"), "ID=x\n").unwrap();
        std::fs::write(t.path().join("hello"), "").unwrap();
        std::os::unix::fs::symlink("hello", t.path().join("link")).unwrap();
        let st = |pt: &str| Statement {
            predicate_type: pt.into(),
            statement: json!({"_type": "https://in-toto.io/Statement/v0.1", "predicateType": pt,
                "subject": [{"name": "pkg:docker/x", "digest": {"sha256": "00"}}], "predicate": {"a": 1}}),
        };
        write_statements(&[st(SPDX_DOCUMENT), st(SLSA_PROVENANCE_V02), st("https://example.com/other")], t.path())
            .unwrap();
        let sbom: Value = serde_json::from_slice(&std::fs::read(t.path().join("sbom.spdx.json")).unwrap()).unwrap();
        let names: Vec<&str> =
            sbom["subject"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["etc/os-release", "hello"], "regular files only, relative, sorted");
        assert_eq!(
            sbom["subject"][1]["digest"]["sha256"],
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(sbom["predicate"]["a"], 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(t.path().join("provenance.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 5, "an unknown predicate type is not written");
    }
}
