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
