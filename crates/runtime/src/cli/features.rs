//! `features`: the OCI features document.

use super::{parse_ids, print_json, Args, Global};
use wharf_runtime::Result;

pub(crate) fn run(_g: &Global, p: &mut Args) -> Result<i32> {
    parse_ids(p, &[])?;
    print_json(&wharf_runtime::features::features())?;
    Ok(0)
}
