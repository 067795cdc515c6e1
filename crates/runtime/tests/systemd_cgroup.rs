//! `--systemd-cgroup` against a real systemd: Debian's systemd booted as
//! PID 1 of a container of our own (pid, mount and cgroup namespaces, the
//! host's / read-only, tmpfs on /run, /tmp, /var/*, a delegated cgroup
//! subtree as its root), with wharf-runtime driven inside it through
//! nsenter. This host runs no systemd, so nothing else can play the part.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// Makes the subtree, moves itself in, then unshares: the cgroup namespace's
/// root is that subtree. $1: subtree name, $2: the script below, $3: work
/// dir, $4: "host" (the host's hierarchies), "legacy" (its v1 ones alone)
/// or "unified" (cgroup2 alone).
const OUTER: &str = r#"
set -eu
# One directory per hierarchy: the v1 (and hybrid) mounts, or a v2 host's root.
dirs=/sys/fs/cgroup/*/
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then dirs=/sys/fs/cgroup/; fi
for d in $dirs; do
  d=${d%/}
  mkdir "$d/$1"
  if [ -f "$d/cpuset.cpus" ]; then cat "$d/cpuset.cpus" > "$d/$1/cpuset.cpus"; cat "$d/cpuset.mems" > "$d/$1/cpuset.mems"; fi
  echo $$ > "$d/$1/cgroup.procs"
done
exec unshare --pid --mount --cgroup --fork --kill-child /bin/bash -c "$2" inner "$3" "$4"
"#;

/// PID 1 of the new pid namespace: builds the root and execs systemd.
const INNER: &str = r#"
set -eu
work=$1
R=$work/root
mount --make-rprivate /
mkdir -p "$R"
mount --rbind / "$R"
mount -o remount,bind,ro "$R"
for t in run tmp var/tmp var/lib/systemd var/log; do mount -t tmpfs -o mode=755 tmpfs "$R/$t"; done
mkdir "$R/run/wharf-test"
mount --bind "$work" "$R/run/wharf-test"
umount -l "$R/proc"
mount -t proc proc "$R/proc"
umount -l "$R/sys/fs/cgroup"
if [ "$2" = unified ] || [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"
else
mount -t tmpfs -o mode=755 cgroup "$R/sys/fs/cgroup"
# The same hierarchies as the host's, seen from our cgroup namespace.
awk '$3=="cgroup2"{print $2, "-"} $3=="cgroup"{n=split($4,o,","); c=""; for(i=1;i<=n;i++) if(o[i]!="rw"&&o[i]!="relatime") c=c (c?",":"") o[i]; print $2, c}' /proc/self/mounts |
while read -r mp opts; do
  case $mp in /sys/fs/cgroup/*) ;; *) continue ;; esac
  if [ "$opts" = - ] && [ "$2" = legacy ]; then continue; fi
  mkdir -p "$R$mp"
  if [ "$opts" = - ]; then mount -t cgroup2 cgroup2 "$R$mp"; else mount -t cgroup -o "$opts" cgroup "$R$mp"; fi
done
fi
mkdir "$R/run/wharf-units"
printf '[Unit]\nDescription=wharf test target\nDefaultDependencies=no\n' > "$R/run/wharf-units/wharf-test.target"
cd "$R"
pivot_root . .
umount -l .
# Legacy: else systemd mounts a cgroup2 on /sys/fs/cgroup/unified itself.
cmdline=
if [ "$2" = legacy ]; then cmdline="systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=1"; fi
exec env -i container=wharf SYSTEMD_UNIT_PATH=/run/wharf-units: SYSTEMD_PROC_CMDLINE="$cmdline" \
  PATH=/usr/sbin:/usr/bin:/sbin:/bin /lib/systemd/systemd --unit=wharf-test.target
"#;

/// Runs a command in the box: its namespaces and root, and its root cgroups
/// (else the command would sit outside the namespace's tree).
const ENTER: &str = r#"for f in /sys/fs/cgroup/*/cgroup.procs /sys/fs/cgroup/cgroup.procs; do [ -f "$f" ] && echo $$ > "$f"; done; exec "$@""#;

/// The system bus in the box: dbus-daemon as systemd's dbus.service, without
/// the default dependencies (they would pull in all of sysinit.target).
const DBUS_UP: &str = r#"set -e
printf '[Unit]\nDefaultDependencies=no\n[Socket]\nListenStream=/run/dbus/system_bus_socket\n' > /run/wharf-units/dbus.socket
printf '[Unit]\nDefaultDependencies=no\nRequires=dbus.socket\n[Service]\nType=notify\nNotifyAccess=main\nExecStart=/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile --systemd-activation --syslog-only\n' > /run/wharf-units/dbus.service
systemctl daemon-reload
systemctl start dbus.socket dbus.service
for i in $(seq 100); do busctl --system status org.freedesktop.systemd1 >/dev/null 2>&1 && exit 0; sleep 0.05; done
echo 'systemd did not join the system bus' >&2; exit 1
"#;

/// systemd as PID 1 of a container of our own.
struct SystemdBox {
    child: Child,
    /// Host pid of the box's systemd.
    pid: i32,
    /// Name of the delegated subtree in every host hierarchy.
    cgroup: String,
    /// Where command output goes (a detached container inherits it, so
    /// pipes would never reach EOF).
    work: PathBuf,
}

impl SystemdBox {
    fn boot(work: &Path, layout: &str) -> SystemdBox {
        let cgroup = format!("wharf-sdtest-{}-{layout}", std::process::id());
        let log = std::fs::File::create(work.join("systemd.log")).unwrap();
        let mut cmd = Command::new("/bin/bash");
        cmd.args(["-c", OUTER, "outer", &cgroup, INNER])
            .arg(work)
            .arg(layout)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl in the forked child before exec. If this test dies
        // (killed, timed out) unshare dies too, and --kill-child takes systemd.
        unsafe {
            cmd.pre_exec(|| {
                (libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0)
                    .then_some(())
                    .ok_or_else(std::io::Error::last_os_error)
            })
        };
        let child = cmd.spawn().unwrap();
        let mut b = SystemdBox { child, pid: 0, cgroup, work: work.to_path_buf() };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let up = b.pid > 0 && b.sh("systemctl is-system-running").0.trim() == "running";
            if up {
                return b;
            }
            if b.pid == 0 {
                b.pid = b.find_systemd();
            }
            if Instant::now() > deadline || b.child.try_wait().unwrap().is_some() {
                let log = std::fs::read_to_string(work.join("systemd.log")).unwrap_or_default();
                panic!("systemd did not boot in the test container (pid {}):\n{log}", b.pid);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The unshare child whose comm is systemd.
    fn find_systemd(&self) -> i32 {
        let unshare = self.child.id();
        let kids = std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children")).unwrap_or_default();
        kids.split_whitespace()
            .filter_map(|p| p.parse().ok())
            .find(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "systemd"))
            .unwrap_or(0)
    }

    fn cmd(&self, args: &[&str]) -> Output {
        let pid = self.pid.to_string();
        let (o, e) = (self.work.join("cmd.out"), self.work.join("cmd.err"));
        let status = Command::new("nsenter")
            .args(["-t", &pid, "-m", "-p", "-C", "-r", "-w", "/bin/sh", "-c", ENTER, "sh"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        Output { status, stdout: std::fs::read(&o).unwrap(), stderr: std::fs::read(&e).unwrap() }
    }

    /// (stdout, stderr, success) of a shell line in the box.
    fn sh(&self, line: &str) -> (String, String, bool) {
        let o = self.cmd(&["/bin/sh", "-c", line]);
        (text(&o.stdout), text(&o.stderr), o.status.success())
    }

    /// wharf-runtime --systemd-cgroup with the test's state root.
    fn rt(&self, args: &[&str]) -> (String, String, bool) {
        let mut all = vec![BIN, "--systemd-cgroup", "--root", "/run/wharf-test/state"];
        all.extend_from_slice(args);
        let o = self.cmd(&all);
        (text(&o.stdout), text(&o.stderr), o.status.success())
    }

    fn unit_prop(&self, unit: &str, prop: &str) -> String {
        self.sh(&format!("systemctl show {unit} -p {prop} --value")).0.trim().to_string()
    }
}

impl Drop for SystemdBox {
    fn drop(&mut self) {
        if self.pid > 0 {
            // The whole pid namespace (and its mount namespace) goes with it.
            // SAFETY: signalling the systemd this test started, by pid.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Then the cgroups systemd and the runtime made in our subtree.
        for _ in 0..200 {
            let left = remove_tree(&self.cgroup);
            if left.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// rmdir of `name` and everything below it in every hierarchy; what is left.
fn remove_tree(name: &str) -> Vec<PathBuf> {
    let mut left = vec![];
    let hierarchies = std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten().map(|h| h.path());
    for top in hierarchies.chain([PathBuf::from("/sys/fs/cgroup")]).map(|h| h.join(name)) {
        if top.exists() {
            let mut dirs = vec![];
            collect_dirs(&top, &mut dirs);
            for d in dirs.iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
            if top.exists() {
                left.push(top);
            }
        }
    }
    left
}

fn collect_dirs(d: &Path, out: &mut Vec<PathBuf>) {
    out.push(d.to_path_buf());
    for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect_dirs(&e.path(), out);
        }
    }
}

/// A bundle in the shared work dir, as the box sees it.
fn bundle(lab: &Lab, name: &str, cfg: &serde_json::Value) -> String {
    lab.bundle(name, cfg);
    format!("/run/wharf-test/bundle-{name}")
}

#[test]
fn systemd_driver_makes_a_scope_unit_with_limits_and_removes_it() {
    if !privileged("systemd_driver_makes_a_scope_unit_with_limits_and_removes_it") {
        return;
    }
    assert!(
        Path::new("/lib/systemd/systemd").exists(),
        "this test boots Debian's systemd: apt-get install systemd (scripts/deps.sh)"
    );
    let lab = Lab::new("systemd");
    let sd = SystemdBox::boot(lab.dir.path(), "host");
    let id = format!("sd{}", std::process::id());
    let unit = format!("wharf-{id}.scope");
    let mut cfg = lab.config(&["sleep", "1000"]);
    cfg["linux"]["cgroupsPath"] = json!(format!("system.slice:wharf:{id}"));
    cfg["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
    cfg["linux"]["resources"]["pids"] = json!({"limit": 20});
    let b = bundle(&lab, "main", &cfg);
    let (_, err, ok) = sd.rt(&["run", "-d", "--bundle", &b, &id]);
    assert!(ok, "run -d with --systemd-cgroup: {err}");

    // systemd has the scope, with our limits, where cgroupsPath says.
    assert_eq!(sd.unit_prop(&unit, "ActiveState"), "active");
    assert_eq!(sd.unit_prop(&unit, "ControlGroup"), format!("/system.slice/{unit}"));
    let v2 = sd.sh("test -f /sys/fs/cgroup/cgroup.controllers").2;
    assert_eq!(sd.unit_prop(&unit, if v2 { "MemoryMax" } else { "MemoryLimit" }), (64u64 << 20).to_string());
    assert_eq!(sd.unit_prop(&unit, "TasksMax"), "20");

    // The container's process is in the scope in every hierarchy, and the
    // runtime is not (it left once the container existed).
    let state: serde_json::Value = serde_json::from_str(&sd.rt(&["state", &id]).0).unwrap();
    assert_eq!(state["status"], "running");
    let pid = state["pid"].as_i64().unwrap();
    let cg = sd.sh(&format!("cat /proc/{pid}/cgroup")).0;
    for l in cg.lines() {
        assert!(l.ends_with(&format!("/system.slice/{unit}")), "{l} (all: {cg})");
    }
    let scope = |ctrl: &str| match v2 {
        true => format!("/sys/fs/cgroup/system.slice/{unit}"),
        false => format!("/sys/fs/cgroup/{ctrl}/system.slice/{unit}"),
    };
    let procs = sd.sh(&format!("cat {}/cgroup.procs", scope("pids"))).0;
    assert_eq!(procs.trim(), pid.to_string(), "only the container in the scope");
    // The limits are in the cgroup files too (written by the cgroupfs code).
    let mem = if v2 { "memory.max" } else { "memory.limit_in_bytes" };
    assert_eq!(sd.sh(&format!("cat {}/{mem}", scope("memory"))).0.trim(), (64u64 << 20).to_string());
    assert_eq!(sd.sh(&format!("cat {}/pids.max", scope("pids"))).0.trim(), "20");

    // Regression: a daemon-reload wrote "a *:* rwm" over the device rules
    // (systemd had not been told of them, so re-applied DevicePolicy=auto).
    if !v2 {
        let before = sd.sh(&format!("cat {}/devices.list", scope("devices"))).0;
        assert!(sd.sh("systemctl daemon-reload").2);
        let after = sd.sh(&format!("cat {}/devices.list", scope("devices"))).0;
        assert_eq!(before, after, "daemon-reload keeps the device rules");
    }

    // A second container asking for the same unit: refused, and the first
    // one's scope untouched (a failed create must not stop a unit it did not make).
    let (_, err, ok) = sd.rt(&["run", "-d", "--bundle", &b, &format!("{id}-dup")]);
    assert!(!ok && err.contains("UnitExists"), "same cgroupsPath twice: {err}");
    assert_eq!(sd.unit_prop(&unit, "ActiveState"), "active", "the first scope survives");
    assert!(!lab.dir.path().join("state").join(format!("{id}-dup")).exists());

    // `run` in the foreground: the container sees its pids limit; run's
    // own delete removes the unit too.
    let id2 = format!("{id}-fg");
    let mut cfg =
        lab.config(&["sh", "-c", "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"]);
    cfg["linux"]["cgroupsPath"] = json!(format!(":wharf:{id2}"));
    cfg["linux"]["resources"]["pids"] = json!({"limit": 7});
    let b = bundle(&lab, "fg", &cfg);
    let (out, err, ok) = sd.rt(&["run", "--bundle", &b, &id2]);
    assert!(ok && out.trim() == "7", "foreground run: {out} {err}");
    assert!(matches!(sd.unit_prop(&format!("wharf-{id2}.scope"), "LoadState").as_str(), "not-found" | ""));

    // What containerd's shim does with SystemdCgroup = true: the flag on every verb.
    let (out, err, ok) = sd.rt(&["list"]);
    assert!(ok && out.contains(&id), "list: {out} {err}");
    // Regression: exec stayed out of the scope in name=systemd (systemd's own).
    // exec joins the scope in every hierarchy, systemd's own included: the
    // container's cgroup namespace root is the scope, so each path is "/".
    let (out, err, ok) = sd.rt(&["exec", &id, "cat", "/proc/self/cgroup"]);
    assert!(ok && out.lines().all(|l| l.ends_with(":/")), "exec in the scope: {out} {err}");
    let (out, err, ok) = sd.rt(&["ps", &id]);
    assert!(ok && out.contains("sleep"), "ps: {out} {err}");
    let upd = lab.dir.path().join("update.json");
    std::fs::write(&upd, r#"{"memory":{"limit":33554432},"pids":{"limit":10}}"#).unwrap();
    let (_, err, ok) = sd.rt(&["update", "--resources", "/run/wharf-test/update.json", &id]);
    assert!(ok, "update: {err}");
    assert_eq!(sd.unit_prop(&unit, "TasksMax"), "10", "systemd knows the new limit");
    assert_eq!(sd.sh(&format!("cat {}/{mem}", scope("memory"))).0.trim(), "33554432");
    let (_, err, ok) = sd.rt(&["pause", &id]);
    assert!(ok, "pause: {err}");
    assert!(sd.rt(&["state", &id]).0.contains("\"paused\""));
    let (_, err, ok) = sd.rt(&["resume", &id]);
    assert!(ok, "resume: {err}");
    let (out, err, ok) = sd.rt(&["events", "--stats", &id]);
    // runc's schema (go-runc decodes it): data.pids.limit.
    let stats: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_default();
    assert!(ok && stats["data"]["pids"]["limit"] == 10, "events --stats: {out} {err}");
    // A neighbour in the same slice, alive while the first one is deleted.
    let id2 = format!("{id}-nb");
    let mut cfg2 = lab.config(&["sleep", "1000"]);
    cfg2["linux"]["cgroupsPath"] = json!(format!("system.slice:wharf:{id2}"));
    let b2 = bundle(&lab, "neighbour", &cfg2);
    let (_, err, ok) = sd.rt(&["run", "-d", "--bundle", &b2, &id2]);
    assert!(ok, "neighbour: {err}");
    let (_, err, ok) = sd.rt(&["kill", "--all", &id, "KILL"]);
    assert!(ok, "kill --all: {err}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sd.rt(&["state", &id]).0.contains("\"stopped\"") {
        assert!(Instant::now() < deadline, "container did not stop after kill --all");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Regression: this failed (EBUSY) on the system.slice directories it made
    // in cpuset/freezer/cpuacct, which still held the neighbour's scope.
    let (_, err, ok) = sd.rt(&["delete", &id]);
    assert!(ok, "delete: {err}");
    let (_, err, ok) = sd.rt(&["delete", "-f", &id2]);
    assert!(ok, "delete the neighbour: {err}");
    assert!(
        matches!(sd.unit_prop(&unit, "LoadState").as_str(), "not-found" | ""),
        "the unit is gone: {}",
        sd.sh(&format!("systemctl status {unit}")).0
    );
    let left = sd.sh(&format!("find /sys/fs/cgroup -name {unit} -o -name wharf-{id2}.scope")).0;
    assert!(left.trim().is_empty(), "scope directories left: {left}");

    // cgroupsPath not in systemd's form: a clear error, nothing left.
    let mut cfg = lab.config(&["true"]);
    cfg["linux"]["cgroupsPath"] = json!("/not/a/slice");
    let b = bundle(&lab, "bad", &cfg);
    let (_, err, ok) = sd.rt(&["run", "--bundle", &b, &format!("{id}-bad")]);
    assert!(!ok && err.contains("slice:prefix:name"), "{err}");
    let state_root = lab.dir.path().join("state");
    let ids: Vec<_> = std::fs::read_dir(&state_root).into_iter().flatten().flatten().collect();
    assert!(ids.is_empty(), "state left: {ids:?}");
    let units = sd.sh("systemctl list-units --all --no-legend 'wharf-*.scope'").0;
    assert!(units.trim().is_empty(), "units left: {units}");

    // Not root's private socket but the system bus (dbus-daemon, started
    // by this systemd): Hello, a match rule for JobRemoved, destinations.
    let (_, err, ok) = sd.sh(DBUS_UP);
    assert!(ok, "dbus-daemon in the box: {err}");
    let id3 = format!("{id}-bus");
    let mut cfg = lab.config(&["sleep", "1000"]);
    cfg["linux"]["cgroupsPath"] = json!(format!("system.slice:wharf:{id3}"));
    let b = bundle(&lab, "bus", &cfg);
    let rt = format!("{BIN} --systemd-cgroup --root /run/wharf-test/state");
    let line = format!(
        "unshare -m sh -c 'mount --bind /dev/null /run/systemd/private && {rt} run -d --bundle {b} {id3} && \
         systemctl show -p ActiveState --value wharf-{id3}.scope && {rt} delete -f {id3}'"
    );
    let (out, err, ok) = sd.sh(&line);
    assert!(ok && out.trim() == "active", "over the system bus: {out} {err}");
    assert!(matches!(sd.unit_prop(&format!("wharf-{id3}.scope"), "LoadState").as_str(), "not-found" | ""));

    let cgroup = sd.cgroup.clone();
    drop(sd);
    assert!(remove_tree(&cgroup).is_empty(), "the box's cgroups are removed");
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(lab.dir.path().to_str().unwrap()), "mounts leaked");
}

/// systemd on a pure cgroup2 hierarchy (this host's v2 mount, which holds
/// only hugetlb: the scope, placement, leaving and removal are what is
/// checked, not limits).
#[test]
fn systemd_driver_on_a_unified_hierarchy() {
    if privileged("systemd_driver_on_a_unified_hierarchy") {
        scope_cycle("unified", "/sys/fs/cgroup", "cgroup.freeze");
    }
}

/// systemd on v1 hierarchies alone (its legacy mode).
#[test]
fn systemd_driver_on_v1_hierarchies_alone() {
    if !privileged("systemd_driver_on_v1_hierarchies_alone") {
        return;
    }
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        skipped("systemd_driver_on_v1_hierarchies_alone", "this host has no cgroup v1 hierarchies");
        return;
    }
    scope_cycle("legacy", "/sys/fs/cgroup/pids", "freezer");
}

/// One container through create, pause and delete in a box whose cgroups
/// are laid out as `layout`; `procs_root` is where the scope's process
/// list is looked for.
fn scope_cycle(layout: &str, procs_root: &str, freezer: &str) {
    let lab = Lab::new(&format!("systemd-{layout}"));
    let sd = SystemdBox::boot(lab.dir.path(), layout);
    let v2 = sd.sh("test -f /sys/fs/cgroup/cgroup.controllers").2;
    let unified = sd.sh("test -e /sys/fs/cgroup/unified").2;
    assert_eq!((v2, unified), (layout == "unified", false), "the box's cgroup layout is {layout}");
    let id = format!("sd{}-{layout}", std::process::id());
    let unit = format!("wharf-{id}.scope");
    let mut cfg = lab.config(&["sleep", "1000"]);
    cfg["linux"]["cgroupsPath"] = json!(format!("machine.slice:wharf:{id}"));
    let b = bundle(&lab, layout, &cfg);
    let (_, err, ok) = sd.rt(&["run", "-d", "--bundle", &b, &id]);
    assert!(ok, "run -d: {err}");
    assert_eq!(sd.unit_prop(&unit, "ControlGroup"), format!("/machine.slice/{unit}"));
    let state: serde_json::Value = serde_json::from_str(&sd.rt(&["state", &id]).0).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    let procs = sd.sh(&format!("cat {procs_root}/machine.slice/{unit}/cgroup.procs")).0;
    assert_eq!(procs.trim(), pid.to_string(), "only the container in the scope");
    let (_, err, ok) = sd.rt(&["pause", &id]);
    assert!(ok && sd.rt(&["state", &id]).0.contains("\"paused\""), "pause ({freezer}): {err}");
    let (_, err, ok) = sd.rt(&["delete", "-f", &id]);
    assert!(ok, "delete -f: {err}");
    assert!(matches!(sd.unit_prop(&unit, "LoadState").as_str(), "not-found" | ""));
    let left = sd.sh(&format!("find /sys/fs/cgroup -name {unit}")).0;
    assert!(left.trim().is_empty(), "scope directories left: {left}");
    let cgroup = sd.cgroup.clone();
    drop(sd);
    assert!(remove_tree(&cgroup).is_empty(), "the box's cgroups are removed");
}

#[test]
fn systemd_flag_without_systemd_is_accepted_by_every_verb_and_refused_by_create() {
    if !privileged("systemd_flag_without_systemd_is_accepted_by_every_verb_and_refused_by_create") {
        return;
    }
    if Path::new("/run/systemd/private").exists() || Path::new("/run/dbus/system_bus_socket").exists() {
        skipped("systemd_flag_without_systemd_…", "this host runs systemd or a system bus");
        return;
    }
    let mut lab = Lab::new("nosystemd");
    let id = lab.id("nosd");
    let b = lab.bundle("x", &lab.config(&["true"]));
    let out = lab.rt(&["--systemd-cgroup", "list"]);
    assert!(out.status.success(), "list with the flag (was refused): {}", text(&out.stderr));
    let out = lab.rt(&["--systemd-cgroup", "run", "--bundle", b.to_str().unwrap(), &id]);
    let err = text(&out.stderr);
    assert!(!out.status.success() && err.contains("cannot reach systemd"), "{err}");
    let out = lab.rt(&["--systemd-cgroup", "state", &id]);
    assert!(text(&out.stderr).contains("does not exist"), "state: {}", text(&out.stderr));
    lab.assert_clean();
}
