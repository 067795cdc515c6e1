//! The `docker run` flag values of [`HostConfig`](super::HostConfig), parsed
//! and validated with Docker's syntax and error messages.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidArgument(msg.into())
}

/// Capability names by kernel number, as Docker lists them.
pub(crate) use wharf_runtime::caps::NAMES as CAPABILITIES;

/// `--cap-add`/`--cap-drop` value: `net_admin`, `CAP_NET_ADMIN` → `CAP_NET_ADMIN`; `all` → `ALL`.
/// `which` is `CapAdd` or `CapDrop`, for Docker's message.
pub fn parse_capability(which: &str, name: &str) -> Result<String> {
    let up = name.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let c = if up.starts_with("CAP_") { up } else { format!("CAP_{up}") };
    if CAPABILITIES.contains(&c.as_str()) {
        Ok(c)
    } else {
        Err(invalid(format!("invalid {which}: unknown capability: {c:?}")))
    }
}

/// `--ulimit NAME=SOFT[:HARD]`; -1 is unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

const ULIMITS: [&str; 15] = [
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

impl Ulimit {
    /// go-units' `ParseUlimit` rules and wording.
    pub fn parse(s: &str) -> Result<Ulimit> {
        let (name, vals) = s.split_once('=').ok_or_else(|| invalid(format!("invalid ulimit argument: {s}")))?;
        if !ULIMITS.contains(&name) {
            return Err(invalid(format!("invalid ulimit type: {name} (one of {})", ULIMITS.join(", "))));
        }
        let num = |v: &str| {
            v.parse::<i64>()
                .map_err(|_| invalid(format!("invalid ulimit value {v:?} in {s:?}: use SOFT[:HARD] numbers")))
        };
        let parts: Vec<&str> = vals.split(':').collect();
        let (soft, hard) = match parts.as_slice() {
            [soft] => (num(soft)?, num(soft)?),
            [soft, hard] => (num(soft)?, num(hard)?),
            _ => {
                return Err(invalid(format!(
                    "too many limit value arguments - {vals}, can only have up to two, `soft[:hard]`"
                )))
            }
        };
        if hard != -1 && soft > hard {
            return Err(invalid(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            )));
        }
        Ok(Ulimit { name: name.to_string(), soft, hard })
    }

    /// The OCI rlimit type: `RLIMIT_NOFILE`.
    pub fn rlimit_type(&self) -> String {
        format!("RLIMIT_{}", self.name.to_ascii_uppercase())
    }
}

/// `--device HOST[:CONTAINER][:PERMISSIONS]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMapping {
    pub host: String,
    pub container: String,
    /// Some of `rwm`.
    pub permissions: String,
}

fn valid_device_mode(m: &str) -> bool {
    !m.is_empty() && m.len() <= 3 && m.chars().all(|c| "rwm".contains(c)) && {
        let mut seen: Vec<char> = m.chars().collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len() == m.len()
    }
}

impl DeviceMapping {
    /// Docker's `parseLinuxDevice`: the second field is permissions when it
    /// looks like them, else the container path.
    pub fn parse(s: &str) -> Result<DeviceMapping> {
        let parts: Vec<&str> = s.splitn(4, ':').collect();
        let (mut dst, mut perms) = (String::new(), "rwm".to_string());
        match parts.as_slice() {
            [_] => {}
            [_, b] if valid_device_mode(b) => perms = b.to_string(),
            [_, b] => dst = b.to_string(),
            [_, b, c] => {
                dst = b.to_string();
                perms = c.to_string();
            }
            _ => return Err(invalid(format!("invalid device specification: {s}"))),
        }
        let src = parts[0].to_string();
        if !valid_device_mode(&perms) {
            return Err(invalid(format!("invalid device mode: {perms}")));
        }
        if dst.is_empty() {
            dst = src.clone();
        }
        for p in [&src, &dst] {
            if !p.starts_with('/') {
                return Err(invalid(format!("invalid device specification: {p} is not an absolute path")));
            }
        }
        Ok(DeviceMapping { host: src, container: dst, permissions: perms })
    }
}

/// `--sysctl KEY=VALUE`: only the namespaced ones Docker allows.
pub fn parse_sysctl(s: &str) -> Result<(String, String)> {
    let not_allowed = || invalid(format!("sysctl '{s}' is not allowed"));
    let (k, v) = s.split_once('=').ok_or_else(not_allowed)?;
    use wharf_runtime::oci_spec::runtime::LinuxNamespaceType::{Ipc, Network};
    // Docker allows the IPC and network ones (not the UTS ones the runtime knows).
    if matches!(wharf_runtime::spec::sysctl_namespace(k), Some(Ipc | Network)) {
        Ok((k.to_string(), v.to_string()))
    } else {
        Err(not_allowed())
    }
}

/// `--security-opt` values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SecurityOpt {
    /// `seccomp=unconfined`.
    SeccompUnconfined,
    /// `seccomp=FILE`: the profile as an OCI `linux.seccomp` (Docker's format is converted).
    SeccompProfile(serde_json::Value),
    /// `no-new-privileges[=true|false]`.
    NoNewPrivileges(bool),
    /// `systempaths=unconfined`: no masked or read-only /proc and /sys paths.
    SystemPathsUnconfined,
    /// `apparmor=PROFILE`.
    AppArmor(String),
    /// `label=…` (SELinux).
    Label(String),
}

impl SecurityOpt {
    /// Docker's syntax: `KEY=VALUE` or the older `KEY:VALUE`; reads the seccomp file.
    pub fn parse(s: &str) -> Result<SecurityOpt> {
        let bad = || {
            invalid(format!(
                "invalid --security-opt: {s:?} (use seccomp=unconfined|FILE, no-new-privileges[=true|false], \
                 systempaths=unconfined, apparmor=PROFILE or label=…)"
            ))
        };
        if s == "no-new-privileges" {
            return Ok(SecurityOpt::NoNewPrivileges(true));
        }
        let (k, v) = s.split_once('=').or_else(|| s.split_once(':')).ok_or_else(bad)?;
        if v.is_empty() {
            return Err(bad());
        }
        match k {
            "no-new-privileges" => match v {
                "true" | "1" | "t" | "T" | "TRUE" | "True" => Ok(SecurityOpt::NoNewPrivileges(true)),
                "false" | "0" | "f" | "F" | "FALSE" | "False" => Ok(SecurityOpt::NoNewPrivileges(false)),
                _ => Err(bad()),
            },
            "seccomp" if v == "unconfined" => Ok(SecurityOpt::SeccompUnconfined),
            "seccomp" => {
                let text = std::fs::read_to_string(v)
                    .map_err(|e| invalid(format!("opening seccomp profile ({v}) failed: {e}")))?;
                Ok(SecurityOpt::SeccompProfile(super::seccomp::from_json(&text)?))
            }
            "systempaths" if v == "unconfined" => Ok(SecurityOpt::SystemPathsUnconfined),
            "apparmor" => Ok(SecurityOpt::AppArmor(v.to_string())),
            "label" => {
                let known = ["disable", "nested"].contains(&v)
                    || ["user:", "role:", "type:", "level:", "filetype:"].iter().any(|p| v.starts_with(p));
                if known {
                    Ok(SecurityOpt::Label(v.to_string()))
                } else {
                    Err(invalid(format!("invalid --security-opt: {s:?}: bad label option {v:?}")))
                }
            }
            _ => Err(bad()),
        }
    }
}

/// `--cpuset-cpus`/`--cpuset-mems`: `0-3,5`. `what` names the flag's unit.
pub fn parse_cpuset(what: &str, s: &str) -> Result<Vec<u32>> {
    let bad = || invalid(format!("Invalid value {s} for cpuset {what}"));
    let mut out = Vec::new();
    for part in s.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if a > b || b > 8192 {
            return Err(bad());
        }
        out.extend(a..=b);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// `--label KEY[=VALUE]` (no value: empty, as Docker).
pub fn parse_label(s: &str) -> Result<(String, String)> {
    let (k, v) = s.split_once('=').unwrap_or((s, ""));
    if k.trim().is_empty() {
        return Err(invalid(format!("invalid label {s:?}: the key is empty")));
    }
    Ok((k.to_string(), v.to_string()))
}

/// `--label-file`: one label a line; blank lines and `#` comments skipped.
pub fn read_label_file(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("--label-file {}", path.display()), e))?;
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(parse_label).collect()
}

/// `--shm-size`, `--memory-reservation`: `64m`, `1g`, bytes.
pub fn parse_size(s: &str) -> Result<i64> {
    crate::spec::parse_bytes(s)
}

/// `--env-file`, with Docker's rules: leading blanks and a BOM dropped,
/// `#` comments, `KEY=VALUE` kept as written (the value is not trimmed), a
/// bare `KEY` taken from our environment (left out when unset there), and
/// a key with blanks refused.
pub fn read_env_file(path: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(format!("--env-file {}", path.display()), e))?;
    let mut out = Vec::new();
    for (n, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let raw = if n == 0 { raw.strip_prefix(b"\xef\xbb\xbf").unwrap_or(raw) } else { raw };
        let line = std::str::from_utf8(raw).map_err(|_| {
            invalid(format!("env file {} contains invalid utf8 bytes at line {}", path.display(), n + 1))
        })?;
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        if key.is_empty() {
            return Err(invalid(format!("no variable name on line '{line}'")));
        }
        if key.contains(char::is_whitespace) {
            return Err(invalid(format!("variable '{key}' contains whitespaces")));
        }
        match value {
            Some(v) => out.push(format!("{key}={v}")),
            None => out.extend(std::env::var(key).ok().map(|v| format!("{key}={v}"))),
        }
    }
    Ok(out)
}

/// `--memory-swap`: a size, or -1 for unlimited swap.
pub fn parse_swap(s: &str) -> Result<i64> {
    if s.trim() == "-1" {
        return Ok(-1);
    }
    crate::spec::parse_bytes(s)
}

/// `--oom-score-adj`: Docker's range check.
pub fn check_oom_score_adj(v: i32) -> Result<i32> {
    if (-1000..=1000).contains(&v) {
        Ok(v)
    } else {
        Err(invalid(format!("Invalid value {v}, range for oom score adj is [-1000, 1000]")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_with_or_without_prefix() {
        assert_eq!(parse_capability("CapAdd", "net_admin").unwrap(), "CAP_NET_ADMIN");
        assert_eq!(parse_capability("CapAdd", "CAP_SYS_TIME").unwrap(), "CAP_SYS_TIME");
        assert_eq!(parse_capability("CapDrop", "all").unwrap(), "ALL");
        let e = parse_capability("CapAdd", "foo").unwrap_err().to_string();
        assert_eq!(e, "invalid CapAdd: unknown capability: \"CAP_FOO\"");
        assert_eq!(CAPABILITIES[40], "CAP_CHECKPOINT_RESTORE");
        assert_eq!(CAPABILITIES[21], "CAP_SYS_ADMIN");
    }

    #[test]
    fn ulimits() {
        assert_eq!(Ulimit::parse("nofile=100:200").unwrap(), Ulimit { name: "nofile".into(), soft: 100, hard: 200 });
        assert_eq!(Ulimit::parse("core=-1").unwrap().hard, -1);
        assert_eq!(Ulimit::parse("nproc=5").unwrap().rlimit_type(), "RLIMIT_NPROC");
        assert!(Ulimit::parse("nofile=10:-1").is_ok());
        for (bad, msg) in [
            ("nofile", "invalid ulimit argument"),
            ("files=1", "invalid ulimit type: files"),
            ("nofile=a", "invalid ulimit value"),
            ("nofile=1:2:3", "too many limit value arguments"),
            ("nofile=200:100", "soft limit must be less than or equal to hard limit: 200 > 100"),
        ] {
            let e = Ulimit::parse(bad).unwrap_err().to_string();
            assert!(e.contains(msg), "{bad}: {e}");
        }
    }

    #[test]
    fn devices() {
        let d = DeviceMapping::parse("/dev/null").unwrap();
        assert_eq!((d.host.as_str(), d.container.as_str(), d.permissions.as_str()), ("/dev/null", "/dev/null", "rwm"));
        let d = DeviceMapping::parse("/dev/null:r").unwrap();
        assert_eq!((d.container.as_str(), d.permissions.as_str()), ("/dev/null", "r"));
        let d = DeviceMapping::parse("/dev/null:/dev/mynull").unwrap();
        assert_eq!((d.container.as_str(), d.permissions.as_str()), ("/dev/mynull", "rwm"));
        let d = DeviceMapping::parse("/dev/null:/dev/mynull:rw").unwrap();
        assert_eq!(d.permissions, "rw");
        assert!(DeviceMapping::parse("/dev/null:/dev/x:rwx").unwrap_err().to_string().contains("invalid device mode"));
        assert!(DeviceMapping::parse("/dev/null:/dev/x:rr").is_err());
        assert!(DeviceMapping::parse("a:b:c:d").unwrap_err().to_string().contains("invalid device specification"));
        assert!(DeviceMapping::parse("/dev/null:mynull").unwrap_err().to_string().contains("not an absolute path"));
    }

    #[test]
    fn sysctls() {
        assert_eq!(parse_sysctl("net.ipv4.ip_forward=1").unwrap(), ("net.ipv4.ip_forward".into(), "1".into()));
        assert!(parse_sysctl("kernel.shmmax=1000000").is_ok());
        assert!(parse_sysctl("fs.mqueue.msg_max=20").is_ok());
        assert_eq!(
            parse_sysctl("kernel.pid_max=10").unwrap_err().to_string(),
            "sysctl 'kernel.pid_max=10' is not allowed"
        );
        assert!(parse_sysctl("vm.swappiness=1").is_err());
        assert!(parse_sysctl("net.ipv4.ip_forward").is_err());
    }

    #[test]
    fn security_opts() {
        use SecurityOpt::*;
        assert_eq!(SecurityOpt::parse("no-new-privileges").unwrap(), NoNewPrivileges(true));
        assert_eq!(SecurityOpt::parse("no-new-privileges=false").unwrap(), NoNewPrivileges(false));
        assert_eq!(SecurityOpt::parse("no-new-privileges:true").unwrap(), NoNewPrivileges(true));
        assert_eq!(SecurityOpt::parse("seccomp=unconfined").unwrap(), SeccompUnconfined);
        assert_eq!(SecurityOpt::parse("seccomp:unconfined").unwrap(), SeccompUnconfined);
        assert_eq!(SecurityOpt::parse("systempaths=unconfined").unwrap(), SystemPathsUnconfined);
        assert_eq!(SecurityOpt::parse("apparmor=unconfined").unwrap(), AppArmor("unconfined".into()));
        assert_eq!(SecurityOpt::parse("label=disable").unwrap(), Label("disable".into()));
        assert!(SecurityOpt::parse("label=bogus").is_err());
        for bad in ["foo", "foo=bar", "no-new-privileges=maybe", "seccomp=", "systempaths=confined"] {
            let e = SecurityOpt::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid --security-opt"), "{bad}: {e}");
        }
        let e = SecurityOpt::parse("seccomp=/no/such/profile.json").unwrap_err().to_string();
        assert!(e.starts_with("opening seccomp profile (/no/such/profile.json) failed"), "{e}");
    }

    #[test]
    fn env_files_follow_dockers_rules() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("env");
        std::fs::write(&f, "\u{feff}# c\n  A=1 \r\nB= two words\n\nPATH\nWHARF_SURELY_UNSET_VAR\nC=\n").unwrap();
        let env = read_env_file(&f).unwrap();
        let path = format!("PATH={}", std::env::var("PATH").unwrap());
        assert_eq!(env, ["A=1 ", "B= two words", path.as_str(), "C="]);
        std::fs::write(&f, "A B=1\n").unwrap();
        assert_eq!(read_env_file(&f).unwrap_err().to_string(), "variable 'A B' contains whitespaces");
        std::fs::write(&f, "=1\n").unwrap();
        assert!(read_env_file(&f).unwrap_err().to_string().starts_with("no variable name"));
        std::fs::write(&f, b"A=\xff\n").unwrap();
        assert!(read_env_file(&f).unwrap_err().to_string().contains("invalid utf8 bytes at line 1"));
        assert!(read_env_file(&d.path().join("nope")).unwrap_err().to_string().starts_with("--env-file "));
    }

    #[test]
    fn cpusets_labels_sizes() {
        assert_eq!(parse_cpuset("cpus", "0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpuset("cpus", "x").unwrap_err().to_string(), "Invalid value x for cpuset cpus");
        assert!(parse_cpuset("mems", "3-1").is_err());
        assert_eq!(parse_label("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(parse_label("flag").unwrap(), ("flag".into(), String::new()));
        assert!(parse_label("=x").is_err());
        assert_eq!(parse_swap("-1").unwrap(), -1);
        assert_eq!(parse_swap("1g").unwrap(), 1 << 30);
        assert!(check_oom_score_adj(1001).is_err());
        assert_eq!(check_oom_score_adj(-1000).unwrap(), -1000);
    }
}
