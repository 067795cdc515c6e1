//! Image references, parsed and normalised as Docker does:
//! `busybox` → `docker.io/library/busybox:latest`.

use crate::error::{Error, Result};
use std::fmt;

pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
pub const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_MAX: usize = 255;

/// A fully qualified image reference: domain, path, and a tag and/or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

fn invalid(reference: &str, reason: impl Into<String>) -> Error {
    Error::InvalidReference { reference: reference.to_string(), reason: reason.into() }
}

impl Reference {
    /// Parses and normalises; a reference with neither tag nor digest gets `:latest`.
    pub fn parse(s: &str) -> Result<Self> {
        let mut r = Self::parse_bare(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parses and normalises the name, adding no default tag.
    pub fn parse_bare(s: &str) -> Result<Self> {
        if s.is_empty() {
            return Err(invalid(s, "reference is empty"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (rest, Some(parse_digest(s, d)?)),
            None => (s, None),
        };
        // A tag follows the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(parse_tag(s, &rest[at + 1..])?))
            }
            None => (rest, None),
        };
        let (domain, path) = split_domain(s, name)?;
        validate_path(s, &path)?;
        if domain.len() + 1 + path.len() > NAME_TOTAL_MAX {
            return Err(invalid(s, format!("repository name must not be more than {NAME_TOTAL_MAX} characters")));
        }
        Ok(Reference { domain, path, tag, digest })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }
    pub fn path(&self) -> &str {
        &self.path
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// `domain/path`, without tag or digest.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Self> {
        let tag = parse_tag(tag, tag)?;
        Ok(Reference { tag: Some(tag), digest: None, ..self.clone() })
    }

    /// The short form Docker prints: `busybox:latest` for docker.io/library/busybox:latest.
    pub fn familiar(&self) -> String {
        let name = if self.domain == DEFAULT_DOMAIN {
            self.path.strip_prefix(OFFICIAL_REPO_PREFIX).unwrap_or(&self.path).to_string()
        } else {
            self.repository()
        };
        let mut out = name;
        if let Some(t) = &self.tag {
            out.push(':');
            out.push_str(t);
        }
        if let Some(d) = &self.digest {
            out.push('@');
            out.push_str(d);
        }
        out
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Reference::parse(s)
    }
}

fn split_domain(full: &str, name: &str) -> Result<(String, String)> {
    if name.is_empty() {
        return Err(invalid(full, "repository name is empty"));
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            validate_domain(full, first)?;
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    let domain = if domain == LEGACY_DEFAULT_DOMAIN { DEFAULT_DOMAIN.to_string() } else { domain };
    let path =
        if domain == DEFAULT_DOMAIN && !path.contains('/') { format!("{OFFICIAL_REPO_PREFIX}{path}") } else { path };
    Ok((domain, path))
}

fn validate_domain(full: &str, domain: &str) -> Result<()> {
    let (host, port) = match domain.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (domain, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(full, format!("port {p:?} in registry {domain:?} must be digits")));
        }
    }
    if host.starts_with('[') && host.ends_with(']') {
        return Ok(()); // IPv6 literal
    }
    for label in host.split('.') {
        let ok = !label.is_empty()
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(invalid(full, format!("registry host {host:?} is not a valid hostname")));
        }
    }
    Ok(())
}

/// Path components: `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`, joined by `/`.
fn validate_path(full: &str, path: &str) -> Result<()> {
    for comp in path.split('/') {
        if comp.is_empty() {
            return Err(invalid(full, "repository name has an empty path component"));
        }
        if comp.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid(full, "repository name must be lowercase"));
        }
        if !valid_component(comp) {
            return Err(invalid(
                full,
                format!(
                    "path component {comp:?} must be lowercase letters and digits, separated by '.', '_', '__' or '-'"
                ),
            ));
        }
    }
    Ok(())
}

fn valid_component(comp: &str) -> bool {
    let b = comp.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &comp[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn parse_tag(full: &str, tag: &str) -> Result<String> {
    let b = tag.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    if b.is_empty() || b.len() > 128 || !word(b[0]) || !b.iter().all(|&c| word(c) || c == b'.' || c == b'-') {
        return Err(invalid(
            full,
            format!("tag {tag:?} must be 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'"),
        ));
    }
    Ok(tag.to_string())
}

fn parse_digest(full: &str, d: &str) -> Result<String> {
    let Some((algo, hex)) = d.split_once(':') else {
        return Err(invalid(full, "digest must be ALGORITHM:HEX"));
    };
    let want = match algo {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err(invalid(full, format!("unsupported digest algorithm {algo:?}"))),
    };
    if hex.len() != want || !hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(invalid(full, format!("{algo} digest must be {want} lowercase hex characters")));
    }
    Ok(d.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalises_like_docker() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            ("user/app", "docker.io/user/app:latest"),
            ("index.docker.io/user/app:v1", "docker.io/user/app:v1"),
            ("localhost/app", "localhost/app:latest"),
            ("localhost:5000/a/b:tag", "localhost:5000/a/b:tag"),
            ("host.example:5000/a/b/c", "host.example:5000/a/b/c:latest"),
            ("quay.io/a_b/c-d.e__f:t", "quay.io/a_b/c-d.e__f:t"),
            ("[::1]:5000/app:x", "[::1]:5000/app:x"),
        ];
        for (input, want) in cases {
            assert_eq!(Reference::parse(input).unwrap().to_string(), want, "{input}");
        }
    }

    #[test]
    fn digests() {
        let r = Reference::parse(&format!("busybox@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{D}"));
        let r = Reference::parse(&format!("busybox:1@{D}")).unwrap();
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(r.digest(), Some(D));
        assert_eq!(r.familiar(), format!("busybox:1@{D}"));
    }

    #[test]
    fn errors_name_the_rule() {
        let cases = [
            ("", "empty"),
            ("Busybox", "lowercase"),
            ("busybox:", "tag"),
            ("busybox:-x", "tag"),
            ("a//b", "empty path component"),
            ("a/b-", "path component"),
            ("busybox@sha256:abc", "64"),
            ("busybox@md5:abc", "unsupported digest"),
            ("host:port/a", "port"),
            ("a..b/c", "hostname"),
        ];
        for (input, want) in cases {
            let e = Reference::parse(input).unwrap_err().to_string();
            assert!(e.contains(want), "{input}: {e}");
        }
        let long = format!("a/{}", "b".repeat(300));
        assert!(Reference::parse(&long).unwrap_err().to_string().contains("255"));
    }
}
