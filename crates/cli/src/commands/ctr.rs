//! The container lifecycle commands: create, start, stop, kill, restart,
//! rm, wait, pause, unpause, rename, attach, exec, port, container prune.

use crate::Globals;
use std::io::Write;
use std::process::ExitCode;
use wharf_pod::container::attach::{Client, End, RelayOptions};
use wharf_pod::container::proto::Hello;
use wharf_pod::container::{ExecRequest, Start, StopOptions};
use wharf_pod::Containers;

fn containers(g: &Globals) -> Containers {
    Containers::new(&g.root, &g.run_root)
}

/// Runs `f` on each named container, printing its name as given on success
/// (Docker's output) and an error line otherwise; exit 1 if any failed.
fn each(names: &[String], quiet: bool, mut f: impl FnMut(&str) -> anyhow::Result<()>) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for n in names {
        match f(n) {
            Ok(()) if !quiet => crate::outln!("{n}")?,
            Ok(()) => {}
            Err(e) => {
                failed = true;
                let _ = writeln!(std::io::stderr(), "Error response from daemon: {e:#}");
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

pub fn create(g: &Globals, a: super::run::Args) -> anyhow::Result<ExitCode> {
    let (opts, store) = match super::run::options(a).and_then(|o| Ok((o, g.store()?))) {
        Ok(v) => v,
        Err(e) => return Ok(super::run::refused(&e)),
    };
    match containers(g).create(&store, &opts) {
        Ok(c) => {
            crate::outln!("{}", c.id())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(super::run::failed(&e)),
    }
}

#[derive(clap::Args, Debug)]
pub struct StartArgs {
    /// Attach stdout/stderr and wait for the exit.
    #[arg(short, long)]
    attach: bool,
    /// Attach stdin.
    #[arg(short, long)]
    interactive: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn start(g: &Globals, a: StartArgs) -> anyhow::Result<ExitCode> {
    let cs = containers(g);
    let store = g.store()?;
    if a.attach || a.interactive {
        let [name] = a.containers.as_slice() else {
            anyhow::bail!("you cannot start and attach multiple containers at once")
        };
        let c = cs.get(name)?;
        cs.start(&store, &c, Start::OnAttach)?;
        let hello = Hello { stdin: a.interactive, stdout: true, stderr: true, cleaner: false };
        let mut client = Client::connect_with(&cs, c.id(), hello)?;
        let o = RelayOptions { stdin: a.interactive, tty: c.record.options.tty, start: true };
        return Ok(match client.relay(o)? {
            End::Exited(code) => ExitCode::from(code.clamp(0, 255) as u8),
            End::Detached => ExitCode::SUCCESS,
        });
    }
    each(&a.containers, false, |n| {
        let c = cs.get(n)?;
        cs.start(&store, &c, Start::Now)?;
        Ok(())
    })
}

#[derive(clap::Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing (default: the container's, else 10).
    #[arg(short = 't', long = "time", alias = "timeout")]
    time: Option<u64>,
    /// Signal to send (default: the container's stop signal).
    #[arg(short, long)]
    signal: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn stop(g: &Globals, a: StopArgs) -> anyhow::Result<ExitCode> {
    let cs = containers(g);
    let o = StopOptions { timeout: a.time, signal: a.signal };
    each(&a.containers, false, |n| Ok(cs.stop(&cs.get(n)?, &o)?))
}

pub fn restart(g: &Globals, a: StopArgs) -> anyhow::Result<ExitCode> {
    let cs = containers(g);
    let store = g.store()?;
    let o = StopOptions { timeout: a.time, signal: a.signal };
    each(&a.containers, false, |n| {
        cs.stop(&cs.get(n)?, &o)?;
        cs.start(&store, &cs.get(n)?, Start::Now)?;
        Ok(())
    })
}

#[derive(clap::Args, Debug)]
pub struct KillArgs {
    /// Signal to send.
    #[arg(short, long, default_value = "KILL")]
    signal: String,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn kill(g: &Globals, a: KillArgs) -> anyhow::Result<ExitCode> {
    let cs = containers(g);
    each(&a.containers, false, |n| Ok(cs.kill(&cs.get(n)?, &a.signal)?))
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Kill and remove a running container.
    #[arg(short, long)]
    force: bool,
    /// Remove its anonymous volumes too.
    #[arg(short, long)]
    volumes: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn rm(g: &Globals, a: RmArgs) -> anyhow::Result<ExitCode> {
    let cs = containers(g);
    each(&a.containers, false, |n| {
        match cs.get(n) {
            Ok(c) => cs.remove(&c, a.force, a.volumes)?,
            // Docker's rm -f of a missing container is not an error.
            Err(wharf_pod::Error::NoSuchContainer(_)) if a.force => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    })
}

#[derive(clap::Args, Debug)]
pub struct NamesArgs {
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn wait(g: &Globals, a: NamesArgs) -> anyhow::Result<ExitCode> {
    let cs = containers(g);
    let mut status = ExitCode::SUCCESS;
    for n in &a.containers {
        match cs.get(n).and_then(|c| cs.wait(&c)) {
            Ok(code) => crate::outln!("{code}")?,
            Err(e) => {
                status = ExitCode::FAILURE;
                let _ = writeln!(std::io::stderr(), "Error response from daemon: {e}");
            }
        }
    }
    Ok(status)
}

pub fn pause(g: &Globals, a: NamesArgs, pause: bool) -> anyhow::Result<ExitCode> {
    let cs = containers(g);
    each(&a.containers, false, |n| Ok(cs.pause(&cs.get(n)?, pause)?))
}

#[derive(clap::Args, Debug)]
pub struct RenameArgs {
    container: String,
    new_name: String,
}

pub fn rename(g: &Globals, a: RenameArgs) -> anyhow::Result<ExitCode> {
    containers(g).rename(&a.container, &a.new_name)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct PortArgs {
    container: String,
    /// Only this container port (PORT[/PROTO]).
    port: Option<String>,
}

pub fn port(g: &Globals, a: PortArgs) -> anyhow::Result<ExitCode> {
    let cs = containers(g);
    let c = cs.get(&a.container)?;
    let want = a.port.map(|p| if p.contains('/') { p } else { format!("{p}/tcp") });
    let mut found = false;
    for m in cs.ports(&c) {
        let (host, ctr) = m.split_once("->").unwrap_or((&m, ""));
        match &want {
            Some(w) if w == ctr => crate::outln!("{host}")?,
            Some(_) => continue,
            None => crate::outln!("{ctr} -> {host}")?,
        }
        found = true;
    }
    if !found && want.is_some() {
        anyhow::bail!("No public port '{}' published for {}", want.unwrap_or_default(), a.container);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct AttachArgs {
    /// Do not attach stdin.
    #[arg(long)]
    no_stdin: bool,
    container: String,
}

pub fn attach(g: &Globals, a: AttachArgs) -> anyhow::Result<ExitCode> {
    let cs = containers(g);
    let c = cs.get(&a.container)?;
    if !c.is_running() {
        anyhow::bail!("You cannot attach to a stopped container, start it first");
    }
    let stdin = !a.no_stdin && c.record.options.interactive;
    let hello = Hello { stdin, stdout: true, stderr: true, cleaner: false };
    let mut client = Client::connect_with(&cs, c.id(), hello)?;
    let o = RelayOptions { stdin, tty: c.record.options.tty, start: false };
    Ok(match client.relay(o)? {
        End::Exited(code) => ExitCode::from(code.clamp(0, 255) as u8),
        End::Detached => ExitCode::SUCCESS,
    })
}

#[derive(clap::Args, Debug)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    /// Run in the background.
    #[arg(short, long)]
    detach: bool,
    /// Keep stdin open.
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    tty: bool,
    /// Set an environment variable.
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// user[:group].
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory.
    #[arg(short, long)]
    workdir: Option<String>,
    container: String,
    #[arg(required = true)]
    command: Vec<String>,
}

pub fn exec(g: &Globals, a: ExecArgs) -> anyhow::Result<ExitCode> {
    let cs = containers(g);
    let c = match cs.get(&a.container) {
        Ok(c) => c,
        Err(e) => return Ok(super::run::failed(&e)),
    };
    let r = ExecRequest {
        cmd: a.command,
        env: a.env,
        user: a.user,
        workdir: a.workdir,
        tty: a.tty,
        interactive: a.interactive,
        detach: a.detach,
        privileged: false,
    };
    match cs.exec(&c, &r) {
        Ok(code) => Ok(ExitCode::from(code.clamp(0, 255) as u8)),
        Err(e) => Ok(super::run::failed(&e)),
    }
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Do not ask for confirmation (wharf never asks).
    #[arg(short, long)]
    force: bool,
}

pub fn prune(g: &Globals, _a: PruneArgs) -> anyhow::Result<ExitCode> {
    let removed = containers(g).prune()?;
    if !removed.is_empty() {
        crate::outln!("Deleted Containers:")?;
        for id in &removed {
            crate::outln!("{id}")?;
        }
        crate::outln!()?;
    }
    crate::outln!("Total reclaimed space: 0B")?;
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct CleanupArgs {
    id: String,
}

/// The monitor's exit command: quiet, always succeeds.
pub fn cleanup(g: &Globals, a: CleanupArgs) -> anyhow::Result<ExitCode> {
    containers(g).cleanup(&a.id);
    Ok(ExitCode::SUCCESS)
}
