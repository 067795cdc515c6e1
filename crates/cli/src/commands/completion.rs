//! `wharf completion bash|zsh|fish|elvish|powershell`: a completion script
//! for the shell, generated from the same clap definition that parses the
//! command line, so it knows every command and flag of this build.

use crate::output::Stdout;
use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Load it in the current shell, or install it for every new one:
  bash:  source <(wharf completion bash)
         wharf completion bash > /etc/bash_completion.d/wharf
  zsh:   wharf completion zsh > \"${fpath[1]}/_wharf\"
  fish:  wharf completion fish > ~/.config/fish/completions/wharf.fish")]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Writes the script for `a.shell`; `cmd` is the whole `wharf` command line.
pub fn run(a: Args, mut cmd: clap::Command) -> anyhow::Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "wharf", &mut script);
    let mut out = Stdout::lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
