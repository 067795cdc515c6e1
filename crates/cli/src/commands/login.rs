use super::registry_args::RegistryArgs;
use crate::Globals;
use anyhow::Context;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use wharf_registry::auth::{Credential, DockerConfig};
use wharf_registry::Registry;

#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// Registry host (Docker Hub when omitted).
    server: Option<String>,
    #[arg(short, long)]
    username: Option<String>,
    /// Password or token (prefer --password-stdin: this shows in `ps`).
    #[arg(short, long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password or token from stdin.
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    /// Registry host (Docker Hub when omitted).
    server: Option<String>,
}

fn host(server: Option<&str>) -> String {
    let s = server.unwrap_or("docker.io");
    wharf_registry::auth::config::key_host(s)
}

fn prompt(label: &str, hide: bool) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    anyhow::ensure!(stdin.is_terminal(), "{label} required: pass it with a flag");
    eprint!("{label}: ");
    std::io::stderr().flush()?;
    let old = if hide { rustix::termios::tcgetattr(&stdin).ok() } else { None };
    if let Some(t) = &old {
        let mut quiet = t.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
    }
    let mut line = String::new();
    let res = stdin.lock().read_line(&mut line);
    if let Some(t) = &old {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, t);
        eprintln!();
    }
    res?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

pub fn login(_g: &Globals, a: LoginArgs) -> anyhow::Result<ExitCode> {
    let host = host(a.server.as_deref());
    let username = match a.username {
        Some(u) => u,
        None => prompt("Username", false)?,
    };
    let password = if a.password_stdin {
        let mut s = String::new();
        std::io::stdin().read_line(&mut s).context("read password from stdin")?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else {
        match a.password {
            Some(p) => p,
            None => prompt("Password", true)?,
        }
    };
    anyhow::ensure!(!username.is_empty() && !password.is_empty(), "username and password must not be empty");
    let cred = Credential::Basic { username, password };
    let mut opts = a.registry.options();
    opts.credentials = Some(cred.clone());
    let reg = Registry::new(&host, opts)?;
    wharf_registry::block_on(reg.verify_login())?;
    let mut cfg = DockerConfig::load()?;
    cfg.store(&host, &cred)?;
    crate::outln!("Login Succeeded")?;
    Ok(ExitCode::SUCCESS)
}

pub fn logout(_g: &Globals, a: LogoutArgs) -> anyhow::Result<ExitCode> {
    let host = host(a.server.as_deref());
    let mut cfg = DockerConfig::load()?;
    if cfg.erase(&host)? {
        crate::outln!("Removing login credentials for {host}")?;
    } else {
        crate::outln!("Not logged in to {host}")?;
    }
    Ok(ExitCode::SUCCESS)
}
