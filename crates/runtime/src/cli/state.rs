//! `state`: print the OCI state JSON.

use super::{need_id, parse_ids, print_json, Args, Global};
use wharf_runtime::{Container, Result};

pub(crate) fn run(g: &Global, p: &mut Args) -> Result<i32> {
    let (ids, _) = parse_ids(p, &[])?;
    print_json(&Container::load(&g.root, &need_id(ids)?)?.state())?;
    Ok(0)
}
