//! `events [--stats] [--interval SECS] ID`: resource usage (and OOM kills) as
//! JSON lines in runc's schema; an error once the container has stopped.

use std::time::Duration;

use super::{bad, string, value, Args, Global};
use lexopt::prelude::*;
use wharf_runtime::{Container, Result, Status};

pub(crate) fn run(g: &Global, p: &mut Args) -> Result<i32> {
    let (mut once, mut interval, mut ids) = (false, 5u64, vec![]);
    while let Some(a) = p.next().map_err(bad)? {
        match a {
            Long("stats") => once = true,
            Long("interval") => {
                let v = value(p)?;
                interval = v.trim_end_matches('s').parse().map_err(|_| bad(format!("--interval {v:?}")))?;
            }
            Value(v) => ids.push(string(v)?),
            a => return Err(super::unexpected(a)),
        }
    }
    let id = super::need_id(ids)?;
    let c = Container::load(&g.root, &id)?;
    let mut ooms = None;
    loop {
        let data = c.runc_stats()?;
        let stats = c.stats()?;
        // Like runc, an OOM kill since the last look is its own event.
        if ooms.is_some_and(|n| stats.oom_kills > n) {
            println!("{}", serde_json::json!({"type": "oom", "id": id}));
        }
        ooms = Some(stats.oom_kills);
        let ev = serde_json::json!({"type": "stats", "id": id, "data": data});
        println!("{ev}");
        if once || c.status() == Status::Stopped {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_secs(interval.max(1)));
        if c.status() == Status::Stopped {
            return Ok(0);
        }
    }
}
