//! `wharf man DIR` (hidden): man pages, one per command, generated from the
//! clap definition (clap_mangen); `wharf man --markdown docs/cli.md`
//! regenerates the command reference inside docs/cli.md, which a test keeps
//! up to date.

use anyhow::Context;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Marks the generated part of docs/cli.md; the text around it is written by hand.
pub const BEGIN: &str = "<!-- BEGIN GENERATED: `wharf man --markdown docs/cli.md` rewrites this part -->";
pub const END: &str = "<!-- END GENERATED -->";

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("out").required(true).args(["dir", "markdown"])))]
pub struct Args {
    /// Write wharf.1, wharf-images.1, … here (created if missing).
    dir: Option<PathBuf>,
    /// Rewrite the generated command reference inside this Markdown file instead.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

pub fn run(a: Args, cmd: clap::Command) -> anyhow::Result<ExitCode> {
    let cmd = settle(cmd);
    if let Some(dir) = a.dir {
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let mut cmd = cmd.disable_help_subcommand(true);
        cmd.build();
        man_pages(&cmd, &dir).with_context(|| format!("write man pages to {}", dir.display()))?;
    } else if let Some(path) = a.markdown {
        let text = std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
            anyhow::bail!("{} has no {BEGIN} … {END} markers", path.display());
        };
        anyhow::ensure!(b < e, "{}: the END marker comes before the BEGIN marker", path.display());
        let new = format!("{}{BEGIN}\n{}{}", &text[..b], markdown(cmd), &text[e..]);
        if new != text {
            std::fs::write(&path, new).with_context(|| format!("write {}", path.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One page per visible command, named as git names its pages (`wharf-image-ls.1`).
fn man_pages(cmd: &clap::Command, dir: &std::path::Path) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, dir)?;
    }
    let man = clap_mangen::Man::new(cmd.clone())
        .source(format!("wharf {}", env!("CARGO_PKG_VERSION")))
        .manual("wharf manual");
    let mut roff = Vec::new();
    man.render(&mut roff)?;
    std::fs::write(dir.join(man.get_filename()), ascii_roff(&String::from_utf8_lossy(&roff)))
}

/// groff reads Latin-1 unless run through preconv: help text such as "…"
/// becomes the escape `\[u2026]`, which every groff renders.
fn ascii_roff(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let _ = write!(out, "\\[u{:04X}]", c as u32);
        }
    }
    out
}

/// The same output on every machine: a fixed width, and the names of
/// environment variables without their values in this shell.
fn settle(cmd: clap::Command) -> clap::Command {
    cmd.term_width(100).mut_args(|a| a.hide_env_values(true)).mut_subcommands(settle)
}

/// Every visible command's `--help`, in the order `wharf --help` lists them.
fn markdown(mut cmd: clap::Command) -> String {
    cmd.build();
    let mut out = String::new();
    section(&mut cmd, "wharf", &mut out);
    out.push('\n');
    out
}

fn section(cmd: &mut clap::Command, path: &str, out: &mut String) {
    let help = cmd.render_help().to_string();
    let lines: Vec<&str> = help.lines().map(str::trim_end).collect();
    let _ = write!(out, "\n### `{path}`\n\n```text\n{}\n```\n", lines.join("\n").trim_matches('\n'));
    for sub in cmd.get_subcommands_mut().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        let name = format!("{path} {}", sub.get_name());
        section(sub, &name, out);
    }
}
