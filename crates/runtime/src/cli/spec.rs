//! `spec [--rootless] [--bundle DIR]`: write a default config.json.

use std::path::PathBuf;

use super::{bad, value, Args, Global};
use lexopt::prelude::*;
use wharf_runtime::{Error, Result};

pub(crate) fn run(_g: &Global, p: &mut Args) -> Result<i32> {
    let (mut rootless, mut bundle) = (false, PathBuf::from("."));
    while let Some(a) = p.next().map_err(bad)? {
        match a {
            Long("rootless") => rootless = true,
            Long("bundle") | Short('b') => bundle = PathBuf::from(value(p)?),
            a => return Err(super::unexpected(a)),
        }
    }
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(bad(format!("file {} exists; remove it first", path.display())));
    }
    let spec = if rootless {
        // SAFETY: getuid/getgid cannot fail.
        wharf_runtime::spec::rootless_spec(unsafe { libc::getuid() }, unsafe { libc::getgid() })
    } else {
        wharf_runtime::spec::runc_spec()
    };
    let data = serde_json::to_string_pretty(&spec).map_err(|e| bad(e.to_string()))?;
    std::fs::write(&path, data + "\n")
        .map_err(|e| Error::Io { context: format!("write {}", path.display()), source: e })?;
    Ok(0)
}
