//! `wharf build --check`: BuildKit's Dockerfile checks, printed as
//! `docker build --check` prints them; nothing is built.

use crate::Globals;
use std::path::Path;
use std::process::ExitCode;

pub fn run(g: &Globals, dockerfile: &Path) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(dockerfile).map_err(|e| anyhow::anyhow!("read {}: {e}", dockerfile.display()))?;
    // Only an existing store is read: a check creates nothing.
    let store = g.root.join("index.json").exists().then(|| g.store().ok()).flatten();
    // A base image's Env, when the store has it (UndefinedVar needs it).
    let base_env = |name: &str| -> Option<Vec<String>> {
        let img = store.as_ref()?.resolve(name).ok()?;
        Some(img.config.config().as_ref().and_then(|c| c.env().clone()).unwrap_or_default())
    };
    let report = wharf_builder::check::check(&text, &base_env)?;
    let src: Vec<&str> = text.lines().collect();
    let name = dockerfile.file_name().map_or("Dockerfile".into(), |n| n.to_string_lossy().into_owned());
    for w in &report.warnings {
        let rule = w.rule.unwrap_or("Warning");
        match w.rule.and_then(wharf_builder::check::rule_url) {
            Some(url) => crate::outln!("\nWARNING: {rule} - {url}")?,
            None => crate::outln!("\nWARNING: {rule}")?,
        }
        crate::outln!("{}\n\n{name}:{}\n--------------------", w.message, w.lines.start)?;
        for no in w.lines.start..=w.lines.end.min(w.lines.start + 4) {
            crate::outln!("{no:>4} | >>> {}", src.get(no - 1).unwrap_or(&""))?;
        }
        crate::outln!("--------------------")?;
    }
    match report.warnings.len() {
        0 => crate::outln!("Check complete, no warnings found.")?,
        1 => crate::outln!("\nCheck complete, 1 warning has been found!")?,
        n => crate::outln!("\nCheck complete, {n} warnings have been found!")?,
    }
    if report.fail_on_warnings && !report.warnings.is_empty() {
        eprintln!("error: the Dockerfile's check=error=true directive makes warnings fail the check");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
