//! Name resolution on user networks: Debian's `aardvark-dns` (podman's),
//! one process per store serving every network on its gateway, port 53.
//! Its config dir `<run-root>/aardvark/` holds one file per network: the
//! gateway on the first line, then `ID IPV4 IPV6 NAME,ALIAS…[ DNS,…]` per
//! container (the 1.4.0 format). It reloads on SIGHUP and exits by itself
//! when no file is left. It writes `aardvark.pid` there; a dead pid is found
//! and replaced by the next change. Edits are serialized by
//! `<run-root>/aardvark.lock` (outside the dir: aardvark reads every file in it).
//!
//! Why aardvark and not our own server: it is what podman ships and tests,
//! it forwards other names to the host's resolvers, and it costs one
//! process per store, not per container.

use crate::error::{Error, Result};
use crate::network::Network;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

const BINARIES: &[&str] = &["/usr/lib/podman/aardvark-dns", "/usr/libexec/podman/aardvark-dns"];
const PID_FILE: &str = "aardvark.pid";

pub(crate) struct Aardvark {
    dir: PathBuf,
    lock: PathBuf,
}

/// One container's line.
pub(crate) struct Entry<'a> {
    pub id: &'a str,
    pub ip: Ipv4Addr,
    pub names: Vec<String>,
    pub dns: &'a [String],
}

impl Aardvark {
    pub(crate) fn new(run_root: &Path) -> Self {
        Aardvark { dir: run_root.join("aardvark"), lock: run_root.join("aardvark.lock") }
    }

    /// Adds `e` to the network's file (made with its gateway and upstream servers first) and reloads.
    pub(crate) fn add(&self, net: &Network, e: &Entry) -> Result<()> {
        let _lock = crate::network::lock_file(&self.lock, true)?;
        let path = self.dir.join(&net.name);
        let mut text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            let upstream: Vec<String> = net.dns_servers.iter().map(|d| d.to_string()).collect();
            format!("{} {}", net.gateway, upstream.join(",")).trim_end().to_string() + "\n"
        });
        let mut line = format!("{} {}  {}", e.id, e.ip, e.names.join(","));
        if !e.dns.is_empty() {
            line = format!("{line} {}", e.dns.join(","));
        }
        text.push_str(&line);
        text.push('\n');
        self.write(&path, text.as_bytes())?;
        self.reload()
    }

    /// Removes container `id` from `network`'s file (the file with it when
    /// it was the last) and reloads.
    pub(crate) fn remove(&self, network: &str, id: &str) -> Result<()> {
        let _lock = crate::network::lock_file(&self.lock, true)?;
        let path = self.dir.join(network);
        let Ok(text) = std::fs::read_to_string(&path) else { return Ok(()) };
        let mut lines: Vec<&str> = text.lines().collect();
        let before = lines.len();
        lines.retain(|l| l.split(' ').next() != Some(id));
        if lines.len() == before {
            return Ok(());
        }
        if lines.len() <= 1 {
            crate::network::remove_file(&path)?;
        } else {
            self.write(&path, format!("{}\n", lines.join("\n")).as_bytes())?;
        }
        self.reload()
    }

    /// Forgets a removed network.
    pub(crate) fn remove_network(&self, network: &str) -> Result<()> {
        let _lock = crate::network::lock_file(&self.lock, true)?;
        let path = self.dir.join(network);
        if !path.exists() {
            return Ok(());
        }
        crate::network::remove_file(&path)?;
        self.reload()
    }

    /// Temp file beside the dir, not in it (aardvark would read it), then rename.
    fn write(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        use std::io::Write;
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(format!("create {}", self.dir.display()), e))?;
        let tmp = self.lock.with_extension(format!("tmp-{}", std::process::id()));
        let res = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        res.map_err(|e| Error::io(format!("write {}", path.display()), e))
    }

    /// Container IDs with an entry, per network file.
    pub(crate) fn entries(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let net = e.file_name().to_string_lossy().into_owned();
            if net == PID_FILE {
                continue;
            }
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            out.extend(
                text.lines().skip(1).filter_map(|l| l.split(' ').next()).map(|id| (net.clone(), id.to_string())),
            );
        }
        out
    }

    fn configs(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name() != PID_FILE && !e.file_name().to_string_lossy().starts_with('.'))
                    .count()
            })
            .unwrap_or(0)
    }

    /// The running server's pid, if its pid file names a live aardvark-dns;
    /// else, with `scan` (the run root wiped under it), the aardvark-dns
    /// serving this dir found among all processes.
    fn running(&self, scan: bool) -> Option<i32> {
        let is_aardvark =
            |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "aardvark-dns");
        let from_file: Option<i32> =
            std::fs::read_to_string(self.dir.join(PID_FILE)).ok().and_then(|p| p.trim().parse().ok());
        if let Some(pid) = from_file.filter(|p| is_aardvark(*p)) {
            return Some(pid);
        }
        if !scan {
            return None;
        }
        let want = format!("\0--config\0{}\0", self.dir.display());
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            (is_aardvark(pid) && String::from_utf8_lossy(&cmd).contains(&want)).then_some(pid)
        })
    }

    /// SIGHUP to the running server; or start one when there is config.
    fn reload(&self) -> Result<()> {
        // Before starting one: never two servers for one config dir.
        if let Some(pid) = self.running(true) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGHUP);
            return Ok(());
        }
        let _ = std::fs::remove_file(self.dir.join(PID_FILE));
        if self.configs() == 0 {
            return Ok(());
        }
        let bin = BINARIES.iter().map(Path::new).find(|p| p.is_file()).ok_or_else(|| {
            Error::Network(
                "aardvark-dns not found (apt-get install aardvark-dns): user networks need it for names".into(),
            )
        })?;
        // It forks a daemon and returns once that is serving.
        let out = std::process::Command::new(bin)
            .arg("--config")
            .arg(&self.dir)
            .args(["-p", "53", "run"])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| Error::io(format!("run {}", bin.display()), e))?;
        if !out.status.success() {
            return Err(Error::Network(format!("aardvark-dns: {}", String::from_utf8_lossy(&out.stderr).trim())));
        }
        Ok(())
    }

    /// Stops the server (a store's last network removed, or a sweep);
    /// `scan`: see [`Aardvark::running`].
    pub(crate) fn sweep(&self, scan: bool) {
        let Ok(_lock) = crate::network::lock_file(&self.lock, true) else { return };
        // Temp files of writes a kill -9 cut short (writes hold this lock).
        let parent = self.lock.parent().unwrap_or(Path::new("."));
        for e in std::fs::read_dir(parent).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with("aardvark.tmp-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
        if self.configs() == 0 {
            if let Some(pid) = self.running(scan) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
            }
            let _ = std::fs::remove_file(self.dir.join(PID_FILE));
        }
    }
}
