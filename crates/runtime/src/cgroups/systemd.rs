//! The systemd cgroup driver (`--systemd-cgroup`), as runc's and crun's.
//!
//! `cgroupsPath` is `slice:prefix:name`; the container becomes the transient
//! scope unit `prefix-name.scope` in `slice` (default `system.slice`), made
//! with `StartTransientUnit` and `Delegate=yes` so the subtree is ours. A
//! scope must hold a process from its start, and the container's does not
//! exist yet; so the runtime puts *itself* in (`PIDs=[our pid]`), forks the
//! container's processes there (they are born in the scope: no cgroup move),
//! and then leaves (`CgroupManager::leave`) back to where it was.
//!
//! systemd knows the limits too (`MemoryMax`/`MemoryLimit`, `CPUWeight`/
//! `CPUShares`, `CPUQuotaPerSecUSec`, `TasksMax`, set with
//! `SetUnitProperties`), so a `daemon-reload` does not undo them; everything
//! is then also written through the cgroupfs driver (v1, hybrid or v2) on the
//! scope's directories, as runc does. Device rules go to systemd as
//! `DevicePolicy=strict` + `DeviceAllow` when they are an allow list (the
//! OCI default): without that, systemd re-realizing the unit (a
//! `daemon-reload`) writes "a *:* rwm" over them on v1. v1 hierarchies
//! systemd does not manage (cpuset, freezer, net_cls, hugetlb, …) get the
//! same path made by us.
//! Nothing here touches D-Bus except `create`, `update` and `delete`.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use super::dbus::{Conn, Value};
use super::{CgroupManager, CgroupRecord, Mode, Stats, CGROUP_ROOT};
use crate::error::{Error, Result};

const SYSTEMD: (&str, &str, &str) =
    ("org.freedesktop.systemd1", "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager");

/// What state.json keeps of a container made by this driver.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SystemdUnit {
    /// e.g. `wharf-abc.scope`.
    pub unit: String,
    /// e.g. `system.slice`.
    pub slice: String,
    /// The runtime's own cgroups before it entered the scope, per
    /// hierarchy (controllers as /proc/self/cgroup names them, path).
    #[serde(default)]
    pub home: Vec<(String, PathBuf)>,
}

pub(super) struct Systemd {
    rec: CgroupRecord,
    unit: SystemdUnit,
    /// The cgroupfs driver on the scope's directories.
    inner: Box<dyn CgroupManager>,
    conn: RefCell<Option<Conn>>,
}

/// `slice:prefix:name` → (slice, unit).
pub(super) fn unit_for(cgroups_path: Option<&Path>, id: &str) -> Result<(String, String)> {
    let p = match cgroups_path {
        None => format!(":wharf:{id}"),
        Some(p) => p.to_str().ok_or_else(|| Error::InvalidArgument("cgroupsPath is not UTF-8".into()))?.to_string(),
    };
    let parts: Vec<&str> = p.split(':').collect();
    let [slice, prefix, name] = parts.as_slice() else {
        return Err(Error::InvalidArgument(format!(
            "cgroupsPath {p:?} must be \"slice:prefix:name\" with --systemd-cgroup"
        )));
    };
    if name.ends_with(".slice") {
        return Err(Error::Unsupported(format!("cgroupsPath {p:?}: a slice as the container's own unit")));
    }
    let unit = if prefix.is_empty() { format!("{name}.scope") } else { format!("{prefix}-{name}.scope") };
    let slice = if slice.is_empty() { "system.slice".to_string() } else { slice.to_string() };
    for n in [&unit, &slice] {
        let ok = n.len() <= 255 && n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.'));
        if !ok || name.is_empty() {
            return Err(Error::InvalidArgument(format!("cgroupsPath {p:?}: {n:?} is not a valid systemd unit name")));
        }
    }
    Ok((slice, unit))
}

/// `a-b.slice` → `/a.slice/a-b.slice`, systemd's cgroup path of a slice.
pub(super) fn expand_slice(slice: &str) -> Result<String> {
    let bad = || Error::InvalidArgument(format!("{slice:?} is not a valid slice name"));
    let base = slice.strip_suffix(".slice").ok_or_else(bad)?;
    if base == "-" {
        return Ok(String::new());
    }
    if base.is_empty() || base.contains('/') || base.starts_with('-') || base.ends_with('-') || base.contains("--") {
        return Err(bad());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for comp in base.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(comp);
        path.push_str(&format!("/{prefix}.slice"));
    }
    Ok(path)
}

/// /proc/self/cgroup as (controllers, path) pairs.
fn own_cgroups() -> Result<Vec<(String, PathBuf)>> {
    let text = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| Error::io("read /proc/self/cgroup", e))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
            Some((ctrls.to_string(), PathBuf::from(path)))
        })
        .collect())
}

/// Mount point of the hierarchy /proc/self/cgroup names `ctrls` ("" = v2).
fn mount_of(ctrls: &str) -> Option<PathBuf> {
    let mi = crate::sys::mountinfo().ok()?;
    let m = mi.iter().filter(|m| m.root == "/").find(|m| match ctrls {
        "" => m.fs_type == "cgroup2",
        _ => m.fs_type == "cgroup" && ctrls.split(',').all(|c| m.super_opts.split(',').any(|o| o == c)),
    })?;
    Some(m.mount_point.clone())
}

/// Starts the unit; `Err` when systemd refused (nothing was made), else
/// the job's result ("done" when the scope runs).
fn start_unit(conn: &mut Conn, unit: &str, props: Vec<(String, Value)>) -> Result<String> {
    let args = [Value::Str(unit.into()), Value::Str("replace".into()), Value::Props(props), Value::AuxUnits];
    let reply = conn.call(SYSTEMD, "StartTransientUnit", &args)?;
    let job = reply.first_str().ok_or_else(|| Error::Systemd("StartTransientUnit: no job in the reply".into()))?;
    conn.wait_job(&job)
}

/// Stops the unit and forgets a failed state; a unit already gone is fine.
fn stop_unit(conn: &mut Conn, unit: &str) -> Result<()> {
    let args = [Value::Str(unit.into()), Value::Str("replace".into())];
    match conn.call(SYSTEMD, "StopUnit", &args) {
        Ok(reply) => {
            if let Some(job) = reply.first_str() {
                conn.wait_job(&job)?;
            }
        }
        Err(Error::Systemd(e)) if e.contains("NoSuchUnit") => {}
        Err(e) => return Err(e),
    }
    let _ = conn.call(SYSTEMD, "ResetFailedUnit", &[Value::Str(unit.into())]);
    Ok(())
}

/// The limits systemd itself should know, in its v1 or v2 vocabulary.
pub(super) fn resource_props(mode: Mode, r: &LinuxResources) -> Vec<(String, Value)> {
    let mut p = vec![];
    let v2 = mode == Mode::V2;
    let inf = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
    if let Some(l) = r.memory().as_ref().and_then(|m| m.limit()) {
        p.push((if v2 { "MemoryMax" } else { "MemoryLimit" }.to_string(), Value::U64(inf(l))));
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|&s| s != 0) {
            let (name, v) = if v2 { ("CPUWeight", super::shares_to_weight(s)) } else { ("CPUShares", s) };
            p.push((name.to_string(), Value::U64(v)));
        }
        if let Some(q) = c.quota().filter(|&q| q != 0) {
            let period = c.period().filter(|&p| p > 0).unwrap_or(100_000);
            // systemd keeps whole percents: round up to 10 ms per second,
            // so the exact cfs quota written afterwards fits below it.
            let per_sec = if q < 0 { u64::MAX } else { (q as u64 * 1_000_000 / period).div_ceil(10_000) * 10_000 };
            p.push(("CPUQuotaPerSecUSec".to_string(), Value::U64(per_sec)));
        }
        // systemd manages cpuset only on v2 (AllowedCPUs, systemd 244+).
        let sets = [("AllowedCPUs", c.cpus()), ("AllowedMemoryNodes", c.mems())];
        for (name, list) in sets.into_iter().filter(|_| v2) {
            if let Some(mask) = list.as_deref().filter(|l| !l.is_empty()).and_then(cpu_mask) {
                p.push((name.to_string(), Value::Bytes(mask)));
            }
        }
    }
    if let Some(pids) = r.pids() {
        p.push(("TasksMax".to_string(), Value::U64(if pids.limit() > 0 { pids.limit() as u64 } else { u64::MAX })));
    }
    p
}

/// "0-2,7" → a bitmask, byte 0 holding CPUs 0..7 (systemd's `ay` format).
fn cpu_mask(list: &str) -> Option<Vec<u8>> {
    let mut mask = vec![];
    for part in list.split(',').map(str::trim) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
        if a > b || b >= 8192 {
            return None;
        }
        for n in a..=b {
            if mask.len() <= n / 8 {
                mask.resize(n / 8 + 1, 0);
            }
            mask[n / 8] |= 1 << (n % 8);
        }
    }
    Some(mask)
}

/// Device rules in systemd's terms: `DevicePolicy=strict` and one
/// `DeviceAllow` per allowed device; `None` when they are not an allow list
/// on a deny-all default (systemd cannot say "all but these").
fn device_props(rules: &[super::devfilter::Rule]) -> Option<Vec<(String, Value)>> {
    // Replay the rules as v1 does: a rule on everything resets the default.
    let (mut default_allow, mut allowed): (bool, Vec<String>) = (true, vec![]);
    for r in rules {
        let line = r.v1_line();
        let (dev, _) = line.rsplit_once(' ')?;
        if dev == "a *:*" && r.access == 7 {
            default_allow = r.allow;
            allowed.clear();
        } else if r.allow && !default_allow {
            allowed.push(line);
        } else if !r.allow && !default_allow {
            // Withdrawing an earlier allow of exactly this device is fine.
            allowed.retain(|l| !l.starts_with(&format!("{dev} ")));
        } else {
            return None;
        }
    }
    if default_allow {
        return None;
    }
    let names = std::fs::read_to_string("/proc/devices").unwrap_or_default();
    let mut allow = vec![];
    for line in allowed {
        let mut it = line.split([' ', ':']);
        let (typ, major, minor, acc) = (it.next()?, it.next()?, it.next()?, it.next()?);
        let kind = match typ {
            "c" => "char",
            "b" => "block",
            _ => return None,
        };
        let dev = match (major, minor) {
            ("*", _) => format!("{kind}-*"),
            (m, "*") => match device_group(&names, kind, m) {
                Some(name) => format!("{kind}-{name}"),
                // No name for the major: systemd cannot allow it; the
                // cgroupfs rule still does until systemd re-applies its own.
                None => continue,
            },
            (m, n) => format!("/dev/{kind}/{m}:{n}"),
        };
        allow.push((dev, acc.to_string()));
    }
    Some(vec![
        ("DevicePolicy".to_string(), Value::Str("strict".into())),
        ("DeviceAllow".to_string(), Value::Pairs(allow)),
    ])
}

/// The /proc/devices name of a major number ("136" → "pts").
fn device_group(proc_devices: &str, kind: &str, major: &str) -> Option<String> {
    let header = if kind == "char" { "Character devices:" } else { "Block devices:" };
    let section = proc_devices.split(header).nth(1)?.split("\n\n").next()?;
    section.lines().find_map(|l| {
        let (m, name) = l.trim().split_once(' ')?;
        (m == major).then(|| name.trim().to_string())
    })
}

impl Systemd {
    pub(super) fn from_record(rec: CgroupRecord) -> Self {
        let unit = rec.systemd.clone().expect("a systemd record");
        let inner = super::from_record(CgroupRecord { systemd: None, ..rec.clone() });
        Systemd { rec, unit, inner, conn: RefCell::new(None) }
    }

    /// Starts the scope with the runtime in it and makes the missing v1 directories.
    pub(super) fn create(cgroups_path: Option<&Path>, id: &str) -> Result<Self> {
        let mode = super::detect();
        let (slice, unit) = unit_for(cgroups_path, id)?;
        let rel = PathBuf::from(format!("{}/{unit}", expand_slice(&slice)?).trim_start_matches('/'));
        let home = own_cgroups()?;
        let mut conn = Conn::system()?;
        let mut props = vec![
            ("Description".to_string(), Value::Str(format!("wharf container {id}"))),
            ("Slice".to_string(), Value::Str(slice.clone())),
            ("Delegate".to_string(), Value::Bool(true)),
            ("DefaultDependencies".to_string(), Value::Bool(false)),
            ("PIDs".to_string(), Value::U32s(vec![std::process::id()])),
        ];
        // Every controller systemd manages must be in the unit's mask: on
        // v1 it trims the scope's directory from the hierarchies of those
        // it manages but were not asked for (blkio, say) at the next change.
        let io = if mode == Mode::V2 { "IOAccounting" } else { "BlockIOAccounting" };
        for a in ["MemoryAccounting", "CPUAccounting", "TasksAccounting", io] {
            props.push((a.to_string(), Value::Bool(true)));
        }
        // Refused (say, a unit of that name exists): nothing to undo.
        let result = start_unit(&mut conn, &unit, props)?;
        let unit = SystemdUnit { unit, slice, home };
        let mut rec = CgroupRecord { mode, paths: vec![], created: vec![], systemd: Some(unit.clone()) };
        if result != "done" {
            // The job may have failed after systemd moved us in.
            let s = Systemd::from_record(rec);
            let _ = s.go_home();
            let _ = stop_unit(&mut conn, &unit.unit);
            return Err(Error::Systemd(format!("starting {}: job {result}", unit.unit)));
        }
        let made = scope_dirs(mode, &rel, &mut rec);
        let s = Systemd::from_record(rec);
        *s.conn.borrow_mut() = Some(conn);
        if let Err(e) = made {
            let _ = s.destroy();
            return Err(e);
        }
        Ok(s)
    }

    /// Moves the runtime out of the scope, back to the cgroups it came from.
    fn go_home(&self) -> Result<()> {
        let scope = Path::new("/").join(self.scope_rel());
        for (ctrls, now) in own_cgroups()? {
            let Some(home) = self.unit.home.iter().find(|(c, _)| *c == ctrls).map(|(_, p)| p) else { continue };
            if now != scope || home.components().any(|c| c == std::path::Component::ParentDir) {
                continue;
            }
            let Some(mnt) = mount_of(&ctrls) else { continue };
            let dir = mnt.join(home.strip_prefix("/").unwrap_or(home));
            // The whole process: systemd moved every thread of it in.
            super::write_file(&dir, "cgroup.procs", "0")?;
        }
        Ok(())
    }

    fn scope_rel(&self) -> PathBuf {
        let slice = expand_slice(&self.unit.slice).unwrap_or_default();
        PathBuf::from(format!("{slice}/{}", self.unit.unit).trim_start_matches('/'))
    }

    fn with_conn<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let mut c = self.conn.borrow_mut();
        if c.is_none() {
            *c = Some(Conn::system()?);
        }
        f(c.as_mut().expect("just connected"))
    }
}

/// The scope's directory in every hierarchy; those systemd did not make
/// (controllers it does not manage) are made here and recorded.
fn scope_dirs(mode: Mode, rel: &Path, rec: &mut CgroupRecord) -> Result<()> {
    if mode == Mode::V2 {
        let dir = super::mkdir_recorded(Path::new(CGROUP_ROOT), rel, &mut rec.created)?;
        rec.paths.push((String::new(), dir));
        return Ok(());
    }
    for (ctrl, mnt) in super::v1::hierarchies()? {
        let dir = super::mkdir_recorded(&mnt, rel, &mut rec.created)?;
        if ctrl.split(',').any(|c| c == "cpuset") {
            super::v1::init_cpuset(&mnt, rel)?;
        }
        rec.paths.push((ctrl, dir));
    }
    if mode == Mode::Hybrid {
        let unified = Path::new(CGROUP_ROOT).join("unified");
        let dir = super::mkdir_recorded(&unified, rel, &mut rec.created)?;
        rec.paths.push((String::new(), dir));
    }
    Ok(())
}

impl CgroupManager for Systemd {
    fn add_task(&self, pid: i32) -> Result<()> {
        self.inner.add_task(pid)
    }

    fn apply(&self, r: &LinuxResources) -> Result<()> {
        let mut props = resource_props(self.rec.mode, r);
        let rules = super::devfilter::rules(r)?;
        if !rules.is_empty() {
            match device_props(&rules) {
                Some(p) => props.extend(p),
                None => crate::log::warn(&format!(
                    "{}: device rules are not an allow list; systemd is not told of them, and re-applying \
                     its own policy (daemon-reload) would lift them",
                    self.unit.unit
                )),
            }
        }
        if !props.is_empty() {
            let unit = &self.unit.unit;
            let args = [Value::Str(unit.clone()), Value::Bool(true), Value::Props(props)];
            self.with_conn(|c| c.call(SYSTEMD, "SetUnitProperties", &args).map(drop))?;
        }
        self.inner.apply(r)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        self.inner.set_frozen(frozen)
    }

    fn is_frozen(&self) -> bool {
        self.inner.is_frozen()
    }

    fn pids(&self) -> Result<Vec<i32>> {
        self.inner.pids()
    }

    fn stats(&self) -> Result<Stats> {
        self.inner.stats()
    }

    /// Kills what is left, stops the unit, removes what we made; and the
    /// scope's directories if systemd is gone and left them (as runc does).
    fn destroy(&self) -> Result<()> {
        // A create that failed before forking still has the runtime inside.
        // Failing to leave must not stop the unit from being killed and stopped.
        if let Err(e) = self.go_home() {
            crate::log::warn(&format!("leave {}: {e}", self.unit.unit));
        }
        let killed = self.inner.destroy();
        if let Err(e) = self.with_conn(|c| stop_unit(c, &self.unit.unit)) {
            crate::log::warn(&format!("stop {}: {e}", self.unit.unit));
        }
        for (_, dir) in &self.rec.paths {
            super::rmdir_retry(dir, false)?;
        }
        killed
    }

    fn record(&self) -> &CgroupRecord {
        &self.rec
    }

    /// The cgroupfs placement, plus systemd's own v1 hierarchy on v1 and
    /// hybrid hosts, which it tracks the scope's processes by (init is born
    /// there; `exec` must join it).
    fn placement(&self) -> Result<super::Placement> {
        let mut p = self.inner.placement()?;
        if let Some(mnt) = mount_of("name=systemd") {
            let dir = mnt.join(self.scope_rel());
            if dir.is_dir() {
                p.v1_tasks.push(dir.join("tasks"));
            }
        }
        Ok(p)
    }

    fn leave(&self) -> Result<()> {
        self.go_home()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_units_and_slices_like_runc() {
        let u = |p: &str| unit_for(Some(Path::new(p)), "id");
        assert_eq!(u("system.slice:docker:abc").unwrap(), ("system.slice".into(), "docker-abc.scope".into()));
        assert_eq!(u(":wharf:abc").unwrap(), ("system.slice".into(), "wharf-abc.scope".into()));
        assert_eq!(unit_for(None, "x").unwrap().1, "wharf-x.scope");
        assert!(u("/a/b").is_err());
        assert!(u("a.slice:p:bad/name").is_err());
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(expand_slice("a-b-c.slice").unwrap(), "/a.slice/a-b.slice/a-b-c.slice");
        assert_eq!(expand_slice("-.slice").unwrap(), "");
        for bad in ["a--b.slice", "-a.slice", "a.service", "a/b.slice"] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn device_allow_list_becomes_strict_policy() {
        let r: LinuxResources = serde_json::from_str(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#).unwrap();
        let props = device_props(&crate::cgroups::devfilter::rules(&r).unwrap()).unwrap();
        assert_eq!(props[0], ("DevicePolicy".into(), Value::Str("strict".into())));
        let Value::Pairs(allow) = &props[1].1 else { panic!("{props:?}") };
        assert!(allow.contains(&("char-*".into(), "m".into())), "{allow:?}");
        assert!(allow.contains(&("/dev/char/1:3".into(), "rwm".into())), "{allow:?}");
        // Default allow with exceptions cannot be said to systemd.
        let r: LinuxResources =
            serde_json::from_str(r#"{"devices":[{"allow":false,"type":"c","major":1,"minor":3,"access":"rwm"}]}"#)
                .unwrap();
        assert!(device_props(&crate::cgroups::devfilter::rules(&r).unwrap()).is_none());
    }

    #[test]
    fn translates_limits_per_cgroup_version() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":67108864},"cpu":{"shares":1024,"quota":12345,"period":100000},"pids":{"limit":20}}"#,
        )
        .unwrap();
        let v2 = resource_props(Mode::V2, &r);
        assert!(v2.contains(&("MemoryMax".into(), Value::U64(64 << 20))));
        assert!(v2.contains(&("CPUWeight".into(), Value::U64(39))));
        assert!(v2.contains(&("CPUQuotaPerSecUSec".into(), Value::U64(130_000))));
        assert!(v2.contains(&("TasksMax".into(), Value::U64(20))));
        assert_eq!(cpu_mask("0-2,9"), Some(vec![0b111, 0b10]));
        assert_eq!(
            device_group("Character devices:\n  1 mem\n136 pts\n\nBlock devices:\n  7 loop\n", "char", "136")
                .as_deref(),
            Some("pts")
        );
        assert_eq!(cpu_mask("x"), None);
        let v1 = resource_props(Mode::Hybrid, &r);
        assert!(v1.contains(&("MemoryLimit".into(), Value::U64(64 << 20))));
        assert!(v1.contains(&("CPUShares".into(), Value::U64(1024))));
    }
}
