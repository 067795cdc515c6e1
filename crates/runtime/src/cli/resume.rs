//! `resume ID`: thaw every process of the container.

use super::{need_id, parse_ids, Args, Global};
use wharf_runtime::{Container, Result};

pub(crate) fn run(g: &Global, p: &mut Args) -> Result<i32> {
    let (ids, _) = parse_ids(p, &[])?;
    Container::load(&g.root, &need_id(ids)?)?.resume()?;
    Ok(0)
}
