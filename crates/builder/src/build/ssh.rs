//! `RUN --mount=type=ssh` with `--ssh ID=SOCKET|KEYFILE…`, as BuildKit's
//! `session/sshforward`: each `--ssh` ID names an agent — a forwarded
//! socket (`default`: `$SSH_AUTH_SOCK`), or key files served by an agent the
//! build runs for its duration (Debian's `ssh-agent`, fed by `ssh-add`).
//! A RUN never sees the agent's socket itself: it gets a socket of its own
//! (mode, uid, gid of the mount) whose connections are relayed to the agent
//! read-only — listing keys and signing, nothing that adds, removes or
//! locks keys (BuildKit's `readOnlyAgent`).

use super::error::{BuildError, BuildResult};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// BuildKit's ID when `--ssh` and `--mount=type=ssh` name none.
pub const DEFAULT_ID: &str = "default";

/// One `--ssh ID[=PATH,…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSpec {
    pub id: String,
    /// Empty: `$SSH_AUTH_SOCK`.
    pub paths: Vec<PathBuf>,
}

impl SshSpec {
    /// `default`, `ID`, `ID=SOCKET`, `ID=KEY[,KEY…]`, as `docker buildx build --ssh`.
    pub fn parse(s: &str) -> BuildResult<SshSpec> {
        let (id, paths) = s.split_once('=').unwrap_or((s, ""));
        let id = if id.is_empty() { DEFAULT_ID } else { id };
        if id.contains(',') {
            return Err(BuildError::Invalid(format!("--ssh {s:?}: use ID[=SOCKET|KEY[,KEY…]]")));
        }
        let paths = paths.split(',').filter(|p| !p.is_empty()).map(PathBuf::from).collect();
        Ok(SshSpec { id: id.to_string(), paths })
    }
}

/// The agents of a build, by ID: their sockets, and the `ssh-agent`s it runs.
#[derive(Default)]
pub(crate) struct Agents {
    sockets: HashMap<String, PathBuf>,
    /// `sh` minding an `ssh-agent`: it stops the agent when its stdin closes
    /// (our end: on drop, or when this process dies, even by SIGKILL).
    minders: Vec<Child>,
}

impl Agents {
    /// Resolves every `--ssh`; key files get an agent of their own in `dir`.
    pub(crate) fn start(specs: &[SshSpec], dir: &Path) -> BuildResult<Agents> {
        let mut agents = Agents::default();
        for (n, spec) in specs.iter().enumerate() {
            if agents.sockets.contains_key(&spec.id) {
                return Err(BuildError::Invalid(format!("--ssh: duplicate agent ID {:?}", spec.id)));
            }
            let bad = |m: String| BuildError::Invalid(format!("--ssh {}: {m}", spec.id));
            let paths = match spec.paths.as_slice() {
                [] => match std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()) {
                    Some(s) => vec![PathBuf::from(s)],
                    None => return Err(bad("invalid empty ssh agent socket: SSH_AUTH_SOCK is not set".into())),
                },
                p => p.to_vec(),
            };
            let (mut sockets, mut keys) = (Vec::new(), Vec::new());
            for p in &paths {
                let meta = std::fs::metadata(p).map_err(|e| bad(format!("{}: {e}", p.display())))?;
                if meta.file_type().is_socket() {
                    sockets.push(p.clone());
                } else {
                    keys.push(p.clone());
                }
            }
            let socket = match (sockets.as_slice(), keys.is_empty()) {
                ([s], true) => s.clone(),
                ([], false) => agents.serve_keys(&keys, &dir.join(format!("agent{n}")), &bad)?,
                ([_, _, ..], _) => return Err(bad("only single socket allowed".into())),
                _ => return Err(bad("invalid combination of keys and sockets".into())),
            };
            agents.sockets.insert(spec.id.clone(), socket);
        }
        Ok(agents)
    }

    /// The socket of agent `id`, if `--ssh` gave one.
    pub(crate) fn socket(&self, id: &str) -> Option<&Path> {
        self.sockets.get(id).map(PathBuf::as_path)
    }

    /// Runs an `ssh-agent` on `dir/sock` holding `keys`.
    fn serve_keys(&mut self, keys: &[PathBuf], dir: &Path, bad: &dyn Fn(String) -> BuildError) -> BuildResult<PathBuf> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(|e| BuildError::io(format!("create {}", dir.display()), e))?;
        let sock = dir.join("sock");
        let minder = Command::new("sh")
            .args(["-c", "ssh-agent -D -a \"$1\" >/dev/null & read -r _; kill $!; wait", "sh"])
            .arg(&sock)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| bad(format!("run ssh-agent (Debian's openssh-client): {e}")))?;
        self.minders.push(minder);
        let t0 = std::time::Instant::now();
        while UnixStream::connect(&sock).is_err() {
            let exited = self.minders.last_mut().and_then(|m| m.try_wait().ok().flatten());
            if exited.is_some() || t0.elapsed() > std::time::Duration::from_secs(10) {
                return Err(bad("ssh-agent did not start (is openssh-client installed?)".into()));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        for (i, k) in keys.iter().enumerate() {
            // A copy only we can read: ssh-add refuses keys others may read,
            // BuildKit does not care.
            let mut text = Vec::new();
            std::fs::File::open(k)
                .and_then(|f| f.take(100 << 10).read_to_end(&mut text))
                .map_err(|e| bad(format!("failed to read {}: {e}", k.display())))?;
            let copy = dir.join(format!("key{i}"));
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&copy)
                .and_then(|mut f| f.write_all(&text))
                .map_err(|e| BuildError::io(format!("write {}", copy.display()), e))?;
            let out =
                Command::new("ssh-add").arg("-q").arg(&copy).env("SSH_AUTH_SOCK", &sock).stdin(Stdio::null()).output();
            let _ = std::fs::remove_file(&copy);
            match out {
                Ok(o) if o.status.success() => {}
                Ok(o) => {
                    let why = String::from_utf8_lossy(&o.stderr).replace(&*copy.to_string_lossy(), "");
                    return Err(bad(format!("failed to parse {}: {}", k.display(), why.trim())));
                }
                Err(e) => return Err(bad(format!("run ssh-add: {e}"))),
            }
        }
        Ok(sock)
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        for mut m in self.minders.drain(..) {
            drop(m.stdin.take());
            let _ = m.wait();
        }
    }
}

/// A RUN's socket relaying to an agent, for as long as the RUN lasts.
pub(crate) struct Forward {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Forward {
    /// Listens on `path` (mode, owner as the mount says) for `agent`.
    pub(crate) fn start(agent: &Path, path: PathBuf, mode: u32, uid: u32, gid: u32) -> BuildResult<Forward> {
        let listener =
            UnixListener::bind(&path).map_err(|e| BuildError::io(format!("listen on {}", path.display()), e))?;
        use std::os::unix::fs::MetadataExt;
        let owner = std::fs::metadata(&path).map(|m| (m.uid(), m.gid()));
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode & 0o777))
            .and_then(|()| match owner {
                Ok(o) if o == (uid, gid) => Ok(()),
                _ => std::os::unix::fs::chown(&path, Some(uid), Some(gid)),
            })
            .map_err(|e| BuildError::io(format!("set owner and mode of {}", path.display()), e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (agent, stopped) = (agent.to_path_buf(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(c) = conn {
                    let agent = agent.clone();
                    std::thread::spawn(move || relay(c, &agent));
                }
            }
        });
        Ok(Forward { path, stop, thread: Some(thread) })
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread up to see the flag.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The agent protocol's messages a build may send: list keys, sign.
const REQUEST_IDENTITIES: u8 = 11;
const SIGN_REQUEST: u8 = 13;
const FAILURE: [u8; 5] = [0, 0, 0, 1, 5];
/// No agent message is near this; a longer one ends the connection.
const MAX_MESSAGE: usize = 256 << 10;

fn read_message(r: &mut impl Read) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).ok()?;
    let n = u32::from_be_bytes(len) as usize;
    if n == 0 || n > MAX_MESSAGE {
        return None;
    }
    let mut msg = vec![0u8; 4 + n];
    msg[..4].copy_from_slice(&len);
    r.read_exact(&mut msg[4..]).ok()?;
    Some(msg)
}

/// One client: each request passed on (or refused), its answer passed back.
fn relay(mut client: UnixStream, agent: &Path) {
    let mut upstream: Option<UnixStream> = None;
    while let Some(req) = read_message(&mut client) {
        let answer = if matches!(req[4], REQUEST_IDENTITIES | SIGN_REQUEST) {
            if upstream.is_none() {
                upstream = UnixStream::connect(agent).ok();
            }
            let Some(up) = upstream.as_mut() else { return };
            if up.write_all(&req).is_err() {
                return;
            }
            match read_message(up) {
                Some(a) => a,
                None => return,
            }
        } else {
            FAILURE.to_vec()
        };
        if client.write_all(&answer).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(SshSpec::parse("default").unwrap(), SshSpec { id: "default".into(), paths: vec![] });
        let s = SshSpec::parse("git=/k/a,/k/b").unwrap();
        assert_eq!(s, SshSpec { id: "git".into(), paths: vec!["/k/a".into(), "/k/b".into()] });
        assert_eq!(SshSpec::parse("=/s").unwrap().id, "default");
    }

    #[test]
    fn refuses_what_buildkit_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
        let _l = (UnixListener::bind(&a).unwrap(), UnixListener::bind(&b).unwrap());
        let key = dir.path().join("key");
        std::fs::write(&key, "not a key").unwrap();
        let err = |paths: Vec<PathBuf>| {
            Agents::start(&[SshSpec { id: "x".into(), paths }], dir.path()).err().unwrap().to_string()
        };
        assert!(err(vec![a.clone(), b]).contains("only single socket allowed"));
        assert!(err(vec![a.clone(), key]).contains("invalid combination of keys and sockets"));
        assert!(err(vec![dir.path().join("missing")]).contains("missing"));
        let twice = [SshSpec { id: "x".into(), paths: vec![a.clone()] }, SshSpec { id: "x".into(), paths: vec![a] }];
        assert!(Agents::start(&twice, dir.path()).err().unwrap().to_string().contains("duplicate agent ID"));
    }

    #[test]
    fn relays_only_reads() {
        let dir = tempfile::tempdir().unwrap();
        let agent = dir.path().join("agent.sock");
        let l = UnixListener::bind(&agent).unwrap();
        // A fake agent: answers every request with SSH_AGENT_IDENTITIES_ANSWER, no keys.
        std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            while read_message(&mut c).is_some() {
                c.write_all(&[0, 0, 0, 5, 12, 0, 0, 0, 0]).unwrap();
            }
        });
        let fwd = Forward::start(&agent, dir.path().join("fwd.sock"), 0o600, 0, 0).unwrap();
        let mut c = UnixStream::connect(dir.path().join("fwd.sock")).unwrap();
        c.write_all(&[0, 0, 0, 1, REQUEST_IDENTITIES]).unwrap();
        assert_eq!(read_message(&mut c).unwrap(), vec![0, 0, 0, 5, 12, 0, 0, 0, 0]);
        // SSH_AGENTC_REMOVE_ALL_IDENTITIES: refused here, never sent on.
        c.write_all(&[0, 0, 0, 1, 19]).unwrap();
        assert_eq!(read_message(&mut c).unwrap(), FAILURE.to_vec());
        drop(fwd);
        assert!(!dir.path().join("fwd.sock").exists());
    }
}
