use crate::Globals;
use anyhow::Context;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Read from this file instead of stdin.
    #[arg(short, long)]
    input: Option<String>,
    /// Print only the image IDs.
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<ExitCode> {
    let store = g.store()?;
    let loaded = match &a.input {
        Some(p) if p != "-" => {
            let f = std::fs::File::open(p).with_context(|| format!("open {p}"))?;
            store.load(std::io::BufReader::with_capacity(1 << 20, f))?
        }
        _ => store.load(std::io::stdin().lock())?,
    };
    for l in loaded {
        match (&l.name, a.quiet) {
            (_, true) => crate::outln!("{}", l.id)?,
            (Some(n), false) => crate::outln!("Loaded image: {}", n.familiar())?,
            (None, false) => crate::outln!("Loaded image ID: {}", l.id)?,
        }
    }
    Ok(ExitCode::SUCCESS)
}
