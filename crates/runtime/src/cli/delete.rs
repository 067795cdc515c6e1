//! `delete [--force] ID`.

use super::{need_id, parse_ids, Args, Global};
use wharf_runtime::{Container, Result};

pub(crate) fn run(g: &Global, p: &mut Args) -> Result<i32> {
    let (ids, flags) = parse_ids(p, &["force", "f"])?;
    Container::load(&g.root, &need_id(ids)?)?.delete(!flags.is_empty())?;
    Ok(0)
}
