//! RUN and its `--mount` / `--network` options.

use super::flags::{Flags, Kind};
use super::{command, Command};
use crate::error::Problem;
use crate::parser::{Heredoc, Node};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub command: Command,
    /// Bodies of the heredocs the command line opens, in order.
    pub heredocs: Vec<Heredoc>,
    pub mounts: Vec<Mount>,
    pub network: Network,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// No `--network`: the builder's default.
    Default,
    None,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    /// An ssh agent's socket (`--ssh`).
    Ssh,
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// One `--mount=...`. Until `Step::expand`, an option written with `$`
/// holds its text as written (strings) or its default (typed options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: MountType,
    pub target: Option<String>,
    pub source: Option<String>,
    /// A stage name or index, or an image, for bind and cache mounts.
    pub from: Option<String>,
    pub readonly: bool,
    pub id: Option<String>,
    pub sharing: Sharing,
    pub required: bool,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// tmpfs size in bytes.
    pub size: Option<u64>,
    /// secret: also (or only) expose it as this environment variable.
    pub env: Option<String>,
    /// The option text as written, re-parsed after expansion.
    pub(crate) raw: String,
}

pub(crate) type Expander<'a> = &'a dyn Fn(&str) -> Result<String, Problem>;

pub(crate) fn parse(node: &Node) -> Result<Run, Problem> {
    let flags = Flags::parse("run", &node.flags, &[("mount", Kind::Repeated), ("network", Kind::Value)])?;
    let mounts = flags.values("mount").iter().map(|m| parse_mount(m, None)).collect::<Result<_, _>>()?;
    let network = match flags.value("network").as_deref() {
        None | Some("default") => Network::Default,
        Some("none") => Network::None,
        Some("host") => Network::Host,
        Some(other) => return Err(Problem::BadNetwork(other.to_string())),
    };
    Ok(Run { command: command("run", &node.args)?, heredocs: node.heredocs.clone(), mounts, network })
}

/// Splits `a=b,"c=d,e",f` as CSV, as BuildKit reads mount options.
fn csv_fields(text: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            _ => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

fn mount_type(fields: &[String], bad: &dyn Fn(String) -> Problem) -> Result<MountType, Problem> {
    let ty = fields.iter().rev().find_map(|f| f.split_once('=').filter(|(k, _)| k.eq_ignore_ascii_case("type")));
    match ty.map(|(_, v)| v.to_ascii_lowercase()).as_deref() {
        None | Some("bind") => Ok(MountType::Bind),
        Some("cache") => Ok(MountType::Cache),
        Some("tmpfs") => Ok(MountType::Tmpfs),
        Some("secret") => Ok(MountType::Secret),
        Some("ssh") => Ok(MountType::Ssh),
        Some(other) => Err(bad(format!("unknown type {other:?}: expected bind, cache, tmpfs, secret or ssh"))),
    }
}

/// Parses one `--mount` value. Without an expander, options holding `$`
/// are kept unchecked for `Step::expand`.
pub(crate) fn parse_mount(raw: &str, expand: Option<Expander<'_>>) -> Result<Mount, Problem> {
    let bad = |reason: String| Problem::BadMount { mount: raw.to_string(), reason };
    let fields = csv_fields(raw);
    let kind = mount_type(&fields, &bad)?;
    let mut m = Mount {
        kind,
        target: None,
        source: None,
        from: None,
        readonly: matches!(kind, MountType::Bind | MountType::Secret),
        id: None,
        sharing: Sharing::Shared,
        required: false,
        mode: None,
        uid: None,
        gid: None,
        size: None,
        env: None,
        raw: raw.to_string(),
    };
    for field in fields.iter().filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
            None => (field.to_ascii_lowercase(), None),
        };
        let value = match (value, expand) {
            (Some(v), _) if key == "from" && v.contains('$') => {
                return Err(bad("from= does not support variables: define an alias stage instead".into()))
            }
            (Some(v), Some(f)) if key != "from" => Some(f(&v)?),
            (v, _) => v,
        };
        set_option(&mut m, &key, value, &bad)?;
    }
    check_mount(&m, &bad)?;
    Ok(m)
}

fn set_option(m: &mut Mount, key: &str, value: Option<String>, bad: &dyn Fn(String) -> Problem) -> Result<(), Problem> {
    let deferred = value.as_deref().is_some_and(|v| v.contains('$'));
    let number = |radix: u32| -> Result<Option<u32>, Problem> {
        let v = value.as_deref().unwrap_or_default();
        if deferred {
            return Ok(None);
        }
        u32::from_str_radix(v, radix).map(Some).map_err(|_| bad(format!("invalid {key}={v}")))
    };
    let flag = |v: Option<&str>| match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(other) => Err(bad(format!("{key} expects true or false, not {other:?}"))),
    };
    match key {
        "type" => {}
        "ro" | "readonly" => m.readonly = flag(value.as_deref())?,
        "rw" | "readwrite" => m.readonly = !flag(value.as_deref())?,
        "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => m.required = flag(value.as_deref())?,
        "required" => return Err(bad("required= is only for secret and ssh mounts".into())),
        _ if value.is_none() => return Err(bad(format!("option {key:?} must be key=value"))),
        "target" | "dst" | "destination" => m.target = value,
        "source" | "src" => m.source = value,
        "from" => m.from = value,
        "id" => m.id = value,
        "env" => m.env = value,
        // Typed options holding variables are checked after expansion.
        "sharing" | "size" if deferred => {}
        "sharing" => m.sharing = sharing(value.as_deref().unwrap_or_default(), bad)?,
        "mode" => m.mode = number(8)?,
        "uid" => m.uid = number(10)?,
        "gid" => m.gid = number(10)?,
        "size" => m.size = Some(size(value.as_deref().unwrap_or_default()).ok_or_else(|| bad("invalid size".into()))?),
        _ => return Err(bad(format!("unknown option {key:?}"))),
    }
    Ok(())
}

fn sharing(v: &str, bad: &dyn Fn(String) -> Problem) -> Result<Sharing, Problem> {
    match v.to_ascii_lowercase().as_str() {
        "shared" => Ok(Sharing::Shared),
        "private" => Ok(Sharing::Private),
        "locked" => Ok(Sharing::Locked),
        _ => Err(bad(format!("unknown sharing {v:?}: expected shared, private or locked"))),
    }
}

/// `64m`, `1g`, `512k`, `1048576`, as Docker's RAMInBytes reads them.
fn size(v: &str) -> Option<u64> {
    let lower = v.to_ascii_lowercase();
    let t = lower.strip_suffix('b').unwrap_or(&lower);
    let (num, scale) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1u64 << 10),
        'm' => (&t[..t.len() - 1], 1 << 20),
        'g' => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(scale)
}

/// Option combinations BuildKit rejects.
fn check_mount(m: &Mount, bad: &dyn Fn(String) -> Problem) -> Result<(), Problem> {
    let file_info = matches!(m.kind, MountType::Secret | MountType::Cache | MountType::Ssh);
    let has = |o: &Option<String>| o.is_some();
    let written =
        |key: &str| csv_fields(&m.raw).iter().any(|f| f.split('=').next().is_some_and(|k| k.eq_ignore_ascii_case(key)));
    for key in ["mode", "uid", "gid"] {
        if written(key) && !file_info {
            return Err(bad(format!("{key}= is only for cache, secret and ssh mounts")));
        }
    }
    if written("sharing") && m.kind != MountType::Cache {
        return Err(bad("sharing= is only for cache mounts".into()));
    }
    if written("size") && m.kind != MountType::Tmpfs {
        return Err(bad("size= is only for tmpfs mounts".into()));
    }
    match m.kind {
        MountType::Secret if has(&m.from) => Err(bad("a secret mount can not have from=".into())),
        MountType::Secret if !has(&m.id) && !has(&m.target) && !has(&m.env) => {
            Err(bad("a secret mount needs id= or target=".into()))
        }
        MountType::Secret => Ok(()),
        MountType::Ssh if has(&m.from) || has(&m.source) => Err(bad("an ssh mount has no source or from=".into())),
        _ if has(&m.env) => Err(bad("env= is only for secret mounts".into())),
        // BuildKit's default target: /run/buildkit/ssh_agent.N.
        MountType::Ssh => Ok(()),
        MountType::Tmpfs if has(&m.from) || has(&m.source) => Err(bad("a tmpfs mount has no source or from=".into())),
        _ if !has(&m.target) => Err(bad("missing target=: where to mount it in the container".into())),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(raw: &str) -> String {
        parse_mount(raw, None).unwrap_err().to_string()
    }

    #[test]
    fn cache_mount_with_options() {
        let m = parse_mount("type=cache,target=/root/.cache,id=go,sharing=locked,mode=0755,uid=1000", None).unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.target.as_deref(), Some("/root/.cache"));
        assert_eq!((m.sharing, m.mode, m.uid, m.readonly), (Sharing::Locked, Some(0o755), Some(1000), false));
    }

    #[test]
    fn ssh_mount_with_options() {
        let m = parse_mount("type=ssh", None).unwrap();
        assert_eq!((m.kind, m.id.as_deref(), m.target.as_deref(), m.required), (MountType::Ssh, None, None, false));
        let m = parse_mount("type=ssh,id=git,target=/s.sock,required=true,mode=0666,uid=1,gid=2", None).unwrap();
        assert_eq!((m.id.as_deref(), m.target.as_deref(), m.required), (Some("git"), Some("/s.sock"), true));
        assert_eq!((m.mode, m.uid, m.gid), (Some(0o666), Some(1), Some(2)));
    }

    #[test]
    fn bind_defaults_readonly() {
        let m = parse_mount("target=/src,from=build,source=/out", None).unwrap();
        assert_eq!((m.kind, m.readonly), (MountType::Bind, true));
        assert!(!parse_mount("type=bind,target=/x,rw", None).unwrap().readonly);
    }

    #[test]
    fn rejects_bad_options() {
        assert!(err("type=nfs,target=/x").contains("unknown type \"nfs\""));
        assert!(err("type=ssh,from=x").contains("no source or from="));
        assert!(err("type=ssh,env=X").contains("only for secret"));
        assert!(err("type=cache").contains("missing target="));
        assert!(err("type=bind,target=/x,sharing=locked").contains("only for cache"));
        assert!(err("type=cache,target=/x,sharing=everyone").contains("unknown sharing"));
        assert!(err("type=cache,target=/x,mode=999").contains("invalid mode=999"));
        assert!(err("type=secret").contains("needs id="));
        assert!(err("type=tmpfs,target=/x,foo=bar").contains("unknown option \"foo\""));
        assert!(err("type=bind,target=/x,from=$STAGE").contains("does not support variables"));
        assert!(err("type=cache,target=/x,required").contains("only for secret and ssh"));
    }

    #[test]
    fn sizes_and_csv() {
        assert_eq!(size("64m"), Some(64 << 20));
        assert_eq!(size("1GB"), Some(1 << 30));
        assert_eq!(size("x"), None);
        assert_eq!(csv_fields(r#"a=b,"c=d,e",f"#), vec!["a=b", "c=d,e", "f"]);
    }
}
