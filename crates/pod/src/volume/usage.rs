//! Who uses a volume, in a way that survives `kill -9`: each user holds a
//! shared flock on `<vol>/.use` and an exclusive one on `<vol>/users/<id>`
//! for as long as its container lives; `rm`/`prune` take `.use` exclusive
//! without waiting. The kernel drops a dead holder's locks, so nothing needs
//! to be counted or decremented. All lock fds are O_CLOEXEC (std opens them
//! so) and never reach a container.
//!
//! The local driver's `type=tmpfs|bind|…` volumes are mounted on `_data` by
//! the first user and unmounted by the last one to leave (or by `rm`/`prune`
//! when a killed last user left the mount behind).

use super::{Volume, Volumes};
use crate::error::{Error, Result};
use rustix::fs::{flock, FlockOperation};
use rustix::mount::{MountFlags, UnmountFlags};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// A container's use of one volume; dropping it lets the volume go.
#[derive(Debug)]
pub struct VolumeUse {
    volumes: Volumes,
    name: String,
    user_file: PathBuf,
    _user: File,
    use_lock: Option<File>,
    /// The driver's mount was made by this use (a fresh tmpfs: copy-up applies again).
    pub fresh_mount: bool,
    pub volume: Volume,
    /// Its locks are held by another process (the monitor): drop undoes nothing.
    handed_over: bool,
}

impl VolumeUse {
    /// Copies (same open file, same lock) of the use's lock fds.
    pub(crate) fn lock_fds(&self) -> Result<Vec<std::os::fd::OwnedFd>> {
        let dup = |f: &File| f.try_clone().map(std::os::fd::OwnedFd::from).map_err(|e| Error::io("dup lock", e));
        let mut out = vec![dup(&self._user)?];
        if let Some(u) = &self.use_lock {
            out.push(dup(u)?);
        }
        Ok(out)
    }

    /// Closes this process's fds only (another process holds the locks).
    pub(crate) fn hand_over(mut self) {
        self.handed_over = true;
    }
}

fn open_lock(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(format!("open {}", path.display()), e))
}

fn lock(f: &File, op: FlockOperation, path: &Path) -> Result<bool> {
    match flock(f.as_fd(), op) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(Error::io(format!("lock {}", path.display()), e.into())),
    }
}

/// `.use` held exclusively (nobody uses the volume), or None.
pub(super) fn try_exclusive(vol_dir: &Path) -> Result<Option<File>> {
    let p = vol_dir.join(".use");
    let f = open_lock(&p)?;
    Ok(lock(&f, FlockOperation::NonBlockingLockExclusive, &p)?.then_some(f))
}

/// The ids of the volume's users: those holding their `users/<id>` lock,
/// and those whose holder was killed but whose container is not cleaned up
/// yet (`<root>/containers/<id>` still there: the container may still run,
/// so its data must not go). Entries of users gone for good are removed.
pub(super) fn users(vol_dir: &Path, containers: &Path) -> Result<Vec<String>> {
    let dir = vol_dir.join("users");
    let rd = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("read {}", dir.display()), e)),
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let p = e.path();
        let id = e.file_name().to_string_lossy().into_owned();
        let Ok(f) = File::open(&p) else { continue };
        let held = !lock(&f, FlockOperation::NonBlockingLockExclusive, &p)?;
        if held || containers.join(&id).exists() {
            out.push(id);
        } else {
            let _ = fs::remove_file(&p);
        }
    }
    out.sort();
    Ok(out)
}

impl Volumes {
    /// After `container` exited (its monitor, which held its uses, gone):
    /// the last user out unmounts the driver's filesystem of the volumes it
    /// used. Its user entries stay while its record does (a stopped
    /// container still references its volumes, as Docker's).
    pub(crate) fn container_exited(&self, container: &str) {
        let Ok(_lock) = self.lock() else { return };
        for v in self.list().unwrap_or_default().into_iter().filter(|v| !v.options.is_empty()) {
            let dir = self.path(&v.name);
            if !dir.join("users").join(container).exists() {
                continue;
            }
            // `.use` free: no running container holds it any more.
            if let Ok(Some(_nobody)) = try_exclusive(&dir) {
                if let Err(e) = unmount_data(&dir) {
                    tracing::warn!("volume {}: {e}", v.name);
                }
            }
        }
    }

    /// Starts `container`'s use of volume `name` (mounting the driver's
    /// filesystem if this is the first user).
    pub fn acquire(&self, name: &str, container: &str) -> Result<VolumeUse> {
        let _lock = self.lock()?;
        let volume = self.get(name)?;
        let dir = self.path(name);
        if !volume.options.is_empty() {
            // A mount left by a user killed with -9 whose container is gone:
            // the first live user starts afresh. A killed user whose container
            // dir remains may still run on it: its mount stays.
            if let Some(_nobody) = try_exclusive(&dir)? {
                if users(&dir, &self.containers_dir())?.is_empty() {
                    unmount_data(&dir)?;
                }
            }
        }
        let use_path = dir.join(".use");
        let use_lock = open_lock(&use_path)?;
        lock(&use_lock, FlockOperation::LockShared, &use_path)?;
        let users = dir.join("users");
        fs::create_dir_all(&users).map_err(|e| Error::io(format!("create {}", users.display()), e))?;
        let user_file = users.join(container);
        let user = open_lock(&user_file)?;
        lock(&user, FlockOperation::LockExclusive, &user_file)?;
        let mut u = VolumeUse {
            volumes: self.clone(),
            name: name.to_string(),
            user_file,
            _user: user,
            use_lock: Some(use_lock),
            fresh_mount: false,
            volume,
            handed_over: false,
        };
        if !u.volume.options.is_empty() && !is_mountpoint(&u.volume.mountpoint) {
            mount_data(&u.volume.mountpoint, &u.volume.options)
                .map_err(|e| Error::io(format!("mount volume {name}"), e))?;
            u.fresh_mount = true;
        }
        Ok(u)
    }
}

impl Drop for VolumeUse {
    fn drop(&mut self) {
        if self.handed_over {
            return;
        }
        let _ = fs::remove_file(&self.user_file);
        drop(self.use_lock.take());
        if self.volume.options.is_empty() {
            return;
        }
        // The last user out unmounts the driver's filesystem.
        let Ok(_lock) = self.volumes.lock() else { return };
        let dir = self.volumes.path(&self.name);
        if let Ok(Some(_excl)) = try_exclusive(&dir) {
            if !users(&dir, &self.volumes.containers_dir()).is_ok_and(|u| u.is_empty()) {
                return;
            }
            if let Err(e) = unmount_data(&dir) {
                tracing::warn!("volume {}: {e}", self.name);
            }
        }
    }
}

/// Docker's local driver options: `type`, `device`, `o`.
pub(super) fn check_options(name: &str, opts: &BTreeMap<String, String>) -> Result<()> {
    for k in opts.keys() {
        if !matches!(k.as_str(), "type" | "device" | "o" | "size") {
            return Err(Error::InvalidArgument(format!("create {name}: invalid option key: {k:?}")));
        }
    }
    if opts.is_empty() {
        return Ok(());
    }
    let (flags, _) = mount_flags(opts.get("o").map_or("", String::as_str));
    if !opts.contains_key("type") && !flags.contains(MountFlags::BIND) {
        return Err(Error::InvalidArgument(format!("create {name}: missing required option: \"type\"")));
    }
    if flags.contains(MountFlags::BIND) {
        let dev = opts.get("device").map(String::as_str).unwrap_or("");
        if !dev.starts_with('/') {
            return Err(Error::InvalidArgument(format!(
                "create {name}: a bind volume needs an absolute device= path, got {dev:?}"
            )));
        }
    }
    Ok(())
}

/// `o=` split into mount flags and the filesystem's own data.
fn mount_flags(o: &str) -> (MountFlags, String) {
    let mut flags = MountFlags::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        match opt {
            "bind" => flags |= MountFlags::BIND,
            "rbind" => flags |= MountFlags::BIND | MountFlags::REC,
            "ro" => flags |= MountFlags::RDONLY,
            "rw" => {}
            "nosuid" => flags |= MountFlags::NOSUID,
            "nodev" => flags |= MountFlags::NODEV,
            "noexec" => flags |= MountFlags::NOEXEC,
            "noatime" => flags |= MountFlags::NOATIME,
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

/// Mounts the volume's filesystem on `_data` as Docker's local driver does.
fn mount_data(data_dir: &Path, opts: &BTreeMap<String, String>) -> std::io::Result<()> {
    let (flags, data) = mount_flags(opts.get("o").map_or("", String::as_str));
    let fstype = opts.get("type").map_or("none", String::as_str);
    let device = opts.get("device").map_or(fstype, String::as_str);
    let data = (!data.is_empty()).then(|| CString::new(data)).transpose()?;
    rustix::mount::mount(device, data_dir, fstype, flags, data.as_deref())?;
    if flags.contains(MountFlags::BIND) && flags.contains(MountFlags::RDONLY) {
        // A bind ignores MS_RDONLY until remounted.
        rustix::mount::mount_remount(data_dir, MountFlags::BIND | MountFlags::RDONLY, "")?;
    }
    Ok(())
}

/// Unmounts `<vol>/_data` if something is mounted there.
pub(super) fn unmount_data(vol_dir: &Path) -> Result<()> {
    let data = vol_dir.join("_data");
    while is_mountpoint(&data) {
        rustix::mount::unmount(&data, UnmountFlags::DETACH)
            .map_err(|e| Error::io(format!("unmount {}", data.display()), e.into()))?;
    }
    Ok(())
}

/// True when `path` is a mount point (from /proc/self/mountinfo).
pub(crate) fn is_mountpoint(path: &Path) -> bool {
    let Ok(path) = fs::canonicalize(path) else { return false };
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else { return false };
    info.lines().filter_map(|l| l.split(' ').nth(4)).any(|m| Path::new(&unescape(m)) == path)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn mountinfo_escapes() {
        assert_eq!(super::unescape("/a\\040b"), "/a b");
        assert_eq!(super::unescape("/plain"), "/plain");
    }

    // Broke: a tmpfs volume's next user unmounted it (its data gone) under a
    // killed user whose container dir remained, its container maybe still running.
    #[test]
    fn a_killed_user_with_a_container_dir_keeps_the_mount() {
        if !rustix::process::geteuid().is_root() {
            assert!(std::env::var_os("WHARF_SKIP_PRIVILEGED").is_some(), "needs root (or WHARF_SKIP_PRIVILEGED=1)");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let vols = super::Volumes::new(tmp.path());
        let opts = [("type", "tmpfs"), ("device", "tmpfs")].map(|(k, v)| (k.to_string(), v.to_string()));
        let req = crate::volume::CreateVolume { name: Some("tv".into()), options: opts.into(), ..Default::default() };
        vols.create(&req).unwrap();
        let mut a = vols.acquire("tv", "killed").unwrap();
        std::fs::create_dir_all(tmp.path().join("containers/killed")).unwrap();
        let data = a.volume.mountpoint.clone();
        std::fs::write(data.join("f"), "kept").unwrap();
        // `killed` dies as kill -9 would: its locks go, its files stay.
        drop(a.use_lock.take());
        drop(std::mem::replace(&mut a._user, std::fs::File::open("/dev/null").unwrap()));
        std::mem::forget(a);
        let b = vols.acquire("tv", "next").unwrap();
        assert_eq!(std::fs::read_to_string(data.join("f")).unwrap(), "kept");
        drop(b);
        assert!(super::is_mountpoint(&data), "the killed user's container may still use it");
        std::fs::remove_dir(tmp.path().join("containers/killed")).unwrap();
        vols.remove("tv").unwrap();
        assert!(!super::is_mountpoint(&data));
    }

    #[test]
    fn driver_options() {
        let (f, d) = super::mount_flags("size=100m,ro,uid=1000");
        assert!(f.contains(rustix::mount::MountFlags::RDONLY));
        assert_eq!(d, "size=100m,uid=1000");
    }
}
