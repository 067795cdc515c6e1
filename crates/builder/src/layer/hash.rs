//! The content cache key of a COPY/ADD, as BuildKit's: names, contents,
//! modes, owners (after `--chown`), link targets and xattrs — never mtimes,
//! so a fresh checkout of the same files hits the cache.

use super::copy::{plan_layout, CopyPlan, Origin};
use super::entry::Kind;
use super::resolve::join;
use super::{LayerError, Result};
use sha2::{Digest as _, Sha256};
use std::io::Read;
use std::path::Path;

/// sha256 (hex) of everything the COPY/ADD would write except mtimes.
/// .dockerignore'd files are not part of it.
pub fn hash_sources(plan: &CopyPlan) -> Result<String> {
    let layout = plan_layout(plan, false, 0)?;
    let mut h = Sha256::new();
    h.update(b"wharf-copy-v1\0");
    for (key, p) in &layout.entries {
        let m = &p.meta;
        field(&mut h, &join(key));
        let kind: u8 = match m.kind {
            Kind::File => b'f',
            Kind::Dir => b'd',
            Kind::Symlink => b'l',
            Kind::Fifo => b'p',
            Kind::Char => b'c',
            Kind::Block => b'b',
        };
        let packed = matches!(p.origin, Origin::Archive(_));
        h.update([kind, u8::from(packed)]);
        h.update(m.mode.to_le_bytes());
        h.update(m.uid.to_le_bytes());
        h.update(m.gid.to_le_bytes());
        h.update(m.rdev.to_le_bytes());
        field(&mut h, m.link.as_deref().unwrap_or_default());
        h.update((m.xattrs.len() as u64).to_le_bytes());
        for (k, v) in &m.xattrs {
            field(&mut h, k.as_bytes());
            field(&mut h, v);
        }
        match &p.origin {
            Origin::Path(path) | Origin::Archive(path) if m.kind == Kind::File => content(&mut h, path)?,
            _ => {}
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// Length-prefixed, so that no two different sequences of fields hash alike.
fn field(h: &mut Sha256, b: &[u8]) {
    h.update((b.len() as u64).to_le_bytes());
    h.update(b);
}

fn content(h: &mut Sha256, path: &Path) -> Result<()> {
    let mut f = std::fs::File::open(path).map_err(LayerError::io("open", path))?;
    let mut inner = Sha256::new();
    let mut buf = vec![0u8; 128 * 1024];
    let mut n_total = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(LayerError::io("read", path)(e)),
        };
        inner.update(&buf[..n]);
        n_total += n as u64;
    }
    h.update(n_total.to_le_bytes());
    h.update(inner.finalize());
    Ok(())
}
