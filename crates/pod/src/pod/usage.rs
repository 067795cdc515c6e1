//! A pod's resource usage as the CRI's sandbox stats read it: the pod
//! cgroup's totals (every member and the infra) and the counters of the
//! pod's network namespace.

use super::{Pod, Pods};
use crate::container::{NetDev, Usage};

impl Pod {
    /// The cgroup path of member `ctr_id` (beneath the pod's).
    pub fn member_cgroup(&self, ctr_id: &str) -> String {
        format!("{}/{ctr_id}", self.record.cgroup_parent)
    }

    /// A process in the pod's network namespace: the infra, else a
    /// running member. `None` without a shared one or a live process.
    pub fn net_pid(&self) -> Option<i32> {
        if !self.record.options.share.net {
            return None;
        }
        if self.infra.running && self.infra.pid > 0 {
            return Some(self.infra.pid);
        }
        self.containers.iter().find(|c| c.is_running() && c.state.pid > 0).map(|c| c.state.pid)
    }
}

impl Pods {
    /// The pod cgroup's usage; `None` when it has no cgroup (never started, removed).
    pub fn usage(&self, p: &Pod) -> Option<Usage> {
        Usage::of_cgroup(&p.record.cgroup_parent)
    }

    /// The interfaces of the pod's network namespace (loopback too).
    pub fn net_devs(&self, p: &Pod) -> Vec<NetDev> {
        p.net_pid().map(crate::container::net_devs).unwrap_or_default()
    }
}
