//! The URLs' tokens: random, single use, valid for `token_ttl_secs`. Each
//! names the job its RPC validated (what to run, where).

use base64::Engine;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a token stands for.
#[derive(Debug, Clone)]
pub(crate) enum Job {
    Exec { target: Target, cmd: Vec<String>, opts: StdioOpts },
    Attach { target: Target, opts: StdioOpts },
    PortForward { pod: String, netns: Option<PathBuf>, ports: Vec<u16> },
}

impl Job {
    pub fn kind(&self) -> &'static str {
        match self {
            Job::Exec { .. } => "exec",
            Job::Attach { .. } => "attach",
            Job::PortForward { .. } => "portforward",
        }
    }
}

/// A container and the store it lives in.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub root: PathBuf,
    pub run_root: PathBuf,
    pub id: String,
    /// CreateContainer's `stdin_once` without a tty (as containerd): an
    /// attach that ends its input, or goes away, closes the container's stdin.
    pub stdin_once: bool,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StdioOpts {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

pub(crate) struct Tokens {
    ttl: Duration,
    map: Mutex<HashMap<String, (Instant, Job)>>,
}

impl Tokens {
    pub fn new(ttl: Duration) -> Self {
        Tokens { ttl, map: Mutex::new(HashMap::new()) }
    }

    /// A new token for `job`.
    pub fn insert(&self, job: Job) -> std::io::Result<String> {
        let mut raw = [0u8; 24];
        rustix::rand::getrandom(&mut raw, rustix::rand::GetRandomFlags::empty())?;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        m.retain(|_, (exp, _)| *exp > now);
        m.insert(token.clone(), (now + self.ttl, job));
        Ok(token)
    }

    /// The job of a valid token, which is then gone.
    pub fn take(&self, token: &str) -> Option<Job> {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let (exp, job) = m.remove(token)?;
        (exp > Instant::now()).then_some(job)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job::PortForward { pod: "p".into(), netns: None, ports: vec![] }
    }

    #[test]
    fn single_use_and_expiring() {
        let t = Tokens::new(Duration::from_millis(50));
        let a = t.insert(job()).unwrap();
        let b = t.insert(job()).unwrap();
        assert_ne!(a, b);
        assert!(a.len() >= 32 && a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert!(t.take(&a).is_some());
        assert!(t.take(&a).is_none(), "reused");
        std::thread::sleep(Duration::from_millis(60));
        assert!(t.take(&b).is_none(), "expired");
        t.insert(job()).unwrap();
        assert_eq!(t.len(), 1, "expired tokens are dropped");
    }
}
