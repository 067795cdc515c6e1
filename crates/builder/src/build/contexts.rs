//! `--build-context NAME=DIR|docker-image://REF`: named contexts, as buildx
//! has them. `FROM NAME`, `COPY --from=NAME` and `RUN --mount=from=NAME`
//! use them before a stage or an image of that name.

use super::error::{BuildError, BuildResult};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A local directory (COPY --from and RUN --mount from= read it).
    Dir(PathBuf),
    /// An image, from the store or its registry, instead of the one named.
    Image(String),
}

impl NamedContext {
    /// Parses `NAME=VALUE` as given to `--build-context`.
    pub fn parse(s: &str) -> BuildResult<(String, NamedContext)> {
        let bad = |why: &str| BuildError::Invalid(format!("--build-context {s:?}: {why}"));
        let (name, value) = s
            .split_once('=')
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
            .ok_or_else(|| bad("use NAME=DIR or NAME=docker-image://REF"))?;
        if let Some(r) = value.strip_prefix("docker-image://") {
            wharf_image::Reference::parse(r).map_err(|e| bad(&e.to_string()))?;
            return Ok((name.to_string(), NamedContext::Image(r.to_string())));
        }
        if let Some((scheme, _)) = value.split_once("://") {
            return Err(bad(&format!("{scheme}:// contexts are not supported (a directory or docker-image://REF)")));
        }
        let dir = std::fs::canonicalize(value).map_err(|e| bad(&e.to_string()))?;
        if !dir.is_dir() {
            return Err(bad("not a directory"));
        }
        Ok((name.to_string(), NamedContext::Dir(dir)))
    }
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
