//! Which namespaces a container gets, and joining existing ones by path.

use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::error::{Context, Error, Result};

/// The namespace part of a spec, split into "new" and "join by path".
#[derive(Debug, Clone)]
pub(crate) struct NsPlan {
    /// Namespaces to create (CLONE_NEW* flags), user and time excluded.
    pub new: CloneFlags,
    pub new_user: bool,
    pub new_time: bool,
    /// (type, path) to setns into, in spec order.
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
}

pub(crate) fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The /proc/PID/ns entry name of a namespace type.
pub(crate) fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

pub(crate) fn from_proc_name(s: &str) -> Option<LinuxNamespaceType> {
    LinuxNamespaceType::try_from(s).ok()
}

impl NsPlan {
    pub(crate) fn from_spec(list: &[LinuxNamespace]) -> Result<NsPlan> {
        let mut plan = NsPlan { new: CloneFlags::empty(), new_user: false, new_time: false, join: vec![] };
        let mut seen = Vec::new();
        for ns in list {
            let t = ns.typ();
            if seen.contains(&t) {
                return Err(Error::InvalidArgument(format!("namespace {} listed twice", proc_name(t))));
            }
            seen.push(t);
            if t == LinuxNamespaceType::Time && !Path::new("/proc/self/ns/time").exists() {
                return Err(Error::Unsupported("time namespaces on this kernel".into()));
            }
            match ns.path() {
                Some(p) if !p.as_os_str().is_empty() => plan.join.push((t, p.clone())),
                _ => match t {
                    LinuxNamespaceType::User => plan.new_user = true,
                    LinuxNamespaceType::Time => plan.new_time = true,
                    t => plan.new |= flag(t),
                },
            }
        }
        Ok(plan)
    }

    pub(crate) fn has(&self, t: LinuxNamespaceType) -> bool {
        match t {
            LinuxNamespaceType::User => self.new_user || self.joins(t),
            LinuxNamespaceType::Time => self.new_time || self.joins(t),
            t => self.new.contains(flag(t)) || self.joins(t),
        }
    }

    pub(crate) fn joins(&self, t: LinuxNamespaceType) -> bool {
        self.join.iter().any(|(j, _)| *j == t)
    }

    /// Names of all namespaces the container has.
    pub(crate) fn names(&self) -> Vec<String> {
        use LinuxNamespaceType::*;
        [Mount, Cgroup, Uts, Ipc, User, Pid, Network, Time]
            .into_iter()
            .filter(|t| self.has(*t))
            .map(|t| proc_name(t).to_string())
            .collect()
    }
}

/// setns into `path`; the user namespace is joined last by callers because
/// after it we lose privileges over namespaces owned by the host.
pub(crate) fn join(t: LinuxNamespaceType, path: &Path) -> Result<()> {
    let f = std::fs::File::open(path).ctx(|| format!("open namespace {}", path.display()))?;
    nix::sched::setns(&f, flag(t)).ctx(|| format!("join {} namespace {}", proc_name(t), path.display()))
}
