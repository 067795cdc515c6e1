//! Compiled seccomp programs kept beside the state root, so that only the
//! first container with a given profile pays libseccomp's compile time (crun
//! keeps a similar cache). An entry stores its full key — the profile's JSON
//! and the libseccomp version — and is used only if that key matches byte
//! for byte, so a hash collision can never hand out the wrong filter.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;

use super::Filter;

/// The cache sits beside the state root, not in it: callers (and their
/// leak checks) expect the state root to hold containers only.
fn dir(root: &Path) -> PathBuf {
    let name = root.file_name().map_or("wharf-runtime".into(), |n| n.to_string_lossy());
    root.with_file_name(format!("{name}-seccomp-cache"))
}
/// Profiles are few (one per capability set in practice); stop writing past this.
const MAX_ENTRIES: usize = 64;

#[repr(C)]
struct Version {
    major: u32,
    minor: u32,
    micro: u32,
}

extern "C" {
    fn seccomp_version() -> *const Version;
}

/// Everything the generated program depends on.
pub(super) fn key(s: &LinuxSeccomp) -> Option<Vec<u8>> {
    // SAFETY: libseccomp returns a pointer to a static struct.
    let v = unsafe { &*seccomp_version() };
    let mut k = format!("{} {}.{}.{}\n", std::env::consts::ARCH, v.major, v.minor, v.micro).into_bytes();
    serde_json::to_writer(&mut k, s).ok()?;
    Some(k)
}

fn path(root: &Path, key: &[u8]) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    dir(root).join(format!("{:016x}", h.finish()))
}

/// Entry layout: key length (u32 LE), key, flags (u64 LE), BPF instructions.
pub(super) fn get(root: &Path, key: &[u8]) -> Option<Filter> {
    let p = path(root, key);
    // The program is trusted as is: only if nobody but us could have written it.
    if !p.parent().is_some_and(private) || !private(&p) {
        return None;
    }
    let data = std::fs::read(&p).ok()?;
    let klen = u32::from_le_bytes(data.get(..4)?.try_into().ok()?) as usize;
    if data.get(4..4 + klen)? != key {
        return None;
    }
    let rest = data.get(4 + klen..)?;
    let flags = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
    let prog = super::decode(&rest[8..]);
    (!prog.is_empty()).then_some(Filter { prog, flags })
}

/// Owned by our effective uid and not writable by group or others.
fn private(p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    std::fs::symlink_metadata(p).is_ok_and(|m| m.uid() == me && m.mode() & 0o022 == 0)
}

/// Best effort: a cache that cannot be written only costs time.
#[cold]
pub(super) fn put(root: &Path, key: &[u8], f: &Filter) {
    let p = path(root, key);
    let Some(dir) = p.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() || std::fs::read_dir(dir).map_or(0, |d| d.count()) >= MAX_ENTRIES {
        return;
    }
    let mut data = Vec::with_capacity(12 + key.len() + f.prog.len() * 8);
    data.extend_from_slice(&(key.len() as u32).to_le_bytes());
    data.extend_from_slice(key);
    data.extend_from_slice(&f.flags.to_le_bytes());
    for i in &f.prog {
        data.extend_from_slice(&i.code.to_ne_bytes());
        data.extend_from_slice(&[i.jt, i.jf]);
        data.extend_from_slice(&i.k.to_ne_bytes());
    }
    let tmp = p.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, &data).is_err() || std::fs::rename(&tmp, &p).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_checks_the_full_key() {
        let t = tempfile::tempdir().unwrap();
        let d = tempfile::tempdir_in(t.path()).unwrap();
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}]}))
        .unwrap();
        let k = key(&s).unwrap();
        let f = super::super::compile(Some(&s)).unwrap().unwrap();
        put(d.path(), &k, &f);
        let g = get(d.path(), &k).unwrap();
        assert_eq!(g.prog.len(), f.prog.len());
        assert!(g.prog.iter().zip(&f.prog).all(|(a, b)| (a.code, a.jt, a.jf, a.k) == (b.code, b.jt, b.jf, b.k)));
        // Same file name, different key: a miss, not a wrong filter.
        let mut other = k.clone();
        other.push(b' ');
        std::fs::rename(path(d.path(), &k), path(d.path(), &other)).unwrap();
        assert!(get(d.path(), &other).is_none());
    }
}
