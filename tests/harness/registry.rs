//! Debian's `docker-registry` (distribution 2.8) on a free loopback port,
//! with its own storage dir; stopped by its pid when dropped.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub enum Auth {
    None,
    /// htpasswd (bcrypt) Basic auth for one user.
    Htpasswd {
        user: String,
        password: String,
    },
    /// Token auth against an issuer the test runs.
    Token {
        realm: String,
        service: String,
        issuer: String,
        cert_pem: String,
    },
}

pub struct TestRegistry {
    pub addr: String,
    pub dir: tempfile::TempDir,
    child: Child,
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn wait_listening(addr: &str) {
    let t0 = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(15), "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(30));
    }
}

impl TestRegistry {
    pub fn start(auth: Auth) -> Self {
        let bin = crate::require_tool("docker-registry");
        let dir = tempfile::Builder::new().prefix("wharf-registry-").tempdir().unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let auth_yaml = match auth {
            Auth::None => String::new(),
            Auth::Htpasswd { user, password } => {
                let h = bcrypt::hash(password, 4).unwrap();
                let p = dir.path().join("htpasswd");
                std::fs::write(&p, format!("{user}:{h}\n")).unwrap();
                format!("auth:\n  htpasswd:\n    realm: wharf-test\n    path: {}\n", p.display())
            }
            Auth::Token { realm, service, issuer, cert_pem } => {
                let p = dir.path().join("issuer.pem");
                std::fs::write(&p, cert_pem).unwrap();
                format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                    p.display()
                )
            }
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth_yaml}",
            dir.path().join("data").display()
        );
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        wait_listening(&addr);
        TestRegistry { addr, dir, child }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
