//! Paths resolved inside a root directory, as `openat2(RESOLVE_IN_ROOT)`
//! would: `..` stops at the root and symlinks (absolute or relative) are
//! followed as if the root were `/`, so nothing outside it is ever named.
//! Done in user space because COPY also needs the resolved names (for
//! globs, .dockerignore and tar paths), not only an fd.

use crate::DockerIgnore;
use std::collections::VecDeque;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Linux's limit on symlinks followed in one lookup.
const MAX_LINKS: usize = 40;

pub(crate) type Comps = Vec<Vec<u8>>;

/// A root directory; with `ignore`, what .dockerignore excludes is treated as absent.
#[derive(Clone, Copy)]
pub(crate) struct Root<'a> {
    pub dir: &'a Path,
    pub ignore: Option<&'a DockerIgnore>,
}

/// The end of a lookup: the resolved components and, if it exists, its metadata.
pub(crate) struct Resolved {
    pub comps: Comps,
    pub md: Option<Metadata>,
}

/// Splits a `/`-separated path into components, dropping empty ones and `.`.
pub(crate) fn split(path: &[u8]) -> Vec<&[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".").collect()
}

pub(crate) fn join(comps: &[Vec<u8>]) -> Vec<u8> {
    comps.join(&b'/')
}

impl<'a> Root<'a> {
    pub fn path(&self, comps: &[Vec<u8>]) -> PathBuf {
        let mut p = self.dir.to_path_buf();
        for c in comps {
            p.push(std::ffi::OsStr::from_bytes(c));
        }
        p
    }

    /// Whether .dockerignore lets `rel` into the context (an excluded
    /// directory stays when an `!` pattern may re-include something below it).
    pub fn visible(&self, rel: &[u8], is_dir: bool) -> bool {
        let Some(ig) = self.ignore else { return true };
        let rel = String::from_utf8_lossy(rel);
        !ig.matches(&rel) || (is_dir && ig.may_include_under(&rel))
    }

    /// lstat of `comps`, `None` if absent or ignored.
    pub fn lstat(&self, comps: &[Vec<u8>]) -> std::io::Result<Option<Metadata>> {
        match std::fs::symlink_metadata(self.path(comps)) {
            Ok(md) if self.visible(&join(comps), md.is_dir()) => Ok(Some(md)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Resolves `rest` below the already resolved `base`, following symlinks
    /// inside the root (the last one only with `follow_last`). A missing
    /// component ends the walk: the remainder is appended lexically.
    pub fn resolve(&self, base: Comps, rest: &[&[u8]], follow_last: bool) -> Result<Resolved, String> {
        let mut cur = base;
        let mut todo: VecDeque<Vec<u8>> = rest.iter().map(|c| c.to_vec()).collect();
        let mut links = 0;
        let mut md = self.lstat(&cur).map_err(|e| e.to_string())?;
        while let Some(comp) = todo.pop_front() {
            if comp == b".." {
                cur.pop();
                md = self.lstat(&cur).map_err(|e| e.to_string())?;
                continue;
            }
            if md.as_ref().is_some_and(|m| !m.is_dir()) {
                return Err(format!("{} is not a directory", String::from_utf8_lossy(&join(&cur))));
            }
            cur.push(comp);
            md = self.lstat(&cur).map_err(|e| e.to_string())?;
            let Some(m) = &md else {
                // Absent: the rest cannot resolve through anything.
                for c in todo.drain(..) {
                    if c == b".." {
                        cur.pop();
                    } else {
                        cur.push(c);
                    }
                }
                return Ok(Resolved { comps: cur, md: None });
            };
            if m.file_type().is_symlink() && (follow_last || !todo.is_empty()) {
                links += 1;
                if links > MAX_LINKS {
                    return Err("too many levels of symbolic links".into());
                }
                let target = std::fs::read_link(self.path(&cur)).map_err(|e| e.to_string())?;
                let target = target.as_os_str().as_bytes();
                cur.pop();
                if target.starts_with(b"/") {
                    cur.clear();
                }
                for c in split(target).into_iter().rev() {
                    todo.push_front(c.to_vec());
                }
                md = self.lstat(&cur).map_err(|e| e.to_string())?;
            }
        }
        Ok(Resolved { comps: cur, md })
    }
}

/// Cleans a user-written path lexically; `None` if a `..` climbs above the start.
pub(crate) fn clean_relative(path: &[u8]) -> Option<Comps> {
    let mut out: Comps = Vec::new();
    for c in split(path) {
        if c == b".." {
            out.pop()?;
        } else {
            out.push(c.to_vec());
        }
    }
    Some(out)
}

/// Cleans a path against `/`: `..` at the top stays at the top.
pub(crate) fn clean_absolute(path: &[u8]) -> Comps {
    let mut out: Comps = Vec::new();
    for c in split(path) {
        if c == b".." {
            out.pop();
        } else {
            out.push(c.to_vec());
        }
    }
    out
}
