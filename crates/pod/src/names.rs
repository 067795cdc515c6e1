//! Names of containers and of pods: a symlink `<root>/<links>/<name>` → ID,
//! claimed atomically with symlink(2), so that two `create`s racing for a
//! name need no lock and a killed one leaves at most a link. A link whose
//! record dir `<root>/<records>/<ID>` is gone (a `create` or `rm` killed
//! between the two) is stale: it is taken over by the next claim and
//! removed by the sweep.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// One namespace of names.
pub(crate) struct Names {
    links: &'static str,
    records: &'static str,
    check: fn(&str) -> Result<()>,
    conflict: fn(&str, &str) -> Error,
}

/// Containers' names: Docker's rules and messages.
pub(crate) const CONTAINERS: Names =
    Names { links: "names", records: "containers", check: crate::container::check_name, conflict: container_conflict };

/// Pods' names: podman's.
pub(crate) const PODS: Names = Names { links: "pod-names", records: "pods", check: pod_check, conflict: pod_conflict };

fn container_conflict(name: &str, owner: &str) -> Error {
    Error::Conflict(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{owner}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}

fn pod_check(name: &str) -> Result<()> {
    crate::container::check_name(name).map_err(|_| {
        Error::InvalidArgument(format!("invalid pod name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"))
    })
}

fn pod_conflict(name: &str, owner: &str) -> Error {
    Error::Conflict(format!("the pod name {name:?} is already in use by pod {owner}"))
}

impl Names {
    pub(crate) fn link(&self, root: &Path, name: &str) -> PathBuf {
        root.join(self.links).join(name)
    }

    /// Claims `name` for `id`; a conflict error when another live ID has it.
    pub(crate) fn claim(&self, root: &Path, name: &str, id: &str) -> Result<()> {
        (self.check)(name)?;
        let dir = root.join(self.links);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let link = self.link(root, name);
        match std::os::unix::fs::symlink(id, &link) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner = std::fs::read_link(&link).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
                if !owner.is_empty() && owner != id && !root.join(self.records).join(&owner).exists() {
                    let _ = std::fs::remove_file(&link);
                    return self.claim(root, name, id);
                }
                Err((self.conflict)(name, &owner))
            }
            Err(e) => Err(Error::io(format!("create {}", link.display()), e)),
        }
    }

    /// Claims `name`, or a random `adjective_name` (tried again on a clash).
    pub(crate) fn claim_or_random(&self, root: &Path, name: Option<&str>, id: &str) -> Result<String> {
        if let Some(n) = name {
            return self.claim(root, n, id).map(|()| n.to_string());
        }
        let mut attempt = 0;
        loop {
            let n = crate::container::random_name(attempt);
            match self.claim(root, &n, id) {
                Err(Error::Conflict(_)) if attempt < 20 => attempt += 1,
                r => return r.map(|()| n),
            }
        }
    }

    /// Releases `name` if it is still `id`'s.
    pub(crate) fn release(&self, root: &Path, name: &str, id: &str) {
        let link = self.link(root, name);
        if std::fs::read_link(&link).is_ok_and(|p| p.as_os_str() == id) {
            let _ = std::fs::remove_file(&link);
        }
    }

    /// Removes the links whose record dir is gone.
    pub(crate) fn sweep(&self, root: &Path) {
        for e in std::fs::read_dir(root.join(self.links)).into_iter().flatten().flatten() {
            let Ok(id) = std::fs::read_link(e.path()) else { continue };
            if !root.join(self.records).join(&id).exists() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_name_is_taken_over_and_a_live_one_refused() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("pods/live")).unwrap();
        PODS.claim(r, "web", "live").unwrap();
        assert!(matches!(PODS.claim(r, "web", "other"), Err(Error::Conflict(_))));
        // Not a container name: the two namespaces are apart.
        CONTAINERS.claim(r, "web", "ctr").unwrap();
        PODS.claim(r, "old", "dead").unwrap();
        PODS.claim(r, "old", "new").unwrap(); // "dead" has no dir
        assert_eq!(std::fs::read_link(PODS.link(r, "old")).unwrap().as_os_str(), "new");
        PODS.release(r, "web", "other"); // not its: kept
        assert!(PODS.link(r, "web").exists() || std::fs::symlink_metadata(PODS.link(r, "web")).is_ok());
        PODS.sweep(r); // "old" → "new" has no dir either
        assert!(std::fs::symlink_metadata(PODS.link(r, "old")).is_err());
        assert!(std::fs::symlink_metadata(PODS.link(r, "web")).is_ok());
        assert!(matches!(PODS.claim(r, "-bad", "x"), Err(Error::InvalidArgument(_))));
        let n = CONTAINERS.claim_or_random(r, None, "ctr2").unwrap();
        assert!(n.contains('_'), "{n}");
    }
}
