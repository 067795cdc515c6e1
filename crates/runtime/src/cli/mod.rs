//! Argument parsing shared by the verbs; one file per verb beside this one.

mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod resume;
mod run;
mod spec;
mod start;
mod state;
mod update;

use std::ffi::OsString;
use std::path::PathBuf;

use lexopt::prelude::*;
use wharf_runtime::{Error, Result};

/// Global flags (runc's names).
#[derive(Debug, Clone)]
pub(crate) struct Global {
    pub root: PathBuf,
    /// `--systemd-cgroup`: accepted by every verb (as runc, and as
    /// containerd's shim passes it); only create/run act on it, later verbs
    /// follow what state.json recorded.
    pub systemd_cgroup: bool,
}

pub(crate) type Args = lexopt::Parser;

pub(crate) fn bad(e: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(e.to_string())
}

pub(crate) fn string(v: OsString) -> Result<String> {
    v.into_string().map_err(|v| bad(format!("{v:?} is not valid UTF-8")))
}

pub(crate) fn value(p: &mut Args) -> Result<String> {
    string(p.value().map_err(bad)?)
}

pub(crate) fn unexpected(a: lexopt::Arg) -> Error {
    bad(a.unexpected())
}

/// Exactly one positional container id, as most verbs take.
pub(crate) fn need_id(ids: Vec<String>) -> Result<String> {
    let mut it = ids.into_iter();
    match (it.next(), it.next()) {
        (Some(id), None) => Ok(id),
        (None, _) => Err(bad("a container id is required")),
        _ => Err(bad("exactly one container id is expected")),
    }
}

const USAGE: &str = "usage: wharf-runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug] [--systemd-cgroup] COMMAND [ARGS]
commands: create start state kill delete run exec ps list pause resume update events features spec";

pub(crate) fn main() -> Result<i32> {
    let mut p = lexopt::Parser::from_env();
    let mut root = PathBuf::from(wharf_runtime::state::DEFAULT_ROOT);
    let (mut log, mut json, mut debug, mut systemd_cgroup) = (None, false, false, false);
    let verb = loop {
        match p.next().map_err(bad)? {
            Some(Long("root")) => root = PathBuf::from(value(&mut p)?),
            Some(Long("log")) => log = Some(PathBuf::from(value(&mut p)?)),
            Some(Long("log-format")) => {
                json = match value(&mut p)?.as_str() {
                    "json" => true,
                    "text" => false,
                    other => return Err(bad(format!("unknown log format {other:?}"))),
                }
            }
            Some(Long("debug")) => debug = true,
            Some(Long("systemd-cgroup")) => systemd_cgroup = true,
            Some(Long("rootless")) => {
                let _ = value(&mut p)?;
            }
            Some(Long("criu")) => {
                let _ = value(&mut p)?;
            }
            Some(Long("version") | Short('v')) => {
                println!(
                    "wharf-runtime version {}\ncommit: {}\nspec: 1.2.0",
                    env!("CARGO_PKG_VERSION"),
                    env!("WHARF_COMMIT")
                );
                return Ok(0);
            }
            Some(Long("help") | Short('h')) => {
                println!("{USAGE}");
                return Ok(0);
            }
            Some(Value(v)) => break string(v)?,
            Some(a) => return Err(unexpected(a)),
            None => return Err(bad(USAGE)),
        }
    };
    if matches!(verb.as_str(), "create" | "run" | "exec") {
        // The forked init/exec process must not expose a writable runtime
        // binary through /proc/self/exe (CVE-2019-5736).
        wharf_runtime::sealexe::ensure_sealed_exe()?;
    }
    if !matches!(verb.as_str(), "state" | "list" | "ps" | "events" | "features") {
        // These verbs run hooks and talk to containers through pipes: a
        // reader gone must be an EPIPE they handle, not a SIGPIPE death.
        crate::sigpipe(libc::SIG_IGN);
    }
    wharf_runtime::log::init(log, json, debug);
    let g = Global { root, systemd_cgroup };
    match verb.as_str() {
        "create" => create::run(&g, &mut p),
        "start" => start::run(&g, &mut p),
        "state" => state::run(&g, &mut p),
        "kill" => kill::run(&g, &mut p),
        "delete" => delete::run(&g, &mut p),
        "run" => run::run(&g, &mut p),
        "exec" => exec::run(&g, &mut p),
        "ps" => ps::run(&g, &mut p),
        "list" => list::run(&g, &mut p),
        "pause" => pause::run(&g, &mut p),
        "resume" => resume::run(&g, &mut p),
        "update" => update::run(&g, &mut p),
        "events" => events::run(&g, &mut p),
        "features" => features::run(&g, &mut p),
        "spec" => spec::run(&g, &mut p),
        other => Err(bad(format!("unknown command {other:?}\n{USAGE}"))),
    }
}

/// Flags shared by `create` and `run`.
#[derive(Debug, Default)]
pub(crate) struct CreateFlags {
    pub bundle: Option<PathBuf>,
    pub opts: wharf_runtime::CreateOptions,
    pub ids: Vec<String>,
    pub detach: bool,
    pub keep: bool,
}

/// Parses create/run flags; `run` also knows --detach and --keep.
pub(crate) fn parse_create(p: &mut Args, is_run: bool) -> Result<CreateFlags> {
    let mut f = CreateFlags::default();
    while let Some(a) = p.next().map_err(bad)? {
        match a {
            Long("bundle") | Short('b') => f.bundle = Some(PathBuf::from(value(p)?)),
            Long("console-socket") => f.opts.console_socket = Some(PathBuf::from(value(p)?)),
            Long("pid-file") => f.opts.pid_file = Some(PathBuf::from(value(p)?)),
            Long("no-pivot") => f.opts.no_pivot = true,
            Long("no-new-keyring") => f.opts.no_new_keyring = true,
            Long("preserve-fds") => {
                f.opts.preserve_fds = value(p)?.parse().map_err(|_| bad("--preserve-fds needs a number"))?
            }
            Long("detach") | Short('d') if is_run => f.detach = true,
            Long("keep") if is_run => f.keep = true,
            Long("no-subreaper") | Long("no-mount-fallback") => {}
            Value(v) => f.ids.push(string(v)?),
            a => return Err(unexpected(a)),
        }
    }
    Ok(f)
}

/// Only positional ids, plus `--force`/`-f` style booleans listed in `flags`.
pub(crate) fn parse_ids(p: &mut Args, flags: &[&str]) -> Result<(Vec<String>, Vec<String>)> {
    let (mut ids, mut set) = (vec![], vec![]);
    while let Some(a) = p.next().map_err(bad)? {
        match a {
            Long(l) if flags.contains(&l) => set.push(l.to_string()),
            Short(c) if flags.iter().any(|f| f.starts_with(c) && f.len() == 1) => set.push(c.to_string()),
            Value(v) => ids.push(string(v)?),
            a => return Err(unexpected(a)),
        }
    }
    Ok((ids, set))
}

pub(crate) fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    let s = serde_json::to_string_pretty(v).map_err(|e| bad(e.to_string()))?;
    println!("{s}");
    Ok(())
}
