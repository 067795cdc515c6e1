//! `kill ID [SIGNAL]` (`--all`/`-a`).

use super::{bad, parse_ids, Args, Global};
use wharf_runtime::{signal, Container, Result};

pub(crate) fn run(g: &Global, p: &mut Args) -> Result<i32> {
    let (args, flags) = parse_ids(p, &["all", "a"])?;
    let (id, sig) = match args.as_slice() {
        [id] => (id, "TERM"),
        [id, s] => (id, s.as_str()),
        _ => return Err(bad("usage: kill [--all] ID [SIGNAL]")),
    };
    let sig = signal::parse_number(sig)?;
    Container::load(&g.root, id)?.signal(sig, !flags.is_empty())?;
    Ok(0)
}
