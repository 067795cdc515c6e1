//! `events`: what happened to containers, from the engine's event log.

use crate::Globals;
use serde_json::{json, Map, Value};
use std::process::ExitCode;
use std::time::Duration;
use wharf_pod::container::events::{parse_time, Event, EventFilter};
use wharf_pod::Containers;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Show events since this time (Unix seconds, RFC 3339, or a duration before now: 10m).
    #[arg(long)]
    since: Option<String>,
    /// Stop at this time (default: follow new events until ^C).
    #[arg(long)]
    until: Option<String>,
    /// container=NAME|ID, event=ACTION, type=container, image=, label=KEY[=VALUE].
    #[arg(short, long)]
    filter: Vec<String>,
    /// json (one object per line) or a Go template ('{{.Action}} {{.ID}}').
    #[arg(long)]
    format: Option<String>,
}

/// Docker's default line: `TIME TYPE ACTION ID (k=v, …)`.
fn line(e: &Event) -> String {
    let t = chrono::DateTime::from_timestamp_nanos(e.time_nano).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let attrs: Vec<String> = e.actor.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{t} {} {} {} ({})", e.kind, e.action, e.actor.id, attrs.join(", "))
}

fn template_fields(e: &Event) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("Status".into(), json!(e.status));
    m.insert("ID".into(), json!(e.id));
    m.insert("From".into(), json!(e.from));
    m.insert("Type".into(), json!(e.kind));
    m.insert("Action".into(), json!(e.action));
    m.insert("Actor".into(), json!({"ID": e.actor.id, "Attributes": e.actor.attributes}));
    m.insert("Scope".into(), json!(e.scope));
    m.insert("Time".into(), json!(e.time));
    m.insert("TimeNano".into(), json!(e.time_nano));
    m
}

fn print(e: &Event, format: Option<&str>) -> anyhow::Result<()> {
    match format {
        None => crate::outln!("{}", line(e)),
        Some("json") | Some("{{json .}}") => crate::outln!("{}", serde_json::to_string(e)?),
        Some(t) => crate::outln!("{}", super::ps::render(t, &template_fields(e))),
    }
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<ExitCode> {
    let now = chrono::Utc::now();
    let since = a.since.as_deref().map(|s| parse_time(s, now)).transpose()?;
    let until = a.until.as_deref().map(|s| parse_time(s, now)).transpose()?;
    let filter = EventFilter::parse(&a.filter)?;
    let cs = Containers::new(&g.root, &g.run_root);
    let mut reader = cs.events();
    let backlog = reader.backlog()?;
    let in_range = |e: &Event| since.is_none_or(|s| e.time_nano >= s) && until.is_none_or(|u| e.time_nano <= u);
    // Without --since or --until Docker shows only what happens from now on.
    if since.is_some() || until.is_some() {
        for e in backlog.iter().filter(|e| in_range(e) && filter.matches(e)) {
            print(e, a.format.as_deref())?;
        }
    }
    loop {
        let now_ns = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
        if until.is_some_and(|u| now_ns > u) {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(200));
        for e in reader.poll()?.iter().filter(|e| in_range(e) && filter.matches(e)) {
            print(e, a.format.as_deref())?;
        }
    }
}
