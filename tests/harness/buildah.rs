//! buildah beside wharf: a private buildah store (vfs, chroot isolation)
//! and views of an image (its file tree, its config fields) to compare the
//! two builders' results.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use wharf_image::Store;

use crate::require_tool;

/// A buildah with its own root, run root and registries.conf (no registry).
pub struct Buildah {
    pub dir: tempfile::TempDir,
}

impl Buildah {
    pub fn new() -> Self {
        let b = Buildah { dir: tempfile::Builder::new().prefix("wharf-buildah-").tempdir().unwrap() };
        std::fs::write(b.dir.path().join("registries.conf"), "unqualified-search-registries = []\n").unwrap();
        b
    }

    pub fn cmd(&self) -> Command {
        let d = self.dir.path();
        let mut c = Command::new(require_tool("buildah"));
        c.env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"))
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("run"))
            .args(["--storage-driver", "vfs"]);
        c
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(out.status.success(), "buildah {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Default for Buildah {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Buildah {
    fn drop(&mut self) {
        // vfs needs no unmounts; a build container left behind is removed.
        let _ = self.cmd().args(["rm", "--all"]).output();
    }
}

/// Every path under `root` → "type mode uid:gid content-or-target".
pub fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, p: &Path, out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(p).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let md = std::fs::symlink_metadata(&path).unwrap();
            let rel = format!("/{}", path.strip_prefix(root).unwrap().display());
            let ft = md.file_type();
            let what = if ft.is_symlink() {
                format!("link {}", std::fs::read_link(&path).unwrap().display())
            } else if ft.is_dir() {
                "dir".to_string()
            } else if ft.is_file() {
                format!("file {}", wharf_image::digest::of_bytes(&std::fs::read(&path).unwrap()))
            } else {
                format!("special {:o}", md.mode() & 0o170000)
            };
            let mode = if ft.is_symlink() { 0 } else { md.mode() & 0o7777 };
            out.insert(rel, format!("{what} {mode:o} {}:{}", md.uid(), md.gid()));
            if ft.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    walk(root, root, &mut out);
    out
}

/// The tree and config of image `name` in the OCI layout or store at `root`.
pub fn image_view(root: &Path, name: &str, work: &Path) -> (BTreeMap<String, String>, serde_json::Value) {
    let store = Store::open(root).unwrap();
    let img = store.resolve(name).unwrap();
    let dir = work.join(format!("view-{}", name.replace(['/', ':'], "_")));
    let rootfs = store.mount_rootfs(&img, &dir).unwrap();
    let t = tree(&rootfs.merged);
    wharf_image::Rootfs::remove(&dir).unwrap();
    let mut cfg = serde_json::to_value(img.config.config()).unwrap();
    if let Some(l) = cfg.get_mut("Labels").and_then(|l| l.as_object_mut()) {
        l.remove("io.buildah.version");
    }
    let keep = ["Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Labels", "Volumes", "StopSignal"];
    let cfg = serde_json::Value::Object(
        cfg.as_object()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, v)| keep.contains(&k.as_str()) && !v.is_null() && *v != serde_json::json!({}))
            .collect(),
    );
    (t, cfg)
}
