//! `delete [--force] ID`.

use super::{need_id, parse_ids, Args, Global};
use wharf_runtime::{Container, Result};

pub(crate) fn run(g: &Global, p: &mut Args) -> Result<i32> {
    let (ids, flags) = parse_ids(p, &["force", "f"])?;
    Container::delete_by_id(&g.root, &need_id(ids)?, !flags.is_empty())?;
    Ok(0)
}
