//! CPU samples taken every second by the daemon's housekeeping loop (as
//! containerd 2.x's stats collector and cAdvisor's housekeeping do), from
//! which `usage_nano_cores` is the rate between a sample and a reading.

use std::collections::HashMap;
use std::sync::Mutex;

/// The sample a rate is taken from is at least this old (ns): a rate over
/// a few milliseconds would be noise.
const MIN_SPAN_NS: i64 = 500_000_000;
/// Samples kept per cgroup.
const KEEP: usize = 4;

/// (timestamp ns, CPU ns) samples per key: a container ID, or `pod:` and a pod ID.
#[derive(Default)]
pub struct CpuSamples {
    by_key: Mutex<HashMap<String, Vec<(i64, u64)>>>,
}

impl CpuSamples {
    /// Adds a sample; a CPU time lower than the last one (the container
    /// was restarted into a new cgroup) starts the series again.
    pub fn record(&self, key: &str, at: i64, cpu: u64) {
        let mut map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        let v = map.entry(key.to_string()).or_default();
        if v.last().is_some_and(|&(t, c)| c > cpu || t >= at) {
            v.clear();
        }
        v.push((at, cpu));
        if v.len() > KEEP {
            v.remove(0);
        }
    }

    /// Forgets every key `keep` refuses (removed containers and pods).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.by_key.lock().unwrap_or_else(|e| e.into_inner()).retain(|k, _| keep(k));
    }

    /// CPU use in nano-cores between the newest sample at least
    /// [`MIN_SPAN_NS`] older than `(at, cpu)` (else the oldest) and it;
    /// `None` without an earlier sample.
    pub fn nano_cores(&self, key: &str, at: i64, cpu: u64) -> Option<u64> {
        let map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        let v = map.get(key)?;
        let &(t0, c0) = v.iter().rev().find(|(t, _)| at - t >= MIN_SPAN_NS).or_else(|| v.first())?;
        let span = at - t0;
        if span <= 0 || cpu < c0 {
            return None;
        }
        Some(((cpu - c0) as u128 * 1_000_000_000 / span as u128) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn rate_from_a_sample_old_enough() {
        let s = CpuSamples::default();
        assert_eq!(s.nano_cores("c", 10 * S, 5), None, "no sample yet");
        s.record("c", S, 1_000);
        s.record("c", 2 * S, 500_001_000);
        // Half a core over the last second; the sample 0.2 s old is too recent.
        s.record("c", 3 * S - S / 5, 900_000_000);
        assert_eq!(s.nano_cores("c", 3 * S, 1_000_001_000), Some(500_000_000));
        // A restarted container's CPU time starts again.
        s.record("c", 4 * S, 10);
        assert_eq!(s.nano_cores("c", 5 * S, 10 + 2 * S as u64), Some(2_000_000_000));
        s.retain(|k| k != "c");
        assert_eq!(s.nano_cores("c", 6 * S, 1), None);
    }
}
