//! `wharf cri` on a temp socket with a temp store, driven by the real
//! `crictl` (shared/tools) and by a tonic client on the same protos.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// crictl and critest: `$WHARF_CRITEST_TOOLS`, else `shared/tools` beside the repository.
pub fn tools_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("WHARF_CRITEST_TOOLS") {
        return PathBuf::from(d);
    }
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools");
    assert!(
        d.join("crictl").is_file(),
        "{} has no crictl: shared/ must lie beside the repository (or set WHARF_CRITEST_TOOLS)",
        d.display()
    );
    d.canonicalize().unwrap()
}

/// A gRPC channel to the CRI server on unix socket `sock`.
pub async fn channel(sock: &Path) -> tonic::transport::Channel {
    let path = sock.to_path_buf();
    tonic::transport::Endpoint::try_from("http://[::]:50051")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }))
        .await
        .unwrap()
}

/// critest's look-alike images (`critest-lab/images/build-images.sh`),
/// built in `lab` and pushed to the registry at `reg`.
pub fn build_critest_images(lab: &Path, reg: &str) {
    let build = Command::new("bash")
        .arg(tools_dir().join("critest-lab/images/build-images.sh"))
        .env("LAB", lab)
        .env("REG", reg)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(build.status.success(), "build-images.sh: {}", String::from_utf8_lossy(&build.stderr));
}

/// A running `wharf cri`, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct CriDaemon {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub run_root: PathBuf,
    pub socket: PathBuf,
    pub config: PathBuf,
    pub docker_config: PathBuf,
    child: Option<Child>,
}

impl CriDaemon {
    /// A daemon with its store, run root and socket under `dir`, and `config` as its config file.
    pub fn start(dir: &Path, config: &str) -> Self {
        let cfg = dir.join("cri.toml");
        std::fs::write(&cfg, config).unwrap();
        let mut d = CriDaemon {
            dir: dir.to_path_buf(),
            root: dir.join("root"),
            run_root: dir.join("run"),
            socket: dir.join("run/cri.sock"),
            config: cfg,
            docker_config: dir.join("docker-config"),
            child: None,
        };
        d.spawn();
        d
    }

    /// Starts the daemon again on the same store and socket.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = self.command().stdout(Stdio::null()).stderr(self.log_file()).spawn().expect("spawn wharf cri");
        self.child = Some(child);
        let t0 = Instant::now();
        loop {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!("wharf cri exited at start ({st}):\n{}", self.log());
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "wharf cri does not listen:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's command line, for starts that are expected to fail.
    pub fn command(&self) -> Command {
        let mut c = Command::new(crate::bin("wharf"));
        c.arg("--root").arg(&self.root).arg("--run-root").arg(&self.run_root).args(["--log-level", "info", "cri"]);
        c.arg("--listen").arg(format!("unix://{}", self.socket.display())).arg("--config").arg(&self.config);
        // Never the user's ~/.docker.
        c.env("DOCKER_CONFIG", &self.docker_config).env_remove("WHARF_INSECURE_REGISTRIES");
        c
    }

    fn log_file(&self) -> std::fs::File {
        std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("cri.log")).unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("cri.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// Sends `sig` and waits for the exit.
    pub fn stop_with(&mut self, sig: i32) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        unsafe { libc::kill(child.id() as i32, sig) };
        let t0 = Instant::now();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            if t0.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("wharf cri did not stop on signal {sig}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `crictl ARGS` against this daemon (both endpoints, no config file).
    pub fn crictl(&self, args: &[&str]) -> Output {
        let ep = format!("unix://{}", self.socket.display());
        Command::new(tools_dir().join("crictl"))
            .args(["--config", "/dev/null", "-r", &ep, "-i", &ep, "-t", "60s"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run crictl")
    }

    /// `crictl ARGS`, which must succeed; its stdout.
    pub fn crictl_ok(&self, args: &[&str]) -> String {
        let out = self.crictl(args);
        assert!(
            out.status.success(),
            "crictl {args:?}: {}{}\ndaemon log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `crictl ARGS`, which must fail; its stderr.
    pub fn crictl_fails(&self, args: &[&str]) -> String {
        let out = self.crictl(args);
        assert!(!out.status.success(), "crictl {args:?} should fail: {}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `crictl CMD -o json ARGS…`, parsed (crictl's flags go before the arguments).
    pub fn crictl_json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.splice(1..1, ["-o", "json"]);
        let out = self.crictl_ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("crictl {a:?}: not JSON ({e}): {out}"))
    }
}

impl Drop for CriDaemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let t0 = Instant::now();
            while c.try_wait().ok().flatten().is_none() {
                if t0.elapsed() > Duration::from_secs(15) {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The nat chains the CNI `portmap` plugin makes on its first ADD with a
/// port mapping and never removes (its DEL removes only the pod's own
/// `CNI-DN-*` chain and rules). containerd and CRI-O leave them too, and so
/// does `wharf cri` (as the kubelet's runtime it cannot know it is the last
/// user of the plugin on the host; another runtime's pods may use them):
/// the tests that drive portmap remove them, when they made them.
pub const PORTMAP_CHAINS: [&str; 3] = ["CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"];

/// Shared by every test process that uses portmap: the users alive and
/// whether the chains existed before the first of them began.
const PORTMAP_STATE: &str = "/run/wharf-tests-portmap.json";

/// A test's use of the portmap plugin, from its start to its drop. Test
/// binaries (and the tests in one) run in parallel and the chains are the
/// host's: the first user of a session records whether they exist, the
/// last one removes them if they did not (and no rule is left in
/// `CNI-HOSTPORT-DNAT`: someone else, e.g. containerd's critest run, still
/// maps ports); never what existed before. The state file is guarded by
/// an flock on the plugin binary itself, so nothing is left once done.
pub struct PortmapUser {
    key: String,
}

#[derive(Default)]
struct PortmapState {
    existed_before: bool,
    users: Vec<String>,
}

impl PortmapState {
    /// The state file, the users whose process is gone dropped.
    fn load() -> Self {
        let v: serde_json::Value =
            std::fs::read(PORTMAP_STATE).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        let users = v["users"].as_array().into_iter().flatten().filter_map(|u| u.as_str());
        let alive = |u: &&str| u.split('-').next().is_some_and(|pid| Path::new("/proc").join(pid).exists());
        PortmapState {
            existed_before: v["existed_before"].as_bool().unwrap_or(false),
            users: users.filter(alive).map(str::to_string).collect(),
        }
    }

    fn save(&self) {
        let v = serde_json::json!({"existed_before": self.existed_before, "users": self.users});
        std::fs::write(PORTMAP_STATE, v.to_string()).unwrap();
    }
}

fn portmap_guard() -> std::fs::File {
    let f = std::fs::File::open("/usr/lib/cni/portmap").expect("the CNI portmap plugin (scripts/deps.sh)");
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).unwrap();
    f
}

impl PortmapUser {
    pub fn begin() -> Self {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let key = format!("{}-{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let _g = portmap_guard();
        let mut s = PortmapState::load();
        if s.users.is_empty() {
            s.existed_before = portmap_chains_present(&host_iptables);
        }
        s.users.push(key.clone());
        s.save();
        PortmapUser { key }
    }
}

impl Drop for PortmapUser {
    fn drop(&mut self) {
        let _g = portmap_guard();
        let mut s = PortmapState::load();
        s.users.retain(|u| *u != self.key);
        if !s.users.is_empty() {
            s.save();
            return;
        }
        let _ = std::fs::remove_file(PORTMAP_STATE);
        if !s.existed_before {
            if let Err(e) = remove_portmap_chains(&host_iptables) {
                eprintln!("portmap's chains left: {e}");
            }
        }
    }
}

/// `iptables -t nat ARGS` on the host; its stdout, or its stderr as error.
pub fn host_iptables(args: &[&str]) -> Result<String, String> {
    let out = Command::new("iptables").args(["-w", "-t", "nat"]).args(args).output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("iptables {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Whether any of [`PORTMAP_CHAINS`] exists.
pub fn portmap_chains_present(ipt: &dyn Fn(&[&str]) -> Result<String, String>) -> bool {
    PORTMAP_CHAINS.iter().any(|c| ipt(&["-S", c]).is_ok())
}

/// The jumps to [`PORTMAP_CHAINS`] from the built-in chains, then the
/// chains; nothing while `CNI-HOSTPORT-DNAT` still holds a pod's rule.
pub fn remove_portmap_chains(ipt: &dyn Fn(&[&str]) -> Result<String, String>) -> Result<(), String> {
    if let Ok(dnat) = ipt(&["-S", PORTMAP_CHAINS[0]]) {
        if dnat.lines().any(|l| l.starts_with("-A ")) {
            return Err(format!("{} still maps ports:\n{dnat}", PORTMAP_CHAINS[0]));
        }
    }
    for builtin in ["PREROUTING", "OUTPUT", "POSTROUTING"] {
        for rule in ipt(&["-S", builtin])?.lines() {
            let Some(rest) = rule.strip_prefix("-A ") else { continue };
            if PORTMAP_CHAINS.iter().any(|c| rule.ends_with(&format!("-j {c}"))) {
                let mut args = vec!["-D".to_string()];
                args.extend(split_rule(rest));
                ipt(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
            }
        }
    }
    for c in PORTMAP_CHAINS {
        if ipt(&["-S", c]).is_ok() {
            ipt(&["-F", c])?;
            ipt(&["-X", c])?;
        }
    }
    Ok(())
}

/// The words of a rule as `iptables -S` prints it (double quotes around
/// words with spaces, `\"` inside them).
fn split_rule(rule: &str) -> Vec<String> {
    let (mut out, mut word, mut quoted, mut escaped, mut any) = (Vec::new(), String::new(), false, false, false);
    for ch in rule.chars() {
        match ch {
            _ if escaped => {
                word.push(ch);
                escaped = false;
            }
            '\\' if quoted => escaped = true,
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            _ => word.push(ch),
        }
    }
    if any || !word.is_empty() {
        out.push(word);
    }
    out
}
