//! `list` (`--format table|json`, `-q`).

use super::{bad, print_json, string, value, Args, Global};
use lexopt::prelude::*;
use wharf_runtime::{Container, Result, StateStore};

pub(crate) fn run(g: &Global, p: &mut Args) -> Result<i32> {
    let (mut json, mut quiet) = (false, false);
    while let Some(a) = p.next().map_err(bad)? {
        match a {
            Long("format") | Short('f') => json = value(p)? == "json",
            Long("quiet") | Short('q') => quiet = true,
            Value(v) => return Err(bad(format!("unexpected argument {}", string(v)?))),
            a => return Err(super::unexpected(a)),
        }
    }
    let store = StateStore::new(&g.root);
    let mut states = vec![];
    for id in store.ids()? {
        // A container deleted meanwhile is simply not listed.
        if let Ok(c) = Container::load(&g.root, &id) {
            states.push(c.state());
        }
    }
    if quiet {
        states.iter().for_each(|s| println!("{}", s.id));
    } else if json {
        print_json(&states)?;
    } else {
        println!("{:<20} {:<8} {:<10} {:<40} {:<32} OWNER", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
        for s in states {
            println!(
                "{:<20} {:<8} {:<10} {:<40} {:<32} {}",
                s.id,
                s.pid,
                s.status,
                s.bundle.display(),
                s.created,
                if s.owner.is_empty() { "root" } else { &s.owner }
            );
        }
    }
    Ok(0)
}
