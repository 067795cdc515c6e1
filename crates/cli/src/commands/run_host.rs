//! `wharf run`'s security, device, rlimit, sysctl, cgroup and `--init`
//! flags: parsed here with the library's parsers into a `HostConfig`.

use std::path::PathBuf;

use wharf_pod::hostconfig::{self as hc, HostConfig};

#[derive(clap::Args, Debug, Default)]
pub struct HostFlags {
    /// Add a Linux capability (NET_ADMIN or CAP_NET_ADMIN; ALL for every one).
    #[arg(long = "cap-add", value_name = "CAP")]
    cap_add: Vec<String>,
    /// Drop a Linux capability (ALL drops every one but those added).
    #[arg(long = "cap-drop", value_name = "CAP")]
    cap_drop: Vec<String>,
    /// Every capability, every host device, no seccomp, no masked paths, /sys read-write.
    #[arg(long)]
    privileged: bool,
    /// seccomp=unconfined|FILE, no-new-privileges[=true|false], systempaths=unconfined,
    /// apparmor=PROFILE, label=… (apparmor and label are ignored with a warning on hosts without them).
    #[arg(long = "security-opt", value_name = "OPT")]
    security_opt: Vec<String>,
    /// Resource limit: NAME=SOFT[:HARD] (nofile, nproc, core, memlock, stack, …; -1 is unlimited).
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    ulimit: Vec<String>,
    /// Add a host device: HOST[:CONTAINER][:PERMISSIONS] (permissions: some of rwm).
    #[arg(long, value_name = "HOST[:CTR[:rwm]]")]
    device: Vec<String>,
    /// Namespaced kernel parameter: KEY=VALUE (net.*, fs.mqueue.*, kernel.shm*/msg*/sem).
    #[arg(long, value_name = "KEY=VALUE")]
    sysctl: Vec<String>,
    /// Size of /dev/shm (e.g. 128m; default 64m).
    #[arg(long = "shm-size", value_name = "SIZE")]
    shm_size: Option<String>,
    /// Additional group for the process: a name from the image's /etc/group, or a number.
    #[arg(long = "group-add", value_name = "GROUP")]
    group_add: Vec<String>,
    /// Memory plus swap limit (e.g. 1g; -1 for unlimited swap); needs --memory.
    #[arg(long = "memory-swap", value_name = "SIZE", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Memory soft limit (e.g. 128m).
    #[arg(long = "memory-reservation", value_name = "SIZE")]
    memory_reservation: Option<String>,
    /// CPU shares (relative weight, 2..262144).
    #[arg(short = 'c', long = "cpu-shares", value_name = "N")]
    cpu_shares: Option<u64>,
    /// CPUs the container may use (e.g. 0-2,4).
    #[arg(long = "cpuset-cpus", value_name = "CPUS")]
    cpuset_cpus: Option<String>,
    /// Memory nodes the container may use (e.g. 0).
    #[arg(long = "cpuset-mems", value_name = "MEMS")]
    cpuset_mems: Option<String>,
    /// OOM killer preference, -1000..1000.
    #[arg(long = "oom-score-adj", value_name = "N", allow_negative_numbers = true)]
    oom_score_adj: Option<i32>,
    /// Run tini as pid 1 (bound read-only at /sbin/docker-init): it forwards signals and reaps zombies.
    #[arg(long)]
    init: bool,
    /// Read labels from a file (KEY=VALUE lines, # comments).
    #[arg(long = "label-file", value_name = "FILE")]
    label_file: Vec<PathBuf>,
}

fn size(flag: &str, s: &Option<String>, parse: fn(&str) -> wharf_pod::Result<i64>) -> anyhow::Result<Option<i64>> {
    s.as_deref()
        .map(|v| parse(v).map_err(|e| anyhow::anyhow!("invalid argument {v:?} for \"--{flag}\" flag: {e}")))
        .transpose()
}

impl HostFlags {
    /// The flags parsed and checked (a bad value names its flag, as Docker's CLI does).
    pub fn to_host_config(&self) -> anyhow::Result<HostConfig> {
        let caps =
            |which, l: &[String]| l.iter().map(|c| hc::parse_capability(which, c)).collect::<Result<Vec<_>, _>>();
        Ok(HostConfig {
            cap_add: caps("CapAdd", &self.cap_add)?,
            cap_drop: caps("CapDrop", &self.cap_drop)?,
            privileged: self.privileged,
            security_opt: self.security_opt.iter().map(|s| hc::SecurityOpt::parse(s)).collect::<Result<_, _>>()?,
            ulimits: self.ulimit.iter().map(|s| hc::Ulimit::parse(s)).collect::<Result<_, _>>()?,
            devices: self.device.iter().map(|s| hc::DeviceMapping::parse(s)).collect::<Result<_, _>>()?,
            sysctls: self.sysctl.iter().map(|s| hc::parse_sysctl(s)).collect::<Result<_, _>>()?,
            shm_size: size("shm-size", &self.shm_size, hc::parse_size)?,
            group_add: self.group_add.clone(),
            memory_swap: size("memory-swap", &self.memory_swap, hc::parse_swap)?,
            memory_reservation: size("memory-reservation", &self.memory_reservation, hc::parse_size)?,
            cpu_shares: self.cpu_shares,
            cpuset_cpus: self.cpuset_cpus.clone().map(|c| hc::parse_cpuset("cpus", &c).map(|_| c)).transpose()?,
            cpuset_mems: self.cpuset_mems.clone().map(|m| hc::parse_cpuset("mems", &m).map(|_| m)).transpose()?,
            oom_score_adj: self.oom_score_adj.map(hc::check_oom_score_adj).transpose()?,
            init: self.init,
        })
    }

    /// `--label-file` entries (`KEY=VALUE`), then the `--label` flags, which win.
    pub fn labels(&self, flags: Vec<String>) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        for f in &self.label_file {
            out.extend(hc::read_label_file(f)?.into_iter().map(|(k, v)| format!("{k}={v}")));
        }
        out.extend(flags);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_a_host_config() {
        let f = HostFlags {
            cap_add: vec!["net_admin".into()],
            memory_swap: Some("-1".into()),
            shm_size: Some("128m".into()),
            ..Default::default()
        };
        let h = f.to_host_config().unwrap();
        assert_eq!(h.cap_add, ["CAP_NET_ADMIN"]);
        assert_eq!((h.memory_swap, h.shm_size), (Some(-1), Some(128 << 20)));
        let bad = HostFlags { shm_size: Some("lots".into()), ..Default::default() };
        let e = bad.to_host_config().unwrap_err().to_string();
        assert!(e.starts_with("invalid argument \"lots\" for \"--shm-size\" flag"), "{e}");
    }
}
