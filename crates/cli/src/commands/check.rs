use crate::Globals;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format: text or json.
    #[arg(long, default_value = "text")]
    format: String,
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<ExitCode> {
    let r = g.store()?.check()?;
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
