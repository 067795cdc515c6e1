use crate::Globals;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format: text or json.
    #[arg(long, default_value = "text")]
    format: String,
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<ExitCode> {
    let mut r = g.store()?.check()?;
    // What killed commands left pins layers and holds mounts: a problem
    // `system prune` fixes. Reported only; nothing is changed.
    for d in wharf_pod::leftover::find_leftovers(&g.root)? {
        r.problems.push(format!("{}: container of a killed wharf run (system prune removes it)", d.display()));
    }
    for d in wharf_pod::network::dead_attachments(&g.run_root) {
        r.problems.push(format!("{}: network attachment of a killed wharf run (system prune removes it)", d.display()));
    }
    for d in wharf_builder::build::find_leftovers(&g.root, &g.run_root)? {
        r.problems.push(format!("{}: left by a killed build (system prune removes it)", d.display()));
    }
    if a.format == "json" {
        crate::outln!("{}", serde_json::to_string_pretty(&r)?)?;
    } else {
        for p in &r.problems {
            crate::outln!("ERROR {p}")?;
        }
        for n in &r.notes {
            crate::outln!("note  {n}")?;
        }
        let verdict = if r.ok() { "ok" } else { "DAMAGED" };
        crate::outln!("{verdict}: {} blob(s), {} image(s), {} snapshot(s) checked", r.blobs, r.images, r.snapshots)?;
    }
    Ok(if r.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
