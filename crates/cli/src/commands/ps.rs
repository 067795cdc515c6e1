use crate::output;
use crate::Globals;
use serde_json::{Map, Value};
use std::process::ExitCode;
use wharf_pod::{Container, Containers};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Show all containers (default: only running ones).
    #[arg(short, long)]
    all: bool,
    /// Only show container IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Show the N last created containers (all states).
    #[arg(short = 'n', long)]
    last: Option<usize>,
    /// Show the last created container (all states).
    #[arg(short = 'l', long)]
    latest: bool,
    /// Do not truncate IDs and commands.
    #[arg(long)]
    no_trunc: bool,
    /// Filter: status=, name=, label=KEY[=VALUE], ancestor=IMAGE, id=, health=starting|healthy|unhealthy|none.
    #[arg(short, long)]
    filter: Vec<String>,
    /// table (default), json (one object per line), or a Go template ('{{.Names}}').
    #[arg(long)]
    format: Option<String>,
}

fn matches(c: &Container, f: &str) -> anyhow::Result<bool> {
    let (k, v) = f.split_once('=').ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value): {f}"))?;
    Ok(match k {
        "status" => c.status.to_string() == v,
        "name" => c.name().contains(v.trim_start_matches('/')),
        "id" => c.id().starts_with(v),
        "pod" => c.record.options.pod.as_deref() == Some(v),
        "label" => c.record.options.labels.iter().any(|l| l == v || l.split_once('=').is_some_and(|(lk, _)| lk == v)),
        "health" if ["starting", "healthy", "unhealthy", "none"].contains(&v) => {
            wharf_pod::container::view::health_status(c) == v
        }
        "health" => anyhow::bail!("unrecognised filter value for health: {v}"),
        "ancestor" => {
            c.record.image == v
                || c.record.image_id.trim_start_matches("sha256:").starts_with(v.trim_start_matches("sha256:"))
        }
        other => anyhow::bail!("invalid filter '{other}'"),
    })
}

/// `{{.Field}}`, `{{json .}}` and `table` of Go's text/template, as `docker ps --format` uses them.
pub fn render(tpl: &str, m: &Map<String, Value>) -> String {
    let tpl = tpl.replace("\\t", "\t").replace("\\n", "\n");
    let mut out = String::new();
    let mut rest = tpl.as_str();
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find("}}") else { break };
        let expr = rest[i + 2..i + j].trim();
        if expr == "json ." {
            out.push_str(&Value::Object(m.clone()).to_string());
        } else if let Some(key) = expr.strip_prefix("json .") {
            out.push_str(&m.get(key).cloned().unwrap_or(Value::Null).to_string());
        } else if let Some(key) = expr.strip_prefix('.') {
            match m.get(key) {
                Some(Value::String(s)) => out.push_str(s),
                Some(v) => out.push_str(&v.to_string()),
                None => {}
            }
        }
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    out
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<ExitCode> {
    let cs = Containers::new(&g.root, &g.run_root);
    cs.sweep();
    let mut list = cs.list()?;
    let take = if a.latest { Some(1) } else { a.last };
    if !a.all && take.is_none() {
        list.retain(|c| c.is_running());
    }
    let pods = wharf_pod::Pods::new(&g.root, &g.run_root);
    for f in &a.filter {
        // pod=NAME|ID-prefix: by the pod's full ID, which containers record.
        let f = &match f.strip_prefix("pod=") {
            Some(p) => format!("pod={}", pods.resolve(p)?),
            None => f.clone(),
        };
        let mut keep = Vec::new();
        for c in list {
            if matches(&c, f)? {
                keep.push(c);
            }
        }
        list = keep;
    }
    if let Some(n) = take {
        list.truncate(n);
    }
    if a.quiet {
        for c in &list {
            crate::outln!("{}", if a.no_trunc { c.id() } else { &c.id()[..12] })?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let entries: Vec<_> = list.iter().map(|c| cs.ps_entry(c, a.no_trunc)).collect();
    match a.format.as_deref() {
        None | Some("table") => {
            let head = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"];
            let mut rows = vec![head.map(String::from).to_vec()];
            for e in &entries {
                let f = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                rows.push(vec![
                    f("ID"),
                    f("Image"),
                    f("Command"),
                    f("RunningFor"),
                    f("Status"),
                    f("Ports"),
                    f("Names"),
                ]);
            }
            output::table(&rows)?;
        }
        Some("json") => {
            for e in &entries {
                crate::outln!("{}", Value::Object(e.clone()))?;
            }
        }
        Some(t) => {
            let tpl = t.strip_prefix("table ").unwrap_or(t);
            for e in &entries {
                crate::outln!("{}", render(tpl, e))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
