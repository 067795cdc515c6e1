//! `exec [flags] ID [COMMAND…]` or `exec --process FILE ID`.

use std::path::PathBuf;

use super::{bad, string, value, Args, Global};
use lexopt::prelude::*;
use wharf_runtime::oci_spec::runtime::Process;
use wharf_runtime::{exec, Container, ExecOptions, Result};

#[derive(Default)]
struct Flags {
    process: Option<PathBuf>,
    tty: bool,
    detach: bool,
    console_socket: Option<PathBuf>,
    pid_file: Option<PathBuf>,
    cwd: Option<PathBuf>,
    env: Vec<String>,
    user: Option<String>,
    preserve_fds: u32,
    no_new_privs: bool,
    caps: Vec<String>,
    rest: Vec<String>,
}

fn parse(p: &mut Args) -> Result<Flags> {
    let mut f = Flags::default();
    while let Some(a) = p.next().map_err(bad)? {
        match a {
            Long("process") | Short('p') => f.process = Some(PathBuf::from(value(p)?)),
            Long("tty") | Short('t') => f.tty = true,
            Long("detach") | Short('d') => f.detach = true,
            Long("console-socket") => f.console_socket = Some(PathBuf::from(value(p)?)),
            Long("pid-file") => f.pid_file = Some(PathBuf::from(value(p)?)),
            Long("cwd") => f.cwd = Some(PathBuf::from(value(p)?)),
            Long("env") | Short('e') => f.env.push(value(p)?),
            Long("user") | Short('u') => f.user = Some(value(p)?),
            Long("additional-gids") | Short('g') => f.env.push(format!("\0gid={}", value(p)?)),
            Long("cap") | Short('c') => f.caps.push(value(p)?),
            Long("apparmor") | Long("process-label") | Long("cgroup") => {
                let _ = value(p)?;
            }
            Long("no-new-privs") => f.no_new_privs = true,
            Long("preserve-fds") => {
                f.preserve_fds = value(p)?.parse().map_err(|_| bad("--preserve-fds needs a number"))?
            }
            Value(v) => {
                f.rest.push(string(v)?);
                for v in p.raw_args().map_err(bad)? {
                    f.rest.push(string(v)?);
                }
            }
            a => return Err(super::unexpected(a)),
        }
    }
    Ok(f)
}

fn build_process(c: &Container, f: &mut Flags, args: Vec<String>) -> Result<Process> {
    let mut proc = match &f.process {
        Some(path) => {
            let data = std::fs::read(path).map_err(|e| bad(format!("read {}: {e}", path.display())))?;
            serde_json::from_slice(&data).map_err(|e| bad(format!("{}: {e}", path.display())))?
        }
        None => {
            if args.is_empty() {
                return Err(bad("exec needs a command or --process"));
            }
            exec::process_from_args(c, args)
        }
    };
    if f.tty {
        proc.set_terminal(Some(true));
    }
    if let Some(cwd) = f.cwd.take() {
        proc.set_cwd(cwd);
    }
    let mut env = proc.env().clone().unwrap_or_default();
    for e in f.env.iter().filter(|e| !e.starts_with('\0')) {
        env.push(e.clone());
    }
    proc.set_env(Some(env));
    if let Some(u) = &f.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u.as_str(), "0"));
        let user = proc.user_mut();
        user.set_uid(uid.parse().map_err(|_| bad(format!("--user {u}: uid[:gid] must be numeric")))?);
        user.set_gid(gid.parse().map_err(|_| bad(format!("--user {u}: uid[:gid] must be numeric")))?);
    }
    let gids: Vec<u32> = f.env.iter().filter_map(|e| e.strip_prefix("\0gid=")?.parse().ok()).collect();
    if !gids.is_empty() {
        proc.user_mut().set_additional_gids(Some(gids));
    }
    if f.no_new_privs {
        proc.set_no_new_privileges(Some(true));
    }
    if !f.caps.is_empty() {
        let caps = f.caps.iter().map(|c| wharf_runtime::caps::parse(c)).collect::<Result<Vec<_>>>()?;
        exec::add_capabilities(&mut proc, &caps);
    }
    Ok(proc)
}

/// Any failure to start the process exits 255, as runc's `exec` (a missing
/// binary, a stopped container): callers tell it from the process's own code.
pub(crate) fn run(g: &Global, p: &mut Args) -> Result<i32> {
    match exec(g, p) {
        Ok(code) => Ok(code),
        Err(e) => {
            let msg = format!("exec failed: {e}");
            wharf_runtime::log::error(&msg);
            eprintln!("wharf-runtime: {msg}");
            Ok(255)
        }
    }
}

fn exec(g: &Global, p: &mut Args) -> Result<i32> {
    let mut f = parse(p)?;
    let mut rest = std::mem::take(&mut f.rest);
    if rest.is_empty() {
        return Err(bad("a container id is required"));
    }
    let id = rest.remove(0);
    let c = Container::load(&g.root, &id)?;
    let process = build_process(&c, &mut f, rest)?;
    let opts = ExecOptions {
        process,
        console_socket: f.console_socket.take(),
        pid_file: f.pid_file.take(),
        preserve_fds: f.preserve_fds,
        stdio: None,
    };
    let proc = c.exec(&opts)?;
    if f.detach {
        return Ok(0);
    }
    Ok(proc.wait()?.code())
}
