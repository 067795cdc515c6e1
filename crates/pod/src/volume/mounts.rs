//! The one parser of `docker run`'s mount flags: `-v`, `--mount` and
//! `--tmpfs`, with Docker's syntax, defaults and messages.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A host path; `create` makes a missing one (`-v` does, `--mount` does not).
    Bind { source: PathBuf, create: bool },
    /// A named volume (created on first use), or an anonymous one (`name: None`).
    Volume { name: Option<String>, nocopy: bool, options: BTreeMap<String, String>, labels: BTreeMap<String, String> },
    /// A fresh tmpfs; `options` are mount(8) options (size=, mode=, …).
    Tmpfs { options: Vec<String> },
}

/// One mount of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub kind: MountKind,
    /// Absolute path inside the container, cleaned.
    pub target: String,
    pub readonly: bool,
    /// `rprivate` (Docker's default), `private`, `rshared`, `shared`, `rslave`, `slave`.
    pub propagation: Option<String>,
}

const PROPAGATIONS: [&str; 6] = ["private", "rprivate", "shared", "rshared", "slave", "rslave"];

fn invalid(s: impl Into<String>) -> Error {
    Error::InvalidArgument(s.into())
}

/// `/a//b/../c/` → `/a/c`; None unless absolute.
pub(crate) fn clean_target(p: &str) -> Option<String> {
    if !p.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

fn target(kind: &str, t: &str) -> Result<String> {
    if t.is_empty() {
        return Err(invalid(format!("invalid mount config for type {kind:?}: field Target must not be empty")));
    }
    let c = clean_target(t).ok_or_else(|| {
        invalid(format!(
            "invalid mount config for type {kind:?}: invalid mount path: '{t}' mount path must be absolute"
        ))
    })?;
    if c == "/" {
        return Err(invalid(format!(
            "invalid mount config for type {kind:?}: invalid specification: destination can't be '/'"
        )));
    }
    Ok(c)
}

/// `-v SRC:DST[:OPTS]`, `-v NAME:DST[:OPTS]`, `-v DST` (anonymous).
pub fn parse_volume_flag(v: &str) -> Result<MountSpec> {
    let bad = || invalid(format!("invalid volume specification: '{v}'"));
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(bad()),
    };
    if dst.is_empty() || (parts.len() > 1 && src.is_empty()) {
        return Err(bad());
    }
    // A relative host path (`./dir`, `../dir`, `.`), as Docker's CLI since 23.0.
    let relative = src == "." || src == ".." || src.starts_with("./") || src.starts_with("../");
    let abs_src;
    let src = if relative {
        abs_src = std::path::absolute(src).map_err(|e| Error::io(format!("-v {v}"), e))?;
        abs_src.to_str().ok_or_else(bad)?
    } else {
        src
    };
    let kind_name = if src.starts_with('/') { "bind" } else { "volume" };
    let target = target(kind_name, dst)?;
    let (mut readonly, mut propagation, mut nocopy) = (false, None, false);
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => readonly = true,
            "rw" => readonly = false,
            // SELinux relabelling: nothing to do where SELinux is off (as Docker there).
            "z" | "Z" => {}
            // Docker Desktop's file-sharing hints: no-ops on Linux.
            "consistent" | "cached" | "delegated" => {}
            "nocopy" if kind_name == "volume" => nocopy = true,
            p if PROPAGATIONS.contains(&p) && kind_name == "bind" => propagation = Some(p.to_string()),
            _ => return Err(invalid(format!("invalid mode: {m} in volume specification '{v}'"))),
        }
    }
    let kind = if src.starts_with('/') {
        MountKind::Bind { source: PathBuf::from(src), create: true }
    } else {
        if !src.is_empty() && !super::valid_name(src) {
            return Err(super::name_error(src));
        }
        MountKind::Volume {
            name: (!src.is_empty()).then(|| src.to_string()),
            nocopy,
            options: BTreeMap::new(),
            labels: BTreeMap::new(),
        }
    };
    Ok(MountSpec { kind, target, readonly, propagation })
}

/// `--tmpfs PATH[:OPTIONS]`.
pub fn parse_tmpfs_flag(t: &str) -> Result<MountSpec> {
    let (dst, extra) = t.split_once(':').unwrap_or((t, ""));
    let target = clean_target(dst)
        .filter(|c| c != "/")
        .ok_or_else(|| invalid(format!("invalid tmpfs specification {t:?}: the path must be absolute")))?;
    let options = extra.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect();
    Ok(MountSpec { kind: MountKind::Tmpfs { options }, target, readonly: false, propagation: None })
}

fn boolean(key: &str, v: Option<&str>) -> Result<bool> {
    match v {
        None | Some("1") | Some("true") => Ok(true),
        Some("0") | Some("false") => Ok(false),
        Some(x) => Err(invalid(format!("invalid value for {key}: {x}"))),
    }
}

/// The fields of one `--mount`, before they are checked against its type.
#[derive(Default)]
struct Fields {
    kind: Option<String>,
    source: Option<String>,
    target: Option<String>,
    readonly: bool,
    propagation: Option<String>,
    nocopy: bool,
    volume_opts: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    tmpfs: Vec<String>,
    /// Keys that only fit one type, to refuse them on the others.
    type_only: Vec<(&'static str, String)>,
}

fn fields(m: &str) -> Result<Fields> {
    let mut f = Fields::default();
    for field in m.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v)),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need =
            |what: &str| v.ok_or_else(|| invalid(format!("invalid field '{field}' must be a key=value pair{what}")));
        match k.as_str() {
            "type" => f.kind = Some(need("")?.to_string()),
            "source" | "src" => f.source = Some(need("")?.to_string()),
            "target" | "destination" | "dst" => f.target = Some(need("")?.to_string()),
            "readonly" | "ro" => f.readonly = boolean(&k, v)?,
            "bind-propagation" => {
                let p = need("")?;
                if !PROPAGATIONS.contains(&p) {
                    return Err(invalid(format!("invalid bind-propagation: {p:?}")));
                }
                f.propagation = Some(p.to_string());
                f.type_only.push(("bind", k));
            }
            "volume-nocopy" => {
                f.nocopy = boolean(&k, v)?;
                f.type_only.push(("volume", k));
            }
            "volume-driver" if v == Some("local") => f.type_only.push(("volume", k)),
            "volume-driver" => {
                return Err(invalid(format!("volume driver {:?} is not available: only local", v.unwrap_or(""))))
            }
            "volume-opt" | "volume-label" => {
                let (ok, ov) = need("")?
                    .split_once('=')
                    .ok_or_else(|| invalid(format!("invalid field '{field}': {k} must be key=value")))?;
                let map = if k == "volume-opt" { &mut f.volume_opts } else { &mut f.labels };
                map.insert(ok.to_string(), ov.to_string());
                f.type_only.push(("volume", k));
            }
            "tmpfs-size" => {
                let b = crate::spec::parse_bytes(need("")?)?;
                f.tmpfs.push(format!("size={b}"));
                f.type_only.push(("tmpfs", k));
            }
            "tmpfs-mode" => {
                let mode = need("")?;
                u32::from_str_radix(mode, 8)
                    .map_err(|_| invalid(format!("invalid tmpfs-mode {mode:?}: use octal, e.g. 1777")))?;
                f.tmpfs.push(format!("mode={mode}"));
                f.type_only.push(("tmpfs", k));
            }
            "consistency" => {}
            _ if v.is_none() => return Err(invalid(format!("invalid field '{field}' must be a key=value pair"))),
            _ => return Err(invalid(format!("unexpected key '{k}' in '{field}'"))),
        }
    }
    Ok(f)
}

/// `--mount type=bind|volume|tmpfs,source=…,target=…,…`.
pub fn parse_mount_flag(m: &str) -> Result<MountSpec> {
    let f = fields(m)?;
    let kind = f.kind.as_deref().unwrap_or("volume");
    let cfg = |msg: &str| invalid(format!("invalid mount config for type {kind:?}: {msg}"));
    if let Some((_, k)) = f.type_only.iter().find(|(t, _)| *t != kind) {
        return Err(cfg(&format!("{k} is not valid for this mount type")));
    }
    let target = target(kind, f.target.as_deref().unwrap_or(""))?;
    let source = f.source.filter(|s| !s.is_empty());
    let kind = match kind {
        "bind" => {
            let s = source.ok_or_else(|| cfg("field Source must not be empty"))?;
            if !s.starts_with('/') {
                return Err(cfg(&format!("invalid mount path: '{s}' mount path must be absolute")));
            }
            if !std::path::Path::new(&s).exists() {
                return Err(cfg(&format!("bind source path does not exist: {s}")));
            }
            MountKind::Bind { source: s.into(), create: false }
        }
        "volume" => {
            if let Some(s) = &source {
                if !super::valid_name(s) {
                    return Err(super::name_error(s));
                }
            }
            super::usage::check_options(source.as_deref().unwrap_or("anonymous volume"), &f.volume_opts)?;
            MountKind::Volume { name: source, nocopy: f.nocopy, options: f.volume_opts, labels: f.labels }
        }
        "tmpfs" => {
            if source.is_some() {
                return Err(cfg("field Source must not be specified"));
            }
            MountKind::Tmpfs { options: f.tmpfs }
        }
        other => return Err(invalid(format!("invalid mount config: mount type unknown: {other:?}"))),
    };
    Ok(MountSpec { kind, target, readonly: f.readonly, propagation: f.propagation })
}

/// `docker run`'s `-v`, `--mount` and `--tmpfs` values, all parsed before
/// anything is made.
pub fn parse_run_flags(volumes: &[String], mounts: &[String], tmpfs: &[String]) -> Result<Vec<MountSpec>> {
    let mut out = Vec::new();
    for v in volumes {
        out.push(parse_volume_flag(v)?);
    }
    for m in mounts {
        out.push(
            parse_mount_flag(m).map_err(|e| invalid(format!("invalid argument {m:?} for \"--mount\" flag: {e}")))?,
        );
    }
    for t in tmpfs {
        out.push(parse_tmpfs_flag(t)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flag_forms() {
        let m = parse_volume_flag("data:/srv/:ro,nocopy").unwrap();
        assert_eq!(m.target, "/srv");
        assert!(m.readonly);
        assert!(matches!(m.kind, MountKind::Volume { name: Some(ref n), nocopy: true, .. } if n == "data"));
        let m = parse_volume_flag("/tmp:/host:rshared").unwrap();
        assert_eq!(m.propagation.as_deref(), Some("rshared"));
        assert!(matches!(m.kind, MountKind::Bind { create: true, .. }));
        assert!(matches!(parse_volume_flag("/anon").unwrap().kind, MountKind::Volume { name: None, .. }));
        let m = parse_volume_flag("./here:/h").unwrap();
        let here = std::env::current_dir().unwrap().join("here");
        assert!(matches!(m.kind, MountKind::Bind { ref source, .. } if *source == here), "{m:?}");
        for bad in ["a:b:c:d", "x:rel", "data:/d:bogus", "/tmp:/d:nocopy", "a/b:/d", "data:/", ":/d"] {
            assert!(parse_volume_flag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mount_flag_forms() {
        let m =
            parse_mount_flag("type=volume,src=v1,dst=/v,volume-nocopy,volume-opt=type=tmpfs,volume-opt=device=tmpfs")
                .unwrap();
        assert!(matches!(m.kind, MountKind::Volume { nocopy: true, ref options, .. } if options["type"] == "tmpfs"));
        let m = parse_mount_flag("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap();
        assert_eq!(m.kind, MountKind::Tmpfs { options: vec!["size=1048576".into(), "mode=1770".into()] });
        let m = parse_mount_flag("type=bind,source=/tmp,target=/h,readonly,bind-propagation=rslave").unwrap();
        assert!(m.readonly);
        let e = parse_mount_flag("type=bind,source=/no/such/dir,target=/h").unwrap_err().to_string();
        assert!(e.contains("bind source path does not exist"), "{e}");
        for bad in [
            "type=bind,target=/x",
            "type=tmpfs,source=x,target=/t",
            "type=volume,target=/t,tmpfs-size=1m",
            "type=foo,target=/t",
            "type=volume,target=rel",
            "type=volume,target=/t,bogus=1",
            "type=volume,target=/t,bogus",
            "type=volume,target=/t,volume-opt=nokv",
            "type=volume",
        ] {
            assert!(parse_mount_flag(bad).is_err(), "{bad}");
        }
    }
}
