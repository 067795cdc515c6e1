//! `exec`: a new process in a running container, through the runtime
//! library in this process (as `runc exec`): the container's namespaces,
//! cgroup, capabilities and seccomp filter, plus the user's overrides.

use super::record::Container;
use super::tty::Console;
use super::Containers;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
    pub privileged: bool,
}

impl Containers {
    /// Runs `r.cmd` in `c`; its exit code (0 at once with `detach`).
    pub fn exec(&self, c: &Container, r: &ExecRequest) -> Result<i32> {
        if !c.is_running() || c.status == super::Status::Restarting {
            return Err(Error::Conflict(format!("container {} is not running", c.id())));
        }
        if c.status == super::Status::Paused {
            return Err(Error::Conflict(format!("container {} is paused, unpause the container before exec", c.id())));
        }
        if r.cmd.is_empty() {
            return Err(Error::InvalidArgument("no command specified".into()));
        }
        let rt = wharf_runtime::Container::load(&self.state_root(), c.id())
            .map_err(|_| Error::Conflict(format!("container {} is not running", c.id())))?;
        let mut p = wharf_runtime::exec::process_from_args(&rt, r.cmd.clone());
        let mut env = p.env().clone().unwrap_or_default();
        wharf_runtime::spec::merge_env(&mut env, &r.env);
        p.set_env(Some(env));
        if let Some(w) = &r.workdir {
            p.set_cwd(w.into());
        }
        if let Some(u) = &r.user {
            let (uid, gid, groups) = wharf_runtime::spec::resolve_user(&c.dir.join("merged"), u)?;
            let mut user = p.user().clone();
            user.set_uid(uid);
            user.set_gid(gid);
            user.set_additional_gids(Some(groups));
            p.set_user(user);
        }
        p.set_terminal(Some(r.tty));
        let console = if r.tty { Some(Console::listen(&self.run_root, c.id())?) } else { None };
        if !r.interactive || r.detach {
            let null = std::fs::File::open("/dev/null").map_err(|e| Error::io("open /dev/null", e))?;
            rustix::stdio::dup2_stdin(&null).map_err(|e| Error::io("redirect stdin", e.into()))?;
        }
        let opts = wharf_runtime::ExecOptions {
            process: p,
            console_socket: console.as_ref().map(|c| c.path().to_path_buf()),
            pid_file: None,
            preserve_fds: 0,
            stdio: None,
        };
        let proc = rt.exec(&opts)?;
        let relay = match &console {
            Some(con) if !r.detach => Some(con.attach(r.interactive)?),
            _ => None,
        };
        if r.detach {
            return Ok(0);
        }
        let status = proc.wait()?;
        drop(relay);
        Ok(status.code())
    }
}
