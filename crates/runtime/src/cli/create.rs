//! `create`: build the container and hold its process until `start`.

use std::path::PathBuf;

use super::{need_id, parse_create, Args, Global};
use wharf_runtime::{Container, Result};

pub(crate) fn run(g: &Global, p: &mut Args) -> Result<i32> {
    let mut f = parse_create(p, false)?;
    f.opts.systemd_cgroup = g.systemd_cgroup;
    let id = need_id(f.ids)?;
    let bundle = f.bundle.unwrap_or_else(|| PathBuf::from("."));
    Container::create(&g.root, &id, &bundle, &f.opts)?;
    Ok(0)
}
