//! Helpers shared by the layer tests (a directory, so not a test target of its own): reading tars
//! back, snapshots of directory trees, the privilege rule and leak checks.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// True if the test may run; fails without root unless WHARF_SKIP_PRIVILEGED=1.
pub fn privileged(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    if std::env::var("WHARF_SKIP_PRIVILEGED").as_deref() == Ok("1") {
        eprintln!("SKIPPED {test}: needs root (WHARF_SKIP_PRIVILEGED=1)");
        return false;
    }
    panic!("{test} needs root: run as root, or set WHARF_SKIP_PRIVILEGED=1 to skip privileged tests");
}

/// One tar entry as read back, PAX applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub link: Option<String>,
    pub data: Vec<u8>,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

pub fn read_tar(bytes: &[u8]) -> Vec<Entry> {
    let mut ar = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let mut xattrs = Vec::new();
        if let Some(pax) = e.pax_extensions().unwrap() {
            for ext in pax {
                let ext = ext.unwrap();
                if let Some(k) = ext.key().unwrap().strip_prefix("SCHILY.xattr.") {
                    xattrs.push((k.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
        let h = e.header().clone();
        let kind = match h.entry_type() {
            tar::EntryType::Regular => 'f',
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            tar::EntryType::Fifo => 'p',
            tar::EntryType::Char => 'c',
            tar::EntryType::Block => 'b',
            other => panic!("unexpected entry type {other:?}"),
        };
        let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let link = e.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned());
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let (uid, gid, mtime) = (e.header().uid().unwrap(), e.header().gid().unwrap(), e.header().mtime().unwrap());
        out.push(Entry { path, kind, mode: h.mode().unwrap(), uid, gid, mtime, link, data, xattrs });
    }
    out
}

pub fn paths(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.path.as_str()).collect()
}

pub fn find<'a>(entries: &'a [Entry], path: &str) -> &'a Entry {
    entries.iter().find(|e| e.path == path).unwrap_or_else(|| panic!("no entry {path} in {:?}", paths(entries)))
}

/// What a tree comparison looks at: type, mode, owner, content or target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub content: Vec<u8>,
}

pub fn tree(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    walk(root, "", &mut out);
    out
}

fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Node>) {
    let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    for name in names {
        let p = dir.join(&name);
        let rel = format!("{prefix}{}", String::from_utf8_lossy(name.as_bytes()));
        let md = std::fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        let (kind, content) = if ft.is_dir() {
            ("dir", Vec::new())
        } else if ft.is_symlink() {
            ("symlink", std::fs::read_link(&p).unwrap().as_os_str().as_bytes().to_vec())
        } else if ft.is_file() {
            ("file", std::fs::read(&p).unwrap())
        } else {
            ("special", md.rdev().to_le_bytes().to_vec())
        };
        let mode = if ft.is_symlink() { 0o777 } else { md.permissions().mode() & 0o7777 };
        out.insert(rel.clone(), Node { kind, mode, uid: md.uid(), gid: md.gid(), content });
        if ft.is_dir() {
            walk(&p, &format!("{rel}/"), out);
        }
    }
}

/// Mount points at or below `dir` (for leak checks).
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let d = dir.to_string_lossy().into_owned();
    info.lines().filter_map(|l| l.split(' ').nth(4)).filter(|m| m.starts_with(&d)).map(str::to_string).collect()
}

pub fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

pub fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn set_mtime(path: &Path, secs: i64) {
    let t = rustix::fs::Timespec { tv_sec: secs, tv_nsec: 0 };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &rustix::fs::Timestamps { last_access: t, last_modification: t },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// Unmounts what it mounted (last first), even when an assertion fails.
pub struct Mounts(pub Vec<std::path::PathBuf>);

impl Mounts {
    pub fn mount(&mut self, target: &Path, fstype: &str, opts: &str) {
        let st =
            std::process::Command::new("mount").args(["-t", fstype, fstype, "-o", opts]).arg(target).status().unwrap();
        assert!(st.success(), "mount {fstype} {opts}");
        self.0.push(target.to_path_buf());
    }
    pub fn overlay(&mut self, target: &Path, opts: &str) {
        self.mount(target, "overlay", opts);
    }
    pub fn unmount_all(&mut self) {
        while let Some(t) = self.0.pop() {
            let _ = std::process::Command::new("umount").arg(&t).status();
        }
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        self.unmount_all();
    }
}
