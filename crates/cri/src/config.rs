//! The daemon's configuration file (TOML), its defaults and its checks.
//!
//! ```toml
//! cgroup_driver = "cgroupfs"                # or "systemd" (needs systemd running)
//!
//! [cni]
//! conf_dir = "/etc/cni/net.d"
//! bin_dirs = ["/usr/lib/cni", "/opt/cni/bin"]
//!
//! [sandbox]
//! infra = "builtin"                         # wharf-infra (no image); "pause" is refused (see Infra)
//! pause_image = "registry.k8s.io/pause:3.10"
//!
//! [registry]
//! insecure = ["registry.lan:5000"]          # plain HTTP (loopback hosts always are)
//! docker_config = "/root/.docker/config.json"  # credentials when the kubelet sends none
//! [registry.mirrors]
//! "registry.k8s.io" = ["127.0.0.1:5000"]    # tried in order, then the registry itself
//!
//! [runtime]
//! default_handler = "wharf"                 # the handler of pods without a RuntimeClass
//! [runtime.handlers]                        # RuntimeClass handler -> OCI runtime binary
//! runc = "/usr/sbin/runc"
//!
//! [logs]
//! max_line_size = 16384                     # longer lines are split (CRI "P" partial lines); -1: no limit
//! max_size = 0                              # bytes before the runtime rotates (0: the kubelet does)
//! max_files = 1
//!
//! [stream]
//! address = "127.0.0.1:0"                   # exec/attach/port-forward server (port 0: any free port)
//! token_ttl_secs = 60                       # how long an Exec/Attach/PortForward URL stays valid
//! ```

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the daemon looks for its configuration when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/wharf/cri.toml";
/// The handler name of wharf's own runtime.
pub const WHARF_HANDLER: &str = "wharf";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub cgroup_driver: CgroupDriver,
    pub cni: Cni,
    pub sandbox: Sandbox,
    pub registry: Registry,
    pub runtime: Runtime,
    pub logs: Logs,
    pub stream: Stream,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum CgroupDriver {
    #[default]
    Cgroupfs,
    Systemd,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Cni {
    pub conf_dir: PathBuf,
    pub bin_dirs: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Sandbox {
    pub infra: Infra,
    pub pause_image: String,
}

/// What a pod's infra process is. A pod's namespaces are pinned by bind
/// mounts either way (crates/pod); the infra is PID 1 of a shared pid
/// namespace and what `ps` shows for the pod.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Infra {
    /// `wharf-infra`, the pod crate's tiny binary: no image to pull.
    #[default]
    Builtin,
    /// The pause image (`sandbox.pause_image`), as containerd and CRI-O run
    /// it: refused by [`Config::parse`] — the pod crate's infra is
    /// wharf-infra alone (it does what pause does: PID 1 of the shared pid
    /// namespace, reaping, holding the pod's namespaces), so a file asking
    /// for pause fails loudly rather than running something else.
    Pause,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Registry {
    pub insecure: Vec<String>,
    /// Registry host → mirror endpoints (`host[:port]`, `http://host[:port]` for plain HTTP).
    pub mirrors: BTreeMap<String, Vec<String>>,
    pub docker_config: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Runtime {
    pub default_handler: String,
    /// RuntimeClass handler name → OCI runtime binary (a path, or a name looked up in PATH).
    pub handlers: BTreeMap<String, PathBuf>,
}

/// The streaming server the Exec/Attach/PortForward URLs point at.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Stream {
    /// `IP:PORT` to listen on (TCP); port 0 takes any free port.
    pub address: String,
    /// Seconds a URL's single-use token stays valid.
    pub token_ttl_secs: u64,
}

impl Default for Stream {
    fn default() -> Self {
        Stream { address: "127.0.0.1:0".into(), token_ttl_secs: 60 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Logs {
    /// Bytes; -1: no limit (containerd's `max_container_log_line_size`).
    pub max_line_size: i64,
    pub max_size: u64,
    pub max_files: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cgroup_driver: CgroupDriver::Cgroupfs,
            cni: Cni::default(),
            sandbox: Sandbox::default(),
            registry: Registry::default(),
            runtime: Runtime::default(),
            logs: Logs::default(),
            stream: Stream::default(),
        }
    }
}

impl Default for Cni {
    fn default() -> Self {
        Cni { conf_dir: "/etc/cni/net.d".into(), bin_dirs: vec!["/usr/lib/cni".into(), "/opt/cni/bin".into()] }
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox { infra: Infra::Builtin, pause_image: "registry.k8s.io/pause:3.10".into() }
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime { default_handler: WHARF_HANDLER.into(), handlers: BTreeMap::new() }
    }
}

impl Default for Logs {
    fn default() -> Self {
        Logs { max_line_size: 16 * 1024, max_size: 0, max_files: 1 }
    }
}

/// A runtime handler resolved to its binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    pub name: String,
    pub binary: PathBuf,
}

impl Config {
    /// Reads `path`; a missing file is an error only when `required`
    /// (the user named it), else the defaults apply.
    pub fn load(path: &Path, required: bool) -> Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(Config::default()),
            Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
        };
        Config::parse(&text).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
            e => e,
        })
    }

    pub fn parse(text: &str) -> Result<Config> {
        let c: Config = toml::from_str(text).map_err(|e| Error::Config(e.to_string().trim_end().to_string()))?;
        c.check_values()?;
        Ok(c)
    }

    /// Checks that need no host: values in range, names well formed.
    fn check_values(&self) -> Result<()> {
        if self.sandbox.infra == Infra::Pause {
            return Err(Error::Config(
                "sandbox.infra = \"pause\" is not supported: wharf pods run wharf-infra (it does pause's work, \
                 no image needed); use infra = \"builtin\" (pause_image is still reported as pinned)"
                    .into(),
            ));
        }
        if self.logs.max_line_size == 0 || self.logs.max_line_size < -1 {
            return Err(Error::Config("logs.max_line_size must be positive, or -1 for no limit".into()));
        }
        if self.stream.address.parse::<std::net::SocketAddr>().is_err() {
            return Err(Error::Config(format!("stream.address: {:?} is not IP:PORT", self.stream.address)));
        }
        if self.logs.max_files == 0 {
            return Err(Error::Config("logs.max_files must be at least 1".into()));
        }
        wharf_image::Reference::parse(&self.sandbox.pause_image)
            .map_err(|e| Error::Config(format!("sandbox.pause_image: {e}")))?;
        for (host, eps) in &self.registry.mirrors {
            if host.is_empty() || host.contains('/') {
                return Err(Error::Config(format!("registry.mirrors: {host:?} is not a registry host")));
            }
            for ep in eps {
                mirror_endpoint(ep)
                    .ok_or_else(|| Error::Config(format!("registry.mirrors.{host:?}: {ep:?} is not host[:port]")))?;
            }
        }
        for name in self.runtime.handlers.keys() {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err(Error::Config(format!("runtime.handlers: {name:?} is not a handler name")));
            }
        }
        Ok(())
    }

    /// Checks against the host: the cgroup driver, the handlers' binaries.
    /// `wharf_runtime` is wharf's own runtime binary (found next to `wharf`).
    pub fn check_host(&self, wharf_runtime: &Path) -> Result<()> {
        if self.cgroup_driver == CgroupDriver::Systemd && !Path::new("/run/systemd/system").is_dir() {
            return Err(Error::Config(
                "cgroup_driver = \"systemd\", but systemd is not running on this host (no /run/systemd/system): \
                 use cgroup_driver = \"cgroupfs\""
                    .into(),
            ));
        }
        let handlers = self.handlers(wharf_runtime);
        for h in &handlers {
            if !h.binary.is_file() {
                return Err(Error::Config(format!(
                    "runtime handler {:?}: {} is not an executable file",
                    h.name,
                    h.binary.display()
                )));
            }
        }
        if !handlers.iter().any(|h| h.name == self.runtime.default_handler) {
            return Err(Error::Config(format!(
                "runtime.default_handler {:?} is not a handler (have: {})",
                self.runtime.default_handler,
                handlers.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(())
    }

    /// Every handler: `wharf` (wharf-runtime) unless configured otherwise,
    /// `runc` and `crun` when installed, then the configured ones.
    pub fn handlers(&self, wharf_runtime: &Path) -> Vec<Handler> {
        let mut map: BTreeMap<String, PathBuf> = BTreeMap::new();
        map.insert(WHARF_HANDLER.into(), wharf_runtime.to_path_buf());
        for name in ["runc", "crun"] {
            if let Some(p) = which(Path::new(name)) {
                map.insert(name.into(), p);
            }
        }
        for (name, bin) in &self.runtime.handlers {
            map.insert(name.clone(), which(bin).unwrap_or_else(|| bin.clone()));
        }
        map.into_iter().map(|(name, binary)| Handler { name, binary }).collect()
    }

    /// The mirror endpoints of `host`, in order, as `(host[:port], plain_http)`.
    pub fn mirrors_of(&self, host: &str) -> Vec<(String, bool)> {
        self.registry.mirrors.get(host).into_iter().flatten().filter_map(|e| mirror_endpoint(e)).collect()
    }
}

/// `host[:port]` with an optional `http://` or `https://` scheme.
fn mirror_endpoint(ep: &str) -> Option<(String, bool)> {
    let (rest, plain) = match ep.strip_prefix("http://") {
        Some(r) => (r, true),
        None => (ep.strip_prefix("https://").unwrap_or(ep), false),
    };
    let rest = rest.trim_end_matches('/');
    let ok = !rest.is_empty()
        && !rest.contains('/')
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b));
    ok.then(|| (rest.to_string(), plain))
}

/// A path with a `/` as it is; a bare name looked up in PATH.
fn which(bin: &Path) -> Option<PathBuf> {
    if bin.components().count() > 1 || bin.is_absolute() {
        return bin.is_file().then(|| bin.to_path_buf());
    }
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path).map(|d| d.join(bin)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
        let c = Config::default();
        assert_eq!(c.cni.conf_dir, Path::new("/etc/cni/net.d"));
        assert_eq!(c.cni.bin_dirs, [Path::new("/usr/lib/cni"), Path::new("/opt/cni/bin")]);
        assert_eq!(c.cgroup_driver, CgroupDriver::Cgroupfs);
    }

    #[test]
    fn full_file() {
        let c = Config::parse(
            r#"
cgroup_driver = "systemd"
[cni]
conf_dir = "/tmp/net.d"
bin_dirs = ["/tmp/bin"]
[sandbox]
infra = "builtin"
pause_image = "127.0.0.1:5000/pause:1"
[registry]
insecure = ["reg.lan:5000"]
[registry.mirrors]
"registry.k8s.io" = ["127.0.0.1:5055", "http://mirror.lan:5000"]
[runtime]
default_handler = "runc"
[runtime.handlers]
runc = "/usr/sbin/runc"
[logs]
max_line_size = 100
max_size = 1000
max_files = 3
"#,
        )
        .unwrap();
        assert_eq!(c.cgroup_driver, CgroupDriver::Systemd);
        assert_eq!(c.sandbox.infra, Infra::Builtin);
        assert_eq!(
            c.mirrors_of("registry.k8s.io"),
            [("127.0.0.1:5055".to_string(), false), ("mirror.lan:5000".to_string(), true)]
        );
        assert!(c.mirrors_of("docker.io").is_empty());
        assert_eq!(c.logs.max_files, 3);
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        for (text, want) in [
            ("cgroup_driver = \"cgroupv3\"", "unknown variant"),
            ("nonsense = 1", "unknown field"),
            ("[cni]\nconfdir = \"/x\"", "unknown field"),
            ("[logs]\nmax_line_size = 0", "max_line_size"),
            ("[logs]\nmax_line_size = -2", "max_line_size"),
            ("[registry.mirrors]\n\"docker.io\" = [\"http://a/b/c\"]", "not host[:port]"),
            ("[runtime.handlers]\n\"a b\" = \"/bin/true\"", "not a handler name"),
            ("[sandbox]\npause_image = \"Pause:1\"", "pause_image"),
            ("[sandbox]\ninfra = \"pause\"", "infra = \"builtin\""),
        ] {
            let e = Config::parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn handlers_and_default() {
        let me = std::env::current_exe().unwrap();
        let mut c = Config::default();
        c.runtime.handlers.insert("mine".into(), me.clone());
        let hs = c.handlers(&me);
        assert!(hs.iter().any(|h| h.name == "wharf" && h.binary == me));
        assert!(hs.iter().any(|h| h.name == "mine"));
        c.check_host(&me).unwrap();
        c.runtime.handlers.insert("gone".into(), "/nonexistent/runtime".into());
        assert!(c.check_host(&me).unwrap_err().to_string().contains("\"gone\""));
        c.runtime.handlers.remove("gone");
        c.runtime.default_handler = "kata".into();
        assert!(c.check_host(&me).unwrap_err().to_string().contains("default_handler"));
    }
}
