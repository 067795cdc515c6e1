//! Device nodes in the container's /dev: the default set every container
//! gets, `linux.devices`, and the /dev/fd, /dev/std* and /dev/ptmx links.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::path::{reopen_dir, RootDir};
use crate::error::{Error, Result};

/// (path, major, minor) of the character devices every container gets.
const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

struct Node {
    path: PathBuf,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
}

/// Creates default and configured devices; in a user namespace (no mknod)
/// each is a bind mount of the host's node, as runc does.
pub(crate) fn create_devices(root: &RootDir, devices: &[LinuxDevice], in_userns: bool) -> Result<()> {
    let mut nodes: Vec<Node> = DEFAULT_DEVICES
        .iter()
        .filter(|(p, _, _)| !devices.iter().any(|d| d.path() == Path::new(p)))
        .map(|&(p, major, minor)| Node {
            path: p.into(),
            kind: SFlag::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: None,
            gid: None,
        })
        .collect();
    for d in devices {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::InvalidArgument(format!(
                    "device {}: type 'a' is only valid in cgroup rules",
                    d.path().display()
                )))
            }
        };
        nodes.push(Node {
            path: d.path().clone(),
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid(),
            gid: d.gid(),
        });
    }
    for n in &nodes {
        create_node(root, n, in_userns)?;
    }
    Ok(())
}

fn create_node(root: &RootDir, n: &Node, in_userns: bool) -> Result<()> {
    let ctx = |what: &str| format!("{what} device {}", n.path.display());
    let path = super::path::clean(&n.path);
    if !path.starts_with("/dev") {
        return Err(Error::InvalidArgument(format!("device path {} is not under /dev", n.path.display())));
    }
    let parent = root
        .mkdir_all(path.parent().unwrap_or(Path::new("/dev")), 0o755)
        .and_then(|fd| reopen_dir(&fd))
        .map_err(|e| Error::io(ctx("create parent of"), e))?;
    let name = path.file_name().unwrap_or_default();
    // Replace whatever the image has there: it might be a symlink.
    let _ = nix::unistd::unlinkat(&parent, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
    if in_userns && n.kind != SFlag::S_IFIFO {
        let fd = root.create_file(&path).map_err(|e| Error::io(ctx("create bind target for"), e))?;
        return mount(Some(n.path.as_path()), &crate::sys::fd_path(&fd), None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(|e| Error::Mount { what: "device bind".into(), target: n.path.clone(), source: e.into() });
    }
    mknodat(&parent, name, n.kind, Mode::from_bits_truncate(n.mode), makedev(n.major, n.minor))
        .map_err(|e| Error::sys(ctx("mknod"), e))?;
    if n.uid.is_some() || n.gid.is_some() {
        nix::unistd::fchownat(
            &parent,
            name,
            n.uid.map(nix::unistd::Uid::from_raw),
            n.gid.map(nix::unistd::Gid::from_raw),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| Error::sys(ctx("chown"), e))?;
    }
    Ok(())
}

/// /dev/fd, /dev/stdin…, and /dev/ptmx → pts/ptmx when /dev/pts is mounted.
pub(crate) fn create_links(root: &RootDir, has_devpts: bool) -> Result<()> {
    let dev = root
        .mkdir_all(Path::new("/dev"), 0o755)
        .and_then(|fd| reopen_dir(&fd))
        .map_err(|e| Error::io("open /dev", e))?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    if has_devpts {
        let _ = nix::unistd::unlinkat(&dev, "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir);
        links.push(("pts/ptmx", "ptmx"));
    }
    for (target, name) in links {
        match nix::unistd::symlinkat(target, &dev, name) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("symlink /dev/{name}"), e)),
        }
    }
    Ok(())
}
