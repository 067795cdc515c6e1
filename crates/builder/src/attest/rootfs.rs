//! The final image's filesystem read from its unpacked layers (the store's
//! snapshots, overlayfs format) without mounting them: a path is looked up
//! top layer first; a whiteout (0/0 char device) hides it, an opaque dir
//! (`trusted.overlay.opaque=y`) or a non-directory hides what lies below.
//! Symlinks are followed inside the image (absolute ones from its root).

use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;

pub(crate) struct LayeredFs {
    /// Snapshot dirs, top first.
    layers: Vec<PathBuf>,
}

const MAX_READ: u64 = 64 << 20;

fn is_whiteout(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(p: &std::path::Path) -> bool {
    rustix::fs::lgetxattr(p, "trusted.overlay.opaque", &mut [0u8; 4]).is_ok_and(|n| n == 1)
        || rustix::fs::lgetxattr(p, "user.overlay.opaque", &mut [0u8; 4]).is_ok_and(|n| n == 1)
}

fn parts(path: &str) -> Vec<String> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".").map(str::to_string).collect()
}

impl LayeredFs {
    pub(crate) fn new(layers: Vec<PathBuf>) -> Self {
        LayeredFs { layers }
    }

    /// The entry `rel` (no symlink resolved) in the topmost layer that has it.
    fn find(&self, rel: &[String]) -> Option<PathBuf> {
        'layers: for layer in &self.layers {
            // What this layer says of the parents: a whiteout, a file or an
            // opaque dir hides the lower layers.
            let mut p = layer.clone();
            for (i, c) in rel.iter().enumerate() {
                p.push(c);
                let Ok(m) = std::fs::symlink_metadata(&p) else { continue 'layers };
                if i + 1 == rel.len() {
                    return (!is_whiteout(&m)).then_some(p);
                }
                if !m.is_dir() || is_opaque(&p) {
                    // Hidden below; the path may still exist in this layer further down.
                    if !m.is_dir() {
                        return None;
                    }
                    let rest: PathBuf = rel[i + 1..].iter().collect();
                    let full = p.join(rest);
                    return std::fs::symlink_metadata(&full).ok().filter(|m| !is_whiteout(m)).map(|_| full);
                }
            }
            return Some(p); // the root
        }
        None
    }

    /// `path` with every symlink followed; its real file in a layer.
    fn resolve(&self, path: &str) -> Option<PathBuf> {
        let mut cur: Vec<String> = Vec::new();
        let mut queue: std::collections::VecDeque<String> = parts(path).into();
        let mut hops = 0;
        while let Some(c) = queue.pop_front() {
            if c == ".." {
                cur.pop();
                continue;
            }
            cur.push(c);
            let real = self.find(&cur)?;
            let m = std::fs::symlink_metadata(&real).ok()?;
            if m.file_type().is_symlink() {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                let target = std::fs::read_link(&real).ok()?;
                let target = target.to_string_lossy();
                cur.pop();
                if target.starts_with('/') {
                    cur.clear();
                }
                for (i, t) in parts(&target).into_iter().enumerate() {
                    queue.insert(i, t);
                }
            }
        }
        self.find(&cur)
    }

    /// The bytes of a regular file (None: absent, not a file, too large).
    pub(crate) fn read(&self, path: &str) -> Option<Vec<u8>> {
        let p = self.resolve(path)?;
        let m = std::fs::metadata(&p).ok()?;
        if !m.is_file() || m.len() > MAX_READ {
            return None;
        }
        std::fs::read(p).ok()
    }

    pub(crate) fn read_string(&self, path: &str) -> Option<String> {
        self.read(path).map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// The names in directory `path`, merged over the layers, sorted.
    pub(crate) fn list(&self, path: &str) -> Vec<String> {
        let Some(real) = self.resolve(path) else { return Vec::new() };
        // The canonical path: where `real` sits under its layer.
        let Some(rel) = self.layers.iter().find_map(|l| real.strip_prefix(l).ok().map(|r| r.to_path_buf())) else {
            return Vec::new();
        };
        let mut seen = std::collections::BTreeMap::new();
        for layer in &self.layers {
            let d = layer.join(&rel);
            let Ok(m) = std::fs::symlink_metadata(&d) else {
                if self.hidden_in(layer, &rel) {
                    break;
                }
                continue;
            };
            if !m.is_dir() {
                break;
            }
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let white = e.metadata().is_ok_and(|m| is_whiteout(&m));
                seen.entry(name).or_insert(!white);
            }
            if is_opaque(&d) {
                break;
            }
        }
        seen.into_iter().filter(|(_, live)| *live).map(|(n, _)| n).collect()
    }

    /// Every regular file of the image (links not followed), by path, with
    /// the file in the layer that has it; `/proc`, `/sys` and `/dev` are
    /// skipped, and the walk stops after `max` files.
    pub(crate) fn files(&self, max: usize) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        let mut dirs = vec![String::new()];
        while let Some(dir) = dirs.pop() {
            for name in self.list(if dir.is_empty() { "/" } else { &dir }) {
                let path = format!("{dir}/{name}");
                if matches!(path.as_str(), "/proc" | "/sys" | "/dev") {
                    continue;
                }
                let Some(real) = self.find(&parts(&path)) else { continue };
                let Ok(m) = std::fs::symlink_metadata(&real) else { continue };
                if m.is_dir() {
                    dirs.push(path);
                } else if m.is_file() {
                    out.push((path, real));
                    if out.len() >= max {
                        return out;
                    }
                }
            }
        }
        out
    }

    /// Whether `layer` hides `rel` of the layers below (a parent is a
    /// whiteout, a file or an opaque dir).
    fn hidden_in(&self, layer: &std::path::Path, rel: &std::path::Path) -> bool {
        let mut p = layer.to_path_buf();
        for c in rel.components() {
            p.push(c);
            match std::fs::symlink_metadata(&p) {
                Err(_) => return false,
                Ok(m) if !m.is_dir() => return true,
                Ok(_) if is_opaque(&p) => return true,
                Ok(_) => {}
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_symlinks_and_whiteouts() {
        let t = tempfile::tempdir().unwrap();
        let (low, up) = (t.path().join("low"), t.path().join("up"));
        std::fs::create_dir_all(low.join("usr/lib")).unwrap();
        std::fs::create_dir_all(low.join("etc")).unwrap();
        std::fs::write(low.join("usr/lib/os-release"), "ID=debian\n").unwrap();
        std::os::unix::fs::symlink("../usr/lib/os-release", low.join("etc/os-release")).unwrap();
        std::os::unix::fs::symlink("usr/lib", low.join("lib")).unwrap();
        std::fs::create_dir_all(low.join("var/lib/dpkg/status.d")).unwrap();
        std::fs::write(low.join("var/lib/dpkg/status.d/a"), "a").unwrap();
        std::fs::write(low.join("var/lib/dpkg/status.d/b"), "b").unwrap();
        std::fs::create_dir_all(up.join("var/lib/dpkg/status.d")).unwrap();
        std::fs::write(up.join("var/lib/dpkg/status.d/c"), "c").unwrap();
        let fs = LayeredFs::new(vec![up.clone(), low.clone()]);
        assert_eq!(fs.read_string("/etc/os-release").as_deref(), Some("ID=debian\n"));
        assert_eq!(fs.read_string("lib/os-release").as_deref(), Some("ID=debian\n"));
        assert_eq!(fs.list("/var/lib/dpkg/status.d"), ["a", "b", "c"]);
        assert_eq!(fs.read_string("/var/lib/dpkg/status.d/a").as_deref(), Some("a"));
        assert!(fs.read("/nope").is_none());
        assert!(fs.read("/usr").is_none());
        // A loop of links ends.
        std::os::unix::fs::symlink("loop2", low.join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", low.join("loop2")).unwrap();
        assert!(fs.read("/loop1").is_none());
        // The walk: files of every layer, links not followed (lib -> usr/lib).
        let mut files: Vec<String> = fs.files(1000).into_iter().map(|(p, _)| p).collect();
        files.sort();
        assert_eq!(
            files,
            ["/usr/lib/os-release", "/var/lib/dpkg/status.d/a", "/var/lib/dpkg/status.d/b", "/var/lib/dpkg/status.d/c"]
        );
        assert_eq!(fs.files(2).len(), 2);
    }
}
