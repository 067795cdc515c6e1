//! `--security-opt seccomp=FILE`: a profile in Docker's format (`archMap`,
//! `includes`/`excludes` by capability and architecture, `name` or `names`)
//! or already an OCI `linux.seccomp`, made into the OCI form for the
//! container's capabilities as Docker does.

use serde_json::{json, Value};

use crate::error::{Error, Result};

fn invalid(msg: String) -> Error {
    Error::InvalidArgument(msg)
}

/// Parses the file's text: a JSON object with a `defaultAction`.
pub(crate) fn from_json(text: &str) -> Result<Value> {
    let v: Value = serde_json::from_str(text).map_err(|e| invalid(format!("decoding seccomp profile failed: {e}")))?;
    if !v["defaultAction"].is_string() {
        return Err(invalid("decoding seccomp profile failed: no defaultAction".into()));
    }
    // Converting now reports a malformed profile before any container exists.
    to_oci(&v, &[])?;
    Ok(v)
}

/// Go's names for this machine (Docker's `arches` filter) and libseccomp's.
fn native_arch() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", "SCMP_ARCH_X86_64"),
        "aarch64" => ("arm64", "SCMP_ARCH_AARCH64"),
        "x86" => ("386", "SCMP_ARCH_X86"),
        "arm" => ("arm", "SCMP_ARCH_ARM"),
        "riscv64" => ("riscv64", "SCMP_ARCH_RISCV64"),
        "s390x" => ("s390x", "SCMP_ARCH_S390X"),
        "powerpc64" => ("ppc64le", "SCMP_ARCH_PPC64LE"),
        other => (other, "SCMP_ARCH_NATIVE"),
    }
}

/// Whether a Docker `includes`/`excludes` filter matches this container.
fn filter_matches(f: &Value, caps: &[String], arch: &str) -> bool {
    let list = |k: &str| f[k].as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>());
    let caps_ok = list("caps").is_none_or(|c| c.iter().all(|c| caps.iter().any(|h| h == c)));
    let arch_ok = list("arches").is_none_or(|a| a.is_empty() || a.contains(&arch));
    caps_ok && arch_ok
}

fn filter_empty(f: &Value) -> bool {
    f.as_object().is_none_or(|o| o.values().all(|v| v.as_array().is_some_and(|a| a.is_empty()) || v.is_null()))
}

/// The profile as OCI `linux.seccomp` for a container with capabilities `caps`.
pub(crate) fn to_oci(p: &Value, caps: &[String]) -> Result<Value> {
    let (go_arch, scmp_arch) = native_arch();
    let mut arches: Vec<Value> = p["architectures"].as_array().cloned().unwrap_or_default();
    for m in p["archMap"].as_array().into_iter().flatten() {
        if m["architecture"] == scmp_arch {
            arches.push(m["architecture"].clone());
            arches.extend(m["subArchitectures"].as_array().cloned().unwrap_or_default());
        }
    }
    let mut syscalls = Vec::new();
    for s in p["syscalls"].as_array().into_iter().flatten() {
        if !filter_matches(&s["includes"], caps, go_arch) {
            continue;
        }
        if !filter_empty(&s["excludes"]) && filter_matches(&s["excludes"], caps, go_arch) {
            continue;
        }
        let mut names: Vec<Value> = s["names"].as_array().cloned().unwrap_or_default();
        if let Some(n) = s["name"].as_str() {
            names.push(json!(n));
        }
        if names.is_empty() {
            return Err(invalid("decoding seccomp profile failed: a syscall rule has no names".into()));
        }
        let mut rule = json!({"names": names, "action": s["action"]});
        for k in ["args", "errnoRet"] {
            if !s[k].is_null() {
                rule[k] = s[k].clone();
            }
        }
        syscalls.push(rule);
    }
    let mut out = json!({"defaultAction": p["defaultAction"], "syscalls": syscalls});
    if !arches.is_empty() {
        out["architectures"] = json!(arches);
    }
    for k in ["defaultErrnoRet", "flags", "listenerPath", "listenerMetadata"] {
        if !p[k].is_null() {
            out[k] = p[k].clone();
        }
    }
    serde_json::from_value::<wharf_runtime::oci_spec::runtime::LinuxSeccomp>(out.clone())
        .map_err(|e| invalid(format!("decoding seccomp profile failed: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_profile_is_converted_for_caps_and_arch() {
        let p = from_json(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
              "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]},
                         {"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]}],
              "syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
                          {"name":"mount","action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
                          {"names":["ptrace"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_SYS_PTRACE"]}}]}"#,
        )
        .unwrap();
        let o = to_oci(&p, &[]).unwrap();
        let names: Vec<String> = o["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()))
            .collect();
        assert_eq!(names, ["read", "write", "ptrace"]);
        assert_eq!(o["defaultErrnoRet"], 1);
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(o["architectures"], json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]));
        }
        let o = to_oci(&p, &["CAP_SYS_ADMIN".into(), "CAP_SYS_PTRACE".into()]).unwrap();
        let n = |i: usize| o["syscalls"][i]["names"][0].as_str().unwrap().to_string();
        assert_eq!((n(1), o["syscalls"].as_array().unwrap().len()), ("mount".into(), 2));
    }

    #[test]
    fn bad_profiles_are_refused() {
        assert!(from_json("{").unwrap_err().to_string().starts_with("decoding seccomp profile failed"));
        assert!(from_json("{}").is_err());
        assert!(from_json(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).is_err());
        assert!(from_json(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_ERRNO"}]}"#).is_err());
        assert!(from_json(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO"}]}"#
        )
        .is_ok());
    }
}
