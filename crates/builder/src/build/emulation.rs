//! RUN for a platform the host cannot execute: the kernel hands the
//! foreign binaries to QEMU user emulation registered in binfmt_misc
//! (Debian's `qemu-user-static`). Nothing is set up here: the registration
//! is the host administrator's (as with BuildKit and buildah); we only check
//! that it exists and has the `F` flag (fix-binary: the interpreter is opened
//! at registration, so it works inside the container's mount namespace,
//! where its path does not exist), and say how to make it when it does not.

use super::error::{BuildError, BuildResult};
use std::path::Path;
use wharf_image::Platform;

pub const BINFMT_MISC: &str = "/proc/sys/fs/binfmt_misc";

/// QEMU's name for an OCI architecture (`qemu-<name>`).
pub fn qemu_arch(p: &Platform) -> Option<&'static str> {
    Some(match p.arch.as_str() {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "arm" => "arm",
        "386" => "i386",
        "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "mips64le" => "mips64el",
        "loong64" => "loongarch64",
        _ => return None,
    })
}

/// Whether the host runs `p`'s binaries itself.
pub fn native(p: &Platform) -> bool {
    let host = Platform::host();
    p.os == "linux" && (p.arch == host.arch || (host.arch == "amd64" && p.arch == "386"))
}

/// Checks that RUN can execute `p`'s binaries here; a clear error if not.
pub fn check(p: &Platform) -> BuildResult<()> {
    check_in(Path::new(BINFMT_MISC), p)
}

pub(crate) fn check_in(dir: &Path, p: &Platform) -> BuildResult<()> {
    if native(p) {
        return Ok(());
    }
    let Some(q) = qemu_arch(p) else {
        return Err(BuildError::Invalid(format!(
            "RUN for {p}: no QEMU emulation is known for architecture {}",
            p.arch
        )));
    };
    let how = format!(
        "install Debian's qemu-user-static and register it with the F flag: \
         mount -t binfmt_misc binfmt_misc {BINFMT_MISC} (if not mounted), then \
         cat /usr/lib/binfmt.d/qemu-{q}.conf > {BINFMT_MISC}/register"
    );
    if !dir.join("register").exists() {
        return Err(BuildError::Invalid(format!(
            "RUN for {p} needs QEMU user emulation, but binfmt_misc is not mounted at {}: {how}",
            dir.display()
        )));
    }
    let entry = dir.join(format!("qemu-{q}"));
    let text = match std::fs::read_to_string(&entry) {
        Ok(t) => t,
        Err(_) => {
            return Err(BuildError::Invalid(format!(
                "RUN for {p} needs QEMU user emulation: no binfmt_misc handler qemu-{q} is registered: {how}"
            )))
        }
    };
    let enabled = text.lines().next() == Some("enabled")
        && std::fs::read_to_string(dir.join("status")).map_or(true, |s| s.trim() == "enabled");
    let flags = text.lines().find_map(|l| l.strip_prefix("flags: ")).unwrap_or("");
    if !enabled {
        return Err(BuildError::Invalid(format!(
            "RUN for {p}: the binfmt_misc handler {} is disabled (echo 1 > {})",
            entry.display(),
            entry.display()
        )));
    }
    if !flags.contains('F') {
        return Err(BuildError::Invalid(format!(
            "RUN for {p}: the binfmt_misc handler {} has flags {flags:?}, without F (fix-binary) its \
             interpreter cannot be found inside a container: unregister it (echo -1 > {}) and {how}",
            entry.display(),
            entry.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_states() {
        let host = Platform::host();
        let p = Platform::parse(if host.arch == "arm64" { "linux/amd64" } else { "linux/arm64" }).unwrap();
        let d = tempfile::tempdir().unwrap();
        assert!(check_in(d.path(), &host).is_ok(), "the host's platform needs nothing");
        let e = check_in(d.path(), &p).unwrap_err().to_string();
        assert!(e.contains("not mounted") && e.contains("qemu-user-static"), "{e}");
        std::fs::write(d.path().join("register"), "").unwrap();
        let q = qemu_arch(&p).unwrap();
        assert!(check_in(d.path(), &p).unwrap_err().to_string().contains(&format!("no binfmt_misc handler qemu-{q}")));
        std::fs::write(d.path().join(format!("qemu-{q}")), "enabled\ninterpreter /x\nflags: OC\n").unwrap();
        assert!(check_in(d.path(), &p).unwrap_err().to_string().contains("without F"));
        std::fs::write(d.path().join(format!("qemu-{q}")), "enabled\ninterpreter /x\nflags: POCF\n").unwrap();
        check_in(d.path(), &p).unwrap();
        assert!(check_in(d.path(), &Platform::parse("linux/sparc").unwrap()).is_err());
    }
}
