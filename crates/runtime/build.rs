//! Links the `wharf-runtime` binary lean, because it runs at every container
//! start and its peak RSS is what a host with many containers pays:
//!
//! - Always non-PIE: a PIE binary of this size carries ~12k relative
//!   relocations that the loader applies at every start (~0.5 MiB of pages);
//!   cold functions are kept apart from hot ones (`keep-text-section-prefix`).
//! - In release builds, also static (as runc ships its release binaries): a
//!   dynamic glibc costs the loader, libc's symbol tables (bound at start:
//!   full RELRO) and fault-around over 1.3 MiB of libc.so text it barely
//!   uses — ~0.5 MiB more than crun's peak. Stable cargo cannot give one
//!   binary `-C target-feature=+crt-static` (it would reach proc-macros), so
//!   the link is made static here: `-static`, and linker scripts named
//!   `libc.so`, `libm.so`, `libgcc_s.so` in a dir searched first, pointing at
//!   the static archives. Only the binary is affected; the library, tests
//!   and debug builds link as usual. Without libc.a (or with
//!   `WHARF_RUNTIME_DYNAMIC=1`) the binary stays dynamic, with a warning.
//!
//! libseccomp is linked statically (Debian's libseccomp.a is PIC), found
//! through a dir of its own so no system dir is searched before the above.
use std::path::{Path, PathBuf};

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    let crt_static = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default().contains("crt-static");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    // A crt-static build is static already.
    if target.contains("linux-gnu") && !crt_static {
        println!("cargo:rustc-link-arg-bin=wharf-runtime=-no-pie");
        // Cold functions (.text.unlikely.*) grouped apart: fewer text pages
        // faulted in around the hot ones (~0.1 MiB of peak RSS).
        println!("cargo:rustc-link-arg-bin=wharf-runtime=-Wl,-z,keep-text-section-prefix");
        let release = std::env::var("PROFILE").as_deref() == Ok("release");
        let native = std::env::var("HOST").ok().as_deref() == Some(target.as_str());
        let opt_out = std::env::var("WHARF_RUNTIME_DYNAMIC").as_deref() == Ok("1");
        if release && native && !opt_out {
            match static_libc_dir(&out.join("static-libc")) {
                Ok(dir) => {
                    println!("cargo:rustc-link-arg-bin=wharf-runtime=-L{}", dir.display());
                    println!("cargo:rustc-link-arg-bin=wharf-runtime=-static");
                }
                Err(why) => println!("cargo:warning=wharf-runtime is linked dynamically: {why}"),
            }
        }
    }
    let dir = std::env::var("LIBSECCOMP_LIB_PATH").ok().or_else(libseccomp_dir);
    if let Some(d) = dir {
        let own = out.join("seccomp");
        let _ = std::fs::create_dir_all(&own);
        let link = own.join("libseccomp.a");
        let _ = std::fs::remove_file(&link);
        match std::os::unix::fs::symlink(Path::new(&d).join("libseccomp.a"), &link) {
            Ok(()) => println!("cargo:rustc-link-search=native={}", own.display()),
            Err(_) => println!("cargo:rustc-link-search=native={d}"),
        }
    }
    println!("cargo:rustc-link-lib=static=seccomp");
    println!("cargo:rerun-if-env-changed=LIBSECCOMP_LIB_PATH");
    println!("cargo:rerun-if-env-changed=WHARF_RUNTIME_DYNAMIC");
    println!("cargo:rerun-if-env-changed=CC");
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

/// A dir whose `libc.so`, `libm.so` and `libgcc_s.so` are linker scripts
/// naming the static archives, so the `-lc -lm -lgcc_s` rustc passes resolve
/// to them.
fn static_libc_dir(dir: &Path) -> Result<PathBuf, String> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let find = |name: &str| -> Result<String, String> {
        let o = std::process::Command::new(&cc)
            .arg(format!("-print-file-name={name}"))
            .output()
            .map_err(|e| format!("{cc}: {e}"))?;
        let p = String::from_utf8_lossy(&o.stdout).trim().to_string();
        // cc prints the bare name when it has no such file.
        if Path::new(&p).is_absolute() && Path::new(&p).exists() {
            Ok(p)
        } else {
            Err(format!("no {name} (install libc6-dev)"))
        }
    };
    let (c, m, gcc, eh) = (find("libc.a")?, find("libm.a")?, find("libgcc.a")?, find("libgcc_eh.a")?);
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    for (name, body) in [
        ("libc.so", format!("GROUP ( {c} {gcc} {eh} )\n")),
        ("libm.so", format!("GROUP ( {m} )\n")),
        ("libgcc_s.so", format!("GROUP ( {eh} {gcc} )\n")),
    ] {
        std::fs::write(dir.join(name), body).map_err(|e| format!("write {name}: {e}"))?;
    }
    Ok(dir.to_path_buf())
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
