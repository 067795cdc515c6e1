//! Links the `wharf-runtime` binary as a non-PIE executable: a PIE binary of
//! this size carries ~12k relative relocations that the dynamic loader must
//! apply at every start, touching ~0.5 MiB of pages — a tenth of a container
//! start's peak RSS. The library is unaffected.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    let crt_static = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default().contains("crt-static");
    // A crt-static build is a static-pie: nothing to relocate against a libc.
    if target.contains("linux-gnu") && !crt_static {
        println!("cargo:rustc-link-arg-bin=wharf-runtime=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
