//! Device rules on cgroup v2: an eBPF program of type CGROUP_DEVICE,
//! attached to the container's cgroup (v2 has no devices controller).
//!
//! The rules mean what they mean on v1: a rule for every device ("a",
//! wildcard major and minor, rwm) resets the default and drops what came
//! before it; after that the last rule that matches a request decides. The
//! program checks the remaining rules from last to first and falls back to
//! the default. An allow rule matches when it grants every access asked
//! for; a deny rule when it refuses any of them. The program is generated
//! as raw BPF instructions (the way runc's devicefilter does) — no compiler,
//! no library.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceType, LinuxResources};

use crate::error::{Error, Result};

/// One rule: `typ` b or c (None: both), `None` major/minor: any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub allow: bool,
    pub typ: Option<u32>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// BPF_DEVCG_ACC_* bits: mknod 1, read 2, write 4.
    pub access: u32,
}

impl Rule {
    /// The rule as cgroup v1's devices.allow/devices.deny take it.
    pub fn v1_line(&self) -> String {
        let typ = match self.typ {
            None => 'a',
            Some(DEV_BLOCK) => 'b',
            Some(_) => 'c',
        };
        let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
        let acc: String =
            [(2, 'r'), (4, 'w'), (1, 'm')].iter().filter(|(b, _)| self.access & b != 0).map(|p| p.1).collect();
        format!("{typ} {}:{} {acc}", n(self.major), n(self.minor))
    }
}

const DEV_BLOCK: u32 = 1;
const DEV_CHAR: u32 = 2;
const ACC_ALL: u32 = 7;

fn access_bits(s: &str) -> u32 {
    s.chars().fold(0, |a, c| {
        a | match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => 0,
        }
    })
}

fn wild(n: Option<i64>) -> Option<u32> {
    n.filter(|&n| n >= 0).map(|n| n as u32)
}

/// The rules a container gets, in the order v1 writes them: the spec's
/// resource rules, then the default devices. None at all when the spec asks
/// for no device rules (then nothing is filtered, as on v1). The nodes of
/// `linux.devices` get no rule of their own, as with runc: a caller that
/// allows one read-only (`docker run --device X:r`) must not see it writable.
pub(crate) fn rules(r: &LinuxResources) -> Result<Vec<Rule>> {
    let asked = r.devices().as_deref().unwrap_or_default();
    if asked.is_empty() {
        return Ok(vec![]);
    }
    let mut out = Vec::new();
    for d in asked {
        let typ = match d.typ().unwrap_or_default() {
            LinuxDeviceType::A => None,
            LinuxDeviceType::B => Some(DEV_BLOCK),
            LinuxDeviceType::C | LinuxDeviceType::U => Some(DEV_CHAR),
            LinuxDeviceType::P => return Err(Error::InvalidArgument("device rule of type \"p\"".into())),
        };
        let access = access_bits(d.access().as_deref().unwrap_or("rwm"));
        out.push(Rule { allow: d.allow(), typ, major: wild(d.major()), minor: wild(d.minor()), access });
    }
    for (t, maj, min, acc) in super::default_device_rules() {
        let typ = Some(if t == 'b' { DEV_BLOCK } else { DEV_CHAR });
        out.push(Rule { allow: true, typ, major: wild(Some(maj)), minor: wild(Some(min)), access: access_bits(acc) });
    }
    Ok(out)
}

/// One BPF instruction, as the kernel lays it out.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: dst | (src << 4), off, imm }
}

// Opcodes (class | op | source).
const LDXW: u8 = 0x61; // dst = *(u32 *)(src + off)
const AND32_K: u8 = 0x54;
const RSH32_K: u8 = 0x74;
const MOV32_X: u8 = 0xbc;
const MOV64_K: u8 = 0xb7;
const JNE32_K: u8 = 0x56;
const JNE32_X: u8 = 0x5e;
const JEQ32_K: u8 = 0x16;
const EXIT: u8 = 0x95;

/// The program for `rules`: returns 1 to allow, 0 to refuse.
pub(crate) fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut default_allow = true;
    let mut start = 0;
    for (i, r) in rules.iter().enumerate() {
        if r.typ.is_none() && r.major.is_none() && r.minor.is_none() && r.access == ACC_ALL {
            default_allow = r.allow;
            start = i + 1;
        }
    }
    // r2 = device type, r3 = access asked, r4 = major, r5 = minor.
    let mut p = vec![
        insn(LDXW, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDXW, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDXW, 4, 1, 4, 0),
        insn(LDXW, 5, 1, 8, 0),
    ];
    for r in rules[start..].iter().rev() {
        p.extend(block(r));
    }
    p.push(insn(MOV64_K, 0, 0, 0, default_allow as i32));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

/// Returns allow/deny when `r` matches; otherwise jumps past itself.
fn block(r: &Rule) -> Vec<Insn> {
    // Jumps carry off = -1 until the block's length is known.
    let mut b = Vec::new();
    if let Some(t) = r.typ {
        b.push(insn(JNE32_K, 2, 0, -1, t as i32));
    }
    if r.access != ACC_ALL || !r.allow {
        b.push(insn(MOV32_X, 1, 3, 0, 0));
        b.push(insn(AND32_K, 1, 0, 0, r.access as i32));
        if r.allow {
            // Every access asked for must be granted.
            b.push(insn(JNE32_X, 1, 3, -1, 0));
        } else {
            // Any access asked for that is refused refuses.
            b.push(insn(JEQ32_K, 1, 0, -1, 0));
        }
    }
    if let Some(m) = r.major {
        b.push(insn(JNE32_K, 4, 0, -1, m as i32));
    }
    if let Some(m) = r.minor {
        b.push(insn(JNE32_K, 5, 0, -1, m as i32));
    }
    b.push(insn(MOV64_K, 0, 0, 0, r.allow as i32));
    b.push(insn(EXIT, 0, 0, 0, 0));
    let len = b.len();
    for (i, ins) in b.iter_mut().enumerate() {
        if ins.off == -1 {
            ins.off = (len - i - 1) as i16;
        }
    }
    b
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<i64> {
    // SAFETY: `attr` is a #[repr(C)] bpf_attr prefix of the right size for `cmd`.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r)
}

#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct Attach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct Query {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

fn load(prog: &[Insn]) -> Result<OwnedFd> {
    let license = c"Apache-2.0";
    let mut attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    attr.prog_name[..12].copy_from_slice(b"wharf_device");
    match bpf(BPF_PROG_LOAD, &mut attr) {
        // SAFETY: the kernel returned a new descriptor we now own.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(e) => {
            // Once more with the verifier's log, for the error message.
            let mut log = vec![0u8; 1 << 16];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let _ = bpf(BPF_PROG_LOAD, &mut attr);
            let end = log.iter().position(|&b| b == 0).unwrap_or(0);
            let log = String::from_utf8_lossy(&log[..end]);
            Err(Error::io(format!("load the cgroup v2 device filter (eBPF): {}", log.trim()), e))
        }
    }
}

/// Programs of type CGROUP_DEVICE attached to `cg` now.
fn attached(cg: &OwnedFd) -> Result<Vec<OwnedFd>> {
    let mut ids = [0u32; 64];
    let mut q = Query {
        target_fd: cg.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut q).map_err(|e| Error::io("query the cgroup's device filters", e))?;
    let mut fds = Vec::new();
    for &id in &ids[..q.prog_cnt as usize] {
        let mut a = [id, 0, 0, 0];
        let fd = bpf(BPF_PROG_GET_FD_BY_ID, &mut a).map_err(|e| Error::io("open an attached device filter", e))?;
        // SAFETY: the kernel returned a new descriptor we now own.
        fds.push(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    }
    Ok(fds)
}

/// Puts the device filter for `rules` on the v2 cgroup `dir`, replacing any
/// device filter this runtime attached before (`update`). No rules: any
/// previous filter is removed and nothing is filtered.
pub(crate) fn apply(dir: &Path, rules: &[Rule]) -> Result<()> {
    let cg: OwnedFd = std::fs::File::open(dir).map_err(|e| Error::io(format!("open {}", dir.display()), e))?.into();
    let old = attached(&cg)?;
    if !rules.is_empty() {
        let prog = load(&program(rules))?;
        let mut a = Attach {
            target_fd: cg.as_raw_fd() as u32,
            attach_bpf_fd: prog.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: BPF_F_ALLOW_MULTI,
            ..Default::default()
        };
        bpf(BPF_PROG_ATTACH, &mut a)
            .map_err(|e| Error::io(format!("attach the device filter to {}", dir.display()), e))?;
    }
    // The new filter is in place before the old ones go: no gap.
    for fd in old {
        let mut a = Attach {
            target_fd: cg.as_raw_fd() as u32,
            attach_bpf_fd: fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        bpf(BPF_PROG_DETACH, &mut a).map_err(|e| Error::io("detach the previous device filter", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(allow: bool, typ: Option<u32>, major: Option<u32>, minor: Option<u32>, access: u32) -> Rule {
        Rule { allow, typ, major, minor, access }
    }

    #[test]
    fn v1_lines() {
        assert_eq!(rule(false, None, None, None, ACC_ALL).v1_line(), "a *:* rwm");
        assert_eq!(rule(true, Some(DEV_CHAR), Some(1), Some(3), 2 | 4).v1_line(), "c 1:3 rw");
        assert_eq!(rule(true, Some(DEV_BLOCK), None, None, 1).v1_line(), "b *:* m");
    }

    #[test]
    fn jumps_land_on_the_next_block() {
        let r = rule(true, Some(DEV_CHAR), Some(1), Some(3), 2);
        let b = block(&r);
        // type, mov, and, jne, major, minor, mov r0, exit
        assert_eq!(b.len(), 8);
        for (i, ins) in b.iter().enumerate() {
            if matches!(ins.code, JNE32_K | JNE32_X | JEQ32_K) {
                assert_eq!(i as i16 + ins.off + 1, b.len() as i16, "jump at {i}");
            }
        }
    }

    // Regression: every linux.devices node was allowed rwm after the spec's
    // rules, so `docker run --device /dev/fuse:/dev/f:r` left it writable.
    #[test]
    fn a_read_only_device_rule_is_not_widened() {
        let r: LinuxResources = serde_json::from_value(serde_json::json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "r"}
        ]}))
        .unwrap();
        let fuse: Vec<_> =
            rules(&r).unwrap().into_iter().filter(|x| x.major == Some(10) && x.minor == Some(229)).collect();
        assert_eq!(fuse, [rule(true, Some(DEV_CHAR), Some(10), Some(229), 2)]);
    }

    #[test]
    fn a_deny_all_rule_sets_the_default_and_drops_earlier_rules() {
        let allow_null = rule(true, Some(DEV_CHAR), Some(1), Some(3), ACC_ALL);
        let deny_all = rule(false, None, None, None, ACC_ALL);
        let p = program(&[allow_null.clone(), deny_all.clone()]);
        // Prologue (6) + default (2): the allow before the reset is gone.
        assert_eq!(p.len(), 8);
        assert_eq!(p[6], insn(MOV64_K, 0, 0, 0, 0));
        let p = program(&[deny_all, allow_null]);
        assert_eq!(p.len(), 6 + 5 + 2);
    }

    /// The kernel enforces what the program says, and `apply` replaces the
    /// filter rather than stacking a second one.
    #[test]
    fn the_kernel_enforces_the_filter_and_apply_replaces_it() {
        if std::env::var_os("WHARF_SKIP_PRIVILEGED").is_some() {
            eprintln!("SKIPPED the_kernel_enforces_the_filter: WHARF_SKIP_PRIVILEGED is set");
            return;
        }
        // SAFETY: geteuid cannot fail.
        assert_eq!(unsafe { libc::geteuid() }, 0, "this test needs root; WHARF_SKIP_PRIVILEGED=1 skips it");
        let root = match crate::cgroups::detect() {
            crate::cgroups::Mode::V2 => Path::new("/sys/fs/cgroup"),
            crate::cgroups::Mode::Hybrid => Path::new("/sys/fs/cgroup/unified"),
            crate::cgroups::Mode::V1 => {
                eprintln!("SKIPPED the_kernel_enforces_the_filter: this host has no cgroup v2 mount");
                return;
            }
        };
        let dir = root.join(format!("wharf-devfilter-test-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let probe = |dir: &Path| {
            let script = format!(
                "echo $$ > {}/cgroup.procs || exit 9; cat /dev/null && echo null-ok; \
                 head -c1 /dev/zero >/dev/null && echo zero-read-ok; (echo x > /dev/zero) 2>/dev/null || echo zero-write-denied; \
                 head -c1 /dev/full >/dev/null 2>&1 || echo full-denied",
                dir.display()
            );
            let out = std::process::Command::new("/bin/sh").args(["-c", &script]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect::<Vec<_>>()
        };
        let rules = vec![
            rule(false, None, None, None, ACC_ALL),
            rule(true, Some(DEV_CHAR), Some(1), Some(3), ACC_ALL),
            rule(true, Some(DEV_CHAR), Some(1), Some(5), 2),
        ];
        let r1 = apply(&dir, &rules).map(|_| probe(&dir));
        let r2 = apply(&dir, &[rule(true, None, None, None, ACC_ALL)]).map(|_| probe(&dir));
        let cg: OwnedFd = std::fs::File::open(&dir).unwrap().into();
        let count = attached(&cg).map(|v| v.len());
        drop(cg);
        let _ = std::fs::remove_dir(&dir);
        assert_eq!(r1.unwrap(), ["null-ok", "zero-read-ok", "zero-write-denied", "full-denied"]);
        assert_eq!(r2.unwrap(), ["null-ok", "zero-read-ok"]);
        assert_eq!(count.unwrap(), 1, "apply replaces the filter");
    }
}
