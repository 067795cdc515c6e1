//! The store's images as the CRI sees them: one image per ID (the config
//! digest), with every tag and `repository@digest` naming it, as
//! containerd's CRI lists them.

use k8s_cri::v1 as cri;
use std::collections::BTreeSet;
use tonic::Status;
use wharf_image::{Image, Reference, Store, REF_NAME};

/// One image ID and the index entries (targets and their names) that lead to it.
pub(crate) struct CriImage {
    pub image: Image,
    /// Every target digest (manifest or index) with this ID.
    pub targets: BTreeSet<String>,
    /// The names of those targets, as stored (fully qualified).
    pub names: BTreeSet<String>,
}

/// Every image of the store, grouped by ID, in index order.
pub(crate) fn all(store: &Store) -> Result<Vec<CriImage>, Status> {
    let index = store.index().map_err(crate::Error::from)?;
    let mut out: Vec<CriImage> = Vec::new();
    for d in index.manifests() {
        let image = match store.load_image(d) {
            Ok(i) => i,
            Err(e) => {
                // One unreadable entry (another platform only, a foreign
                // media type) must not hide every other image.
                tracing::debug!("skipping index entry {}: {e}", d.digest());
                continue;
            }
        };
        let name = d.annotations().as_ref().and_then(|a| a.get(REF_NAME)).cloned();
        let target = d.digest().to_string();
        let i = match out.iter().position(|c| c.image.id() == image.id()) {
            Some(i) => i,
            None => {
                out.push(CriImage { image, targets: BTreeSet::new(), names: BTreeSet::new() });
                out.len() - 1
            }
        };
        out[i].targets.insert(target);
        out[i].names.extend(name);
    }
    Ok(out)
}

/// The image a CRI client names (a reference, `repo@digest`, an ID or ID
/// prefix); `None` when the store has no such image.
pub(crate) fn find(store: &Store, name: &str) -> Result<Option<CriImage>, Status> {
    if name.is_empty() {
        return Err(Status::invalid_argument("no image given"));
    }
    let img = match store.resolve(name) {
        Ok(i) => i,
        Err(e) if e.kind() == wharf_image::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(crate::Error::from(e).into()),
    };
    Ok(all(store)?.into_iter().find(|c| c.image.id() == img.id()))
}

impl CriImage {
    pub(crate) fn id(&self) -> String {
        self.image.id().to_string()
    }

    pub(crate) fn to_cri(&self, pause_image: &str) -> cri::Image {
        let mut repo_tags = BTreeSet::new();
        let mut repo_digests = BTreeSet::new();
        for n in &self.names {
            match Reference::parse(n) {
                Ok(r) if r.digest().is_some() => {
                    repo_digests.insert(format!("{}@{}", r.repository(), r.digest().unwrap_or_default()));
                }
                Ok(r) => {
                    repo_tags.insert(r.to_string());
                    for t in &self.targets {
                        repo_digests.insert(format!("{}@{t}", r.repository()));
                    }
                }
                // A foreign layout's bare tag word: show it as it is.
                Err(_) => {
                    repo_tags.insert(n.clone());
                }
            }
        }
        let pause = Reference::parse(pause_image).map(|r| r.to_string()).unwrap_or_default();
        let (uid, username) = user_of(self.image.config.config().as_ref().and_then(|c| c.user().as_deref()));
        cri::Image {
            id: self.id(),
            repo_tags: repo_tags.into_iter().collect(),
            repo_digests: repo_digests.into_iter().collect(),
            size: self.image.size(),
            uid: uid.map(|value| cri::Int64Value { value }),
            username,
            spec: None,
            pinned: self.names.contains(&pause),
        }
    }
}

/// The image's `User` as the CRI reports it: a numeric user (before any
/// `:group`) as `uid`, a name as `username` (containerd's rule).
fn user_of(user: Option<&str>) -> (Option<i64>, String) {
    let Some(user) = user.filter(|u| !u.is_empty()) else { return (None, String::new()) };
    let u = user.split(':').next().unwrap_or(user);
    match u.parse::<i64>() {
        Ok(n) => (Some(n), String::new()),
        Err(_) => (None, u.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn users() {
        assert_eq!(super::user_of(None), (None, String::new()));
        assert_eq!(super::user_of(Some("")), (None, String::new()));
        assert_eq!(super::user_of(Some("1002")), (Some(1002), String::new()));
        assert_eq!(super::user_of(Some("1002:1003")), (Some(1002), String::new()));
        assert_eq!(super::user_of(Some("www:www")), (None, "www".to_string()));
    }
}
