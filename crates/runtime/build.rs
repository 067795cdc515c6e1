//! Links the `wharf-runtime` binary as a non-PIE executable: a PIE binary of
//! this size carries ~12k relative relocations that the dynamic loader must
//! apply at every start, touching ~0.5 MiB of pages — a tenth of a container
//! start's peak RSS. The library is unaffected.
//!
//! libseccomp is linked statically (Debian's libseccomp.a is PIC): no extra
//! shared object to map and relocate at every container start.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    let crt_static = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default().contains("crt-static");
    // A crt-static build is a static-pie: nothing to relocate against a libc.
    if target.contains("linux-gnu") && !crt_static {
        println!("cargo:rustc-link-arg-bin=wharf-runtime=-no-pie");
    }
    let dir = std::env::var("LIBSECCOMP_LIB_PATH").ok().or_else(libseccomp_dir);
    if let Some(d) = dir {
        println!("cargo:rustc-link-search=native={d}");
    }
    println!("cargo:rustc-link-lib=static=seccomp");
    println!("cargo:rerun-if-env-changed=LIBSECCOMP_LIB_PATH");
    println!("cargo:rerun-if-changed=build.rs");
    commit();
}

/// The `commit:` line of `--version`, as runc and crun print: the git
/// revision the binary was built from (`WHARF_COMMIT` overrides it).
fn commit() {
    println!("cargo:rerun-if-env-changed=WHARF_COMMIT");
    let git = |args: &[&str]| {
        let o = std::process::Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
        Some(String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = std::env::var("WHARF_COMMIT").ok().or_else(|| git(&["rev-parse", "HEAD"]));
    // Rebuild the line when the checked-out commit moves.
    for p in [git(&["rev-parse", "--git-path", "HEAD"]), git(&["rev-parse", "--symbolic-full-name", "HEAD"])] {
        let Some(p) = p else { continue };
        let path = if p.starts_with("refs/") { git(&["rev-parse", "--git-path", &p]) } else { Some(p) };
        if let Some(path) = path.filter(|p| std::path::Path::new(p).exists()) {
            let abs = std::fs::canonicalize(&path).unwrap_or_else(|_| path.into());
            println!("cargo:rerun-if-changed={}", abs.display());
        }
    }
    println!("cargo:rustc-env=WHARF_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
}

/// Where libseccomp.a lives: pkg-config, else Debian's multiarch directory.
fn libseccomp_dir() -> Option<String> {
    let out = std::process::Command::new("pkg-config").args(["--variable=libdir", "libseccomp"]).output().ok();
    if let Some(o) = out.filter(|o| o.status.success()) {
        let d = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if !d.is_empty() {
            return Some(d);
        }
    }
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let d = format!("/usr/lib/{arch}-linux-gnu");
    std::path::Path::new(&d).join("libseccomp.a").exists().then_some(d)
}
