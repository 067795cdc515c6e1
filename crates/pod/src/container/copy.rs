//! `cp`: files between a container and the host, or a tar stream, with
//! Docker's rules for where the copy lands.
//!
//! Paths inside a container are resolved from a descriptor of its root
//! with `openat2(RESOLVE_IN_ROOT)`: a symlink in the container, absolute
//! or `..`, resolves as it would for the container's processes and can
//! never lead out to the host. Trees are read and written with `*at`
//! calls relative to directory descriptors and `O_NOFOLLOW`, so nothing a
//! container changes meanwhile redirects the copy. A running container's
//! root is `/proc/<init>/root` (its volumes and tmpfs included); a stopped
//! one's rootfs is mounted for the copy (under its owner lock, so it cannot
//! start meanwhile) and unmounted after. Archives from a container are
//! extracted on the host the same way, rooted at the destination.
//!
//! Ownership follows Docker: copied into a container, files keep the
//! uid/gid of the archive (the host's, or the `-` stream's), or with `-a`
//! belong to the container's user; copied out, they belong to the caller.

use super::record::{self, Container};
use super::Containers;
use crate::error::{Error, Result};
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use wharf_image::Store;

#[path = "copy_tar.rs"]
mod tarfs;

pub use tarfs::Owner;

#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions {
    /// `-a`: copied into a container, files belong to its user.
    pub archive: bool,
    /// `-L`: follow a symlink that is the source.
    pub follow_link: bool,
}

/// Where `cp`'s bytes come from or go on the host side.
pub enum HostEnd<'a> {
    Path(&'a Path),
    /// A tar stream (`-`).
    Reader(&'a mut dyn Read),
    Writer(&'a mut dyn Write),
}

fn io(what: &str, p: &str, e: rustix::io::Errno) -> Error {
    Error::io(format!("{what} {p}"), e.into())
}

/// Opens `path` under `root` as an `O_PATH` descriptor, symlinks resolved
/// inside `root` (the last one only with `follow`).
pub(crate) fn resolve(root: impl AsFd, path: &str, follow: bool) -> rustix::io::Result<OwnedFd> {
    let mut flags = OFlags::PATH | OFlags::CLOEXEC;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let p = if path.trim_start_matches('/').is_empty() { "." } else { path.trim_start_matches('/') };
    rustix::fs::openat2(root, p, flags, Mode::empty(), ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS)
}

/// The last component of `p` ("" for `/`), and its parent.
fn split(p: &str) -> (String, String) {
    let t = p.trim_end_matches('/');
    match t.rsplit_once('/') {
        Some((parent, name)) => (if parent.is_empty() { "/".into() } else { parent.into() }, name.into()),
        None => (".".into(), t.into()),
    }
}

/// Docker's placement: the directory to extract into and the name of the
/// archive's top entry there ("" = the source directory's contents).
/// `dest`: whether the destination exists and is a directory.
fn place(src: &str, src_is_dir: bool, dest: &str, dest_is: Option<bool>) -> Result<(String, String)> {
    let contents = src_is_dir && (src.ends_with("/.") || src == ".");
    let (_, src_name) = split(src.trim_end_matches("/."));
    let (parent, dest_name) = split(dest);
    match dest_is {
        Some(true) => Ok((dest.to_string(), if contents { String::new() } else { src_name })),
        Some(false) if src_is_dir => {
            Err(Error::InvalidArgument(format!("cannot copy a directory to a file: {dest} is not a directory")))
        }
        Some(false) => Ok((parent, dest_name)),
        None if dest.ends_with('/') && !src_is_dir => {
            Err(Error::InvalidArgument(format!("destination directory {dest} does not exist")))
        }
        None => Ok((parent, dest_name)),
    }
}

/// What is at `path` under `root`: None if nothing, Some(is_dir).
fn kind_at(root: impl AsFd, path: &str) -> Result<Option<bool>> {
    match resolve(root, path, true) {
        Ok(fd) => Ok(Some(
            FileType::from_raw_mode(rustix::fs::fstat(&fd).map_err(|e| io("stat", path, e))?.st_mode)
                == FileType::Directory,
        )),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(rustix::io::Errno::NOTDIR) => Ok(None),
        Err(e) => Err(io("resolve", path, e)),
    }
}

/// The host filesystem's root, for host paths.
fn host_root() -> Result<OwnedFd> {
    rustix::fs::open("/", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| io("open", "/", e))
}

/// Host paths relative to the working directory, made absolute.
fn host_path(p: &Path) -> String {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut s = abs.to_string_lossy().into_owned();
    // absolute() drops a trailing "/." or "/": Docker's rules need them.
    let orig = p.to_string_lossy();
    if orig.ends_with("/.") && !s.ends_with("/.") {
        s.push_str("/.");
    } else if orig.ends_with('/') && !s.ends_with('/') {
        s.push('/');
    }
    s
}

/// The container's root, for as long as `f` runs.
fn with_root<T>(cs: &Containers, store: &Store, c: &Container, f: impl FnOnce(&OwnedFd) -> Result<T>) -> Result<T> {
    if c.is_running() {
        if let Ok(rt) = wharf_runtime::Container::load(&cs.state_root(), c.id()) {
            let p = format!("/proc/{}/root", rt.pid());
            let root = rustix::fs::open(&p, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| io("open", &p, e))?;
            // Still the container's init once opened (not a reused pid):
            // its parent is the container's monitor.
            if c.state.monitor_pid <= 0 || parent_of(rt.pid()) == Some(c.state.monitor_pid) {
                return f(&root);
            }
            return Err(Error::Conflict(format!("container {} is not running", c.id())));
        }
    }
    // Stopped: its rootfs, mounted for the copy under the owner lock.
    cs.sweep();
    let lock = super::lifecycle::lock_for_cleanup(&c.dir)?
        .ok_or_else(|| Error::Conflict(format!("container {} is starting or running; try again", c.id())))?;
    if c.dir.join(record::ACTIVE).exists() {
        // Its monitor died before cleaning up (the sweep lost a race).
        cs.cleanup_locked(c.id(), false)?;
    }
    let rec = record::load_record(&c.dir)?;
    let merged = {
        let _content = store.content_lock()?;
        let img = store.resolve(&rec.image_digest).or_else(|_| store.resolve(&rec.image))?;
        store.mount_rootfs(&img, &c.dir)?.merged
    };
    let unmount = Unmount(&merged);
    let root = rustix::fs::open(&merged, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| io("open", &merged.to_string_lossy(), e))?;
    bind_volumes(cs, &rec, &root)?;
    let out = f(&root);
    drop(root);
    drop(unmount);
    drop(lock);
    out
}

/// A stopped container's volumes and bind mounts, bound where it would
/// see them (the targets resolved inside its rootfs), so that `cp` reads
/// and writes them as Docker does; they go with the rootfs's lazy unmount.
fn bind_volumes(cs: &Containers, rec: &record::Record, root: &OwnedFd) -> Result<()> {
    use crate::volume::mounts::MountKind;
    let o = &rec.options;
    let mut specs = crate::volume::mounts::parse_run_flags(&o.volumes, &o.mounts, &o.tmpfs)?;
    specs.sort_by_key(|m| m.target.matches('/').count());
    let vols = crate::volume::Volumes::new(cs.root());
    for m in specs {
        let source = match &m.kind {
            MountKind::Bind { source, .. } => source.clone(),
            MountKind::Volume { name: Some(n), .. } => match vols.get(n) {
                Ok(v) => v.mountpoint,
                Err(_) => continue, // made at the first start
            },
            MountKind::Volume { name: None, .. } => {
                match rec.anonymous_volumes.iter().find(|(t, _)| *t == m.target).and_then(|(_, n)| vols.get(n).ok()) {
                    Some(v) => v.mountpoint,
                    None => continue,
                }
            }
            MountKind::Tmpfs { .. } => continue, // empty while stopped
        };
        if !source.exists() {
            continue;
        }
        let is_dir = source.is_dir();
        let target = match resolve(root, &m.target, true) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => {
                let (parent, name) = split(&m.target);
                let pfd = tarfs::mkdir_all(root, &parent)?;
                let made = if is_dir {
                    rustix::fs::mkdirat(&pfd, name.as_str(), Mode::from_raw_mode(0o755))
                } else {
                    rustix::fs::openat(
                        &pfd,
                        name.as_str(),
                        OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o644),
                    )
                    .map(drop)
                };
                made.map_err(|e| io("create", &m.target, e))?;
                resolve(root, &m.target, true).map_err(|e| io("resolve", &m.target, e))?
            }
            Err(e) => return Err(io("resolve", &m.target, e)),
        };
        // Onto the resolved target itself, through our descriptor of it.
        let at = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&target));
        rustix::mount::mount_bind(&source, &at).map_err(|e| io("bind", &m.target, e))?;
        if m.readonly {
            // The new mount, looked up again (our descriptor is of what it covers).
            let top = resolve(root, &m.target, true).map_err(|e| io("resolve", &m.target, e))?;
            let at = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&top));
            let flags = rustix::mount::MountFlags::BIND | rustix::mount::MountFlags::RDONLY;
            rustix::mount::mount_remount(&at, flags, "").map_err(|e| io("remount read-only", &m.target, e))?;
        }
    }
    Ok(())
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.split_whitespace().nth(1)?.parse().ok()
}

struct Unmount<'a>(&'a Path);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

/// The container user's uid and gid (`-a`): numbers, or names in its /etc files.
fn container_user(root: &OwnedFd, user: Option<&str>) -> (u32, u32) {
    let Some(user) = user.filter(|u| !u.is_empty()) else { return (0, 0) };
    let (u, g) = user.split_once(':').map_or((user, None), |(u, g)| (u, Some(g)));
    let lookup = |file: &str, name: &str| -> Option<(u32, u32)> {
        let fd = resolve(root, file, true).ok()?;
        let mut text = String::new();
        std::fs::File::open(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)))
            .ok()?
            .take(1 << 20)
            .read_to_string(&mut text)
            .ok()?;
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name))
                .then(|| Some((f.get(2)?.parse().ok()?, f.get(3).and_then(|g| g.parse().ok()).unwrap_or(0))))?
        })
    };
    let (uid, mut gid) = match u.parse::<u32>() {
        Ok(n) => (n, lookup("/etc/passwd", u).map_or(n, |(_, g)| g)),
        Err(_) => lookup("/etc/passwd", u).unwrap_or((0, 0)),
    };
    if let Some(g) = g {
        gid = g.parse().ok().or_else(|| lookup("/etc/group", g).map(|(g, _)| g)).unwrap_or(gid);
    }
    (uid, gid)
}

impl Containers {
    /// `cp CONTAINER:SRC DEST`: `SRC` out of `c` to a host path or a tar stream.
    pub fn copy_from(&self, store: &Store, c: &Container, src: &str, dest: HostEnd<'_>, o: CopyOptions) -> Result<()> {
        let not_found = || Error::InvalidArgument(format!("Could not find the file {src} in container {}", c.name()));
        with_root(self, store, c, |root| {
            let src_fd = match resolve(root, src.trim_end_matches("/."), o.follow_link) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) => return Err(not_found()),
                Err(e) => return Err(io("resolve", src, e)),
            };
            let st = rustix::fs::fstat(&src_fd).map_err(|e| io("stat", src, e))?;
            let src_is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
            if src.ends_with('/') && !src_is_dir {
                return Err(Error::InvalidArgument(format!("{src}: not a directory")));
            }
            match dest {
                HostEnd::Writer(w) => {
                    let contents = src_is_dir && src.ends_with("/.");
                    let top = if contents { String::new() } else { split(src.trim_end_matches("/.")).1 };
                    tarfs::write_tree(&src_fd, &top, w)
                }
                HostEnd::Reader(_) => Err(Error::InvalidArgument("copy from a container to a reader".into())),
                HostEnd::Path(p) => {
                    let dest = host_path(p);
                    let host = host_root()?;
                    let (dir, top) = place(src, src_is_dir, &dest, kind_at(&host, &dest)?)?;
                    let dir_fd = rustix::fs::open(
                        dir.as_str(),
                        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| io("open", &dir, e))?;
                    pipe(|w| tarfs::write_tree(&src_fd, &top, w), |r| tarfs::extract(&dir_fd, "/", r, Owner::Caller))
                }
            }
        })
    }

    /// `cp SRC CONTAINER:DEST`: a host path or a tar stream into `c`.
    pub fn copy_to(&self, store: &Store, c: &Container, src: HostEnd<'_>, dest: &str, o: CopyOptions) -> Result<()> {
        with_root(self, store, c, |root| {
            let owner = if o.archive {
                let (u, g) = container_user(root, c.record.options.user.as_deref());
                Owner::Set(u, g)
            } else {
                Owner::Keep
            };
            match src {
                HostEnd::Reader(r) => {
                    if kind_at(root, dest)? != Some(true) {
                        return Err(Error::InvalidArgument(format!(
                            "destination \"{}:{dest}\" must be a directory",
                            c.name()
                        )));
                    }
                    tarfs::extract(root, dest, r, owner)
                }
                HostEnd::Writer(_) => Err(Error::InvalidArgument("copy to a container from a writer".into())),
                HostEnd::Path(p) => {
                    let src = host_path(p);
                    let host = host_root()?;
                    let src_fd = match resolve(&host, src.trim_end_matches("/."), o.follow_link) {
                        Ok(fd) => fd,
                        Err(rustix::io::Errno::NOENT) => {
                            return Err(Error::InvalidArgument(format!(
                                "lstat {}: no such file or directory",
                                p.display()
                            )))
                        }
                        Err(e) => return Err(io("resolve", &src, e)),
                    };
                    let st = rustix::fs::fstat(&src_fd).map_err(|e| io("stat", &src, e))?;
                    let src_is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
                    let (dir, top) = place(&src, src_is_dir, dest, kind_at(root, dest)?)?;
                    if kind_at(root, &dir)? != Some(true) {
                        return Err(Error::InvalidArgument(format!(
                            "Could not find the file {dir} in container {}",
                            c.name()
                        )));
                    }
                    pipe(|w| tarfs::write_tree(&src_fd, &top, w), |r| tarfs::extract(root, &dir, r, owner))
                }
            }
        })
    }
}

/// Runs `produce` on a thread writing into a socket pair and `consume`
/// reading from it: the tar stream is never held whole.
fn pipe(
    produce: impl FnOnce(&mut dyn Write) -> Result<()> + Send,
    consume: impl FnOnce(&mut dyn Read) -> Result<()>,
) -> Result<()> {
    let (mut a, mut b) = std::os::unix::net::UnixStream::pair().map_err(|e| Error::io("socketpair", e))?;
    std::thread::scope(|s| {
        let writer = s.spawn(move || {
            let r = produce(&mut a);
            drop(a);
            r
        });
        let consumed = consume(&mut b);
        // A consumer that stopped early must not leave the producer blocked.
        drop(b);
        let produced = writer.join().unwrap_or_else(|_| Err(Error::InvalidArgument("archive writer panicked".into())));
        consumed.and(produced)
    })
}

/// For the CLI: whether an argument names a container path (`NAME:PATH`).
pub fn split_container_arg(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None; // a host path, even with a colon in it
    }
    let (c, p) = arg.split_once(':')?;
    (!c.is_empty() && !c.contains('/')).then_some((c, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_placement() {
        // file into an existing dir: keeps its name
        assert_eq!(place("/a/f", false, "/d", Some(true)).unwrap(), ("/d".into(), "f".into()));
        // file onto a missing name: takes it
        assert_eq!(place("/a/f", false, "/d/g", None).unwrap(), ("/d".into(), "g".into()));
        // file to a missing dir/
        assert!(place("/a/f", false, "/d/g/", None).is_err());
        // dir into an existing dir, and its contents
        assert_eq!(place("/a/s", true, "/d", Some(true)).unwrap(), ("/d".into(), "s".into()));
        assert_eq!(place("/a/s/.", true, "/d", Some(true)).unwrap(), ("/d".into(), "".into()));
        // dir to a missing name: created with that name
        assert_eq!(place("/a/s", true, "/d/n", None).unwrap(), ("/d".into(), "n".into()));
        assert!(place("/a/s", true, "/d/file", Some(false)).is_err());
        assert_eq!(split_container_arg("web:/etc"), Some(("web", "/etc")));
        assert_eq!(split_container_arg("./a:b"), None);
        assert_eq!(split_container_arg("/tmp/x"), None);
    }
}
