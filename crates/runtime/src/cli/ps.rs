//! `ps [--format table|json] ID [PS_ARGS…]`: processes of a container.

use super::{bad, print_json, string, value, Args, Global};
use lexopt::prelude::*;
use wharf_runtime::{Container, Error, Result};

pub(crate) fn run(g: &Global, p: &mut Args) -> Result<i32> {
    let mut json = false;
    let mut rest = vec![];
    while let Some(a) = p.next().map_err(bad)? {
        match a {
            Long("format") | Short('f') => json = value(p)? == "json",
            Value(v) => {
                rest.push(string(v)?);
                for v in p.raw_args().map_err(bad)? {
                    rest.push(string(v)?);
                }
            }
            a => return Err(super::unexpected(a)),
        }
    }
    let Some((id, ps_args)) = rest.split_first() else {
        return Err(bad("a container id is required"));
    };
    let pids = Container::load(&g.root, id)?.pids()?;
    if json {
        print_json(&pids)?;
        return Ok(0);
    }
    let args: Vec<&str> = if ps_args.is_empty() { vec!["-ef"] } else { ps_args.iter().map(String::as_str).collect() };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| Error::Io { context: "run ps".into(), source: e })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header.split_whitespace().position(|h| h == "PID").ok_or_else(|| bad("ps output has no PID column"))?;
    println!("{header}");
    for l in lines {
        if l.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok()).is_some_and(|p| pids.contains(&p)) {
            println!("{l}");
        }
    }
    Ok(0)
}
