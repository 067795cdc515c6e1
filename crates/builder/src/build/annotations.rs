//! buildx's `--annotation [TYPE[PLATFORM]:]KEY=VALUE`: `manifest` (the
//! default), `index`, `manifest-descriptor` (a manifest's entry in the
//! index) and `index-descriptor` (the index's entry in the store's and an
//! OCI layout's `index.json`); `[os/arch]` limits one to a platform.

use super::error::{BuildError, BuildResult};
use std::collections::BTreeMap;
use wharf_image::Platform;

/// The annotations of a multi-platform build's index and its entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexAnnotations {
    /// `index:`: the image index's own.
    pub index: BTreeMap<String, String>,
    /// `index-descriptor:`: the descriptor naming the index.
    pub index_descriptor: BTreeMap<String, String>,
    /// `manifest-descriptor[PLATFORM]:`: the index's entries (None: every one).
    pub manifest_descriptor: Vec<(Option<Platform>, String, String)>,
    /// `manifest[PLATFORM]:`: one platform's manifest.
    pub manifest: Vec<(Platform, String, String)>,
}

impl IndexAnnotations {
    /// The manifest annotations of `p`: those of every manifest, then its own.
    pub(crate) fn manifest_of(&self, all: &BTreeMap<String, String>, p: &Platform) -> BTreeMap<String, String> {
        let mut m = all.clone();
        m.extend(self.manifest.iter().filter(|(q, _, _)| q == p).map(|(_, k, v)| (k.clone(), v.clone())));
        m
    }

    /// The annotations of `p`'s entry in the index.
    pub(crate) fn descriptor_of(&self, p: &Platform) -> BTreeMap<String, String> {
        let applies = |q: &Option<Platform>| q.as_ref().is_none_or(|q| q == p);
        self.manifest_descriptor.iter().filter(|(q, _, _)| applies(q)).map(|(_, k, v)| (k.clone(), v.clone())).collect()
    }
}

/// Splits `--annotation` values into the manifests' (every platform) and
/// the rest; `multi`: the build makes an index (else only `manifest:` applies).
pub fn parse_annotations(items: &[String], multi: bool) -> BuildResult<(BTreeMap<String, String>, IndexAnnotations)> {
    let mut manifest = BTreeMap::new();
    let mut more = IndexAnnotations::default();
    for i in items {
        let bad = |why: &str| BuildError::Invalid(format!("--annotation {i:?}: {why}"));
        let (k, v) = i.split_once('=').ok_or_else(|| bad("use [TYPE:]KEY=VALUE"))?;
        let (typ, platform, key) = split_key(k).map_err(|e| bad(&e))?;
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(bad("the key is empty or holds spaces"));
        }
        let (key, v) = (key.to_string(), v.to_string());
        if !multi && (typ != "manifest" || platform.is_some()) {
            return Err(bad(&format!(
                "{typ}{} annotations need an image index, which a single-platform build does not make; use manifest:KEY=VALUE",
                if platform.is_some() { " per-platform" } else { "" }
            )));
        }
        match (typ, platform) {
            ("manifest", None) => _ = manifest.insert(key, v),
            ("manifest", Some(p)) => more.manifest.push((p, key, v)),
            ("manifest-descriptor", p) => more.manifest_descriptor.push((p, key, v)),
            ("index", None) => _ = more.index.insert(key, v),
            ("index-descriptor", None) => _ = more.index_descriptor.insert(key, v),
            (t, _) => return Err(bad(&format!("{t} annotations are not per platform"))),
        }
    }
    Ok((manifest, more))
}

/// `TYPE[PLATFORM]:KEY` → its parts, as buildx's pattern
/// `^(?:([a-z-]+)(?:\[([A-Za-z0-9_/-]+)\])?:)?(\S+)$`; no type: `manifest`.
fn split_key(k: &str) -> Result<(&str, Option<Platform>, &str), String> {
    let Some((head, key)) = k.split_once(':') else { return Ok(("manifest", None, k)) };
    let (typ, platform) = match head.split_once('[') {
        Some((t, rest)) => match rest.strip_suffix(']') {
            Some(p) if !p.is_empty() => (t, Some(p)),
            _ => return Ok(("manifest", None, k)),
        },
        None => (head, None),
    };
    if typ.is_empty() || !typ.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
        return Ok(("manifest", None, k));
    }
    if !matches!(typ, "manifest" | "manifest-descriptor" | "index" | "index-descriptor") {
        return Err(format!(
            "unknown annotation type {typ:?} (manifest, manifest-descriptor, index, index-descriptor)"
        ));
    }
    let platform = platform.map(|p| Platform::parse(p).map_err(|e| format!("platform {p:?}: {e}"))).transpose()?;
    Ok((typ, platform, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(items: &[&str], multi: bool) -> BuildResult<(BTreeMap<String, String>, IndexAnnotations)> {
        parse_annotations(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>(), multi)
    }

    #[test]
    fn types_and_platforms() {
        let (m, more) = parse(
            &[
                "a=1",
                "manifest:b=2",
                "index:c=3",
                "index-descriptor:d=4",
                "manifest-descriptor:e=5",
                "manifest-descriptor[linux/arm64]:f=6",
                "manifest[linux/amd64]:g=7",
            ],
            true,
        )
        .unwrap();
        assert_eq!(m, BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())]));
        assert_eq!(more.index, BTreeMap::from([("c".into(), "3".into())]));
        assert_eq!(more.index_descriptor, BTreeMap::from([("d".into(), "4".into())]));
        let (amd, arm) = (Platform::parse("linux/amd64").unwrap(), Platform::parse("linux/arm64").unwrap());
        assert_eq!(more.descriptor_of(&amd).len(), 1);
        assert_eq!(more.descriptor_of(&arm).len(), 2);
        assert_eq!(more.manifest_of(&m, &amd).get("g").map(String::as_str), Some("7"));
        assert!(!more.manifest_of(&m, &arm).contains_key("g"));
    }

    #[test]
    fn refused() {
        let err = |items: &[&str], multi| parse(items, multi).unwrap_err().to_string();
        assert!(err(&["index:a=1"], false).contains("need an image index"));
        assert!(err(&["manifest[linux/arm64]:a=1"], false).contains("per-platform"));
        assert!(err(&["layer:a=1"], true).contains("unknown annotation type"));
        assert!(err(&["index[linux/arm64]:a=1"], true).contains("not per platform"));
        assert!(err(&["a"], true).contains("KEY=VALUE"));
        // A key with a colon that is no type stays a manifest key.
        assert_eq!(parse(&["Org.X:y=1"], false).unwrap().0.len(), 1);
    }
}
