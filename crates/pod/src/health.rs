//! Health checks, as Docker's: the image's `HEALTHCHECK` merged with
//! `run --health-*`, resolved once at `create` and kept in the record; the
//! monitor runs the probes and writes `<container dir>/health.json`
//! (Docker's `State.Health`), which `ps` and `inspect` read.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

/// Docker's defaults for a zero duration or retry count.
pub const DEFAULT_INTERVAL_NS: u64 = 30_000_000_000;
pub const DEFAULT_TIMEOUT_NS: u64 = 30_000_000_000;
pub const DEFAULT_START_INTERVAL_NS: u64 = 5_000_000_000;
pub const DEFAULT_RETRIES: u32 = 3;
/// The monitor's file, Docker's `State.Health` shape.
pub const HEALTH_FILE: &str = "health.json";

/// `run --health-cmd …`, as given (durations in Go's syntax: `1m30s`, `500ms`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthOptions {
    /// `--health-cmd`: run with `/bin/sh -c` in the container.
    pub cmd: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<i64>,
    /// `--no-healthcheck`: disables the image's check.
    pub disable: bool,
}

/// A health check in the image config's shape (durations in nanoseconds;
/// zero means Docker's default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Healthcheck {
    /// `["CMD", argv…]`, `["CMD-SHELL", "command"]`, `["NONE"]`, or empty (inherit).
    pub test: Vec<String>,
    pub interval: u64,
    pub timeout: u64,
    pub start_period: u64,
    pub start_interval: u64,
    pub retries: u32,
}

impl Healthcheck {
    pub fn interval_ns(&self) -> u64 {
        or(self.interval, DEFAULT_INTERVAL_NS)
    }
    pub fn timeout_ns(&self) -> u64 {
        or(self.timeout, DEFAULT_TIMEOUT_NS)
    }
    pub fn start_interval_ns(&self) -> u64 {
        or(self.start_interval, DEFAULT_START_INTERVAL_NS)
    }
    pub fn retries_or_default(&self) -> u32 {
        if self.retries == 0 {
            DEFAULT_RETRIES
        } else {
            self.retries
        }
    }
}

fn or(v: u64, default: u64) -> u64 {
    if v == 0 {
        default
    } else {
        v
    }
}

/// Go's `time.ParseDuration` for what health flags take: `1h2m3.5s`,
/// `300ms`, `0`; nanoseconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    if text == "0" {
        return Some(0);
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let number: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_end..];
    }
    (total < u64::MAX as f64).then_some(total.round() as u64)
}

fn flag_duration(flag: &str, v: &Option<String>) -> Result<u64> {
    let Some(text) = v else { return Ok(0) };
    let ns = parse_duration(text).ok_or_else(|| {
        Error::InvalidArgument(format!("invalid argument \"{text}\" for \"--{flag}\" flag: invalid duration"))
    })?;
    if ns != 0 && ns < 1_000_000 {
        return Err(Error::InvalidArgument(format!("--{flag} cannot be less than 1ms")));
    }
    Ok(ns)
}

impl HealthOptions {
    fn any_setting(&self) -> bool {
        self.cmd.as_ref().is_some_and(|c| !c.is_empty())
            || self.interval.is_some()
            || self.timeout.is_some()
            || self.start_period.is_some()
            || self.start_interval.is_some()
            || self.retries.is_some()
    }

    /// The flags as a (partial) health check; `None` when none was given.
    pub fn to_healthcheck(&self) -> Result<Option<Healthcheck>> {
        if self.disable {
            if self.any_setting() {
                return Err(Error::InvalidArgument("--no-healthcheck conflicts with --health-* options".into()));
            }
            return Ok(Some(Healthcheck { test: vec!["NONE".into()], ..Default::default() }));
        }
        if !self.any_setting() {
            return Ok(None);
        }
        let retries = match self.retries {
            Some(r) if r < 0 => return Err(Error::InvalidArgument("--health-retries cannot be negative".into())),
            Some(r) => u32::try_from(r).map_err(|_| Error::InvalidArgument("--health-retries is too large".into()))?,
            None => 0,
        };
        Ok(Some(Healthcheck {
            test: match &self.cmd {
                // Docker: an empty command keeps the image's.
                Some(c) if !c.is_empty() => vec!["CMD-SHELL".to_string(), c.clone()],
                _ => Vec::new(),
            },
            interval: flag_duration("health-interval", &self.interval)?,
            timeout: flag_duration("health-timeout", &self.timeout)?,
            start_period: flag_duration("health-start-period", &self.start_period)?,
            start_interval: flag_duration("health-start-interval", &self.start_interval)?,
            retries,
        }))
    }
}

/// The `Healthcheck` of `img`'s config, read from the blob itself: the OCI
/// config model has no such field.
pub(crate) fn of_image(store: &wharf_image::Store, img: &wharf_image::Image) -> Result<Option<Healthcheck>> {
    let bytes = store.blobs().read(img.id(), 16 << 20)?;
    let raw: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::InvalidArgument(format!("image config {}: {e}", img.id())))?;
    from_image_config(&raw)
}

/// The image config's `Healthcheck` (raw config blob JSON: the OCI model drops it).
pub fn from_image_config(raw: &Value) -> Result<Option<Healthcheck>> {
    match raw.get("config").and_then(|c| c.get("Healthcheck")) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| Error::InvalidArgument(format!("the image's Healthcheck: {e}"))),
    }
}

/// Docker's merge: the flags win field by field, the image fills what they
/// leave zero; `None` when there is no check or it is `NONE`.
pub fn resolve(image: Option<Healthcheck>, flags: Option<Healthcheck>) -> Result<Option<Healthcheck>> {
    let merged = match (image, flags) {
        (None, f) => f,
        (i, None) => i,
        (Some(i), Some(mut f)) => {
            if f.test.is_empty() {
                f.test = i.test;
            }
            for (mine, theirs) in [
                (&mut f.interval, i.interval),
                (&mut f.timeout, i.timeout),
                (&mut f.start_period, i.start_period),
                (&mut f.start_interval, i.start_interval),
            ] {
                if *mine == 0 {
                    *mine = theirs;
                }
            }
            if f.retries == 0 {
                f.retries = i.retries;
            }
            Some(f)
        }
    };
    let Some(h) = merged else { return Ok(None) };
    match h.test.first().map(String::as_str) {
        None | Some("NONE") => Ok(None),
        Some("CMD") if h.test.len() > 1 => Ok(Some(h)),
        Some("CMD-SHELL") if h.test.len() == 2 => Ok(Some(h)),
        Some(kind) => Err(Error::InvalidArgument(format!("unknown or malformed healthcheck type {kind:?}"))),
    }
}

/// A Kubernetes probe the monitor runs beside (or instead of) Docker's
/// check: `liveness` kills the container when it fails (its restart policy
/// brings it back), `startup` holds the others until it succeeds and kills
/// on failure, `readiness` only records. The monitor writes `<role>.json`
/// in `State.Health`'s shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub role: String,
    pub action: ProbeAction,
    pub initial_delay_ns: u64,
    pub period_ns: u64,
    pub timeout_ns: u64,
    pub failure_threshold: u32,
    pub success_threshold: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeAction {
    /// Run in the container (`exec.command`).
    Exec(Vec<String>),
    /// `GET http://HOST:PORT/PATH` from inside the container's network namespace; 200–399 passes.
    HttpGet { host: String, port: u16, path: String },
    /// A TCP connect from inside the container's network namespace.
    TcpSocket { host: String, port: u16 },
}

impl Probe {
    /// The monitor's `--health-test` words for this probe.
    pub fn test(&self) -> Vec<String> {
        match &self.action {
            ProbeAction::Exec(argv) => std::iter::once("CMD".to_string()).chain(argv.iter().cloned()).collect(),
            ProbeAction::HttpGet { host, port, path } => {
                vec!["HTTP-GET".into(), host.clone(), port.to_string(), path.clone()]
            }
            ProbeAction::TcpSocket { host, port } => vec!["TCP".into(), host.clone(), port.to_string()],
        }
    }
}

/// The state of a container's probe (`<dir>/<role>.json`), if it has one.
pub fn read_probe(dir: &Path, role: &str) -> Option<Value> {
    std::fs::read(dir.join(format!("{role}.json"))).ok().and_then(|b| serde_json::from_slice(&b).ok())
}

/// The monitor's last word on a container's health (`State.Health`).
pub fn read_state(dir: &Path) -> Option<Value> {
    std::fs::read(dir.join(HEALTH_FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Some(1_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("0"), Some(0));
        for bad in ["", "10", "1x", "s", "-1s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn flags_override_the_image_field_by_field() {
        let image = Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            interval: 5,
            timeout: 6,
            retries: 7,
            ..Default::default()
        };
        let flags = HealthOptions { interval: Some("2s".into()), ..Default::default() }.to_healthcheck().unwrap();
        let h = resolve(Some(image.clone()), flags).unwrap().unwrap();
        assert_eq!((h.test.clone(), h.interval, h.timeout, h.retries), (image.test.clone(), 2_000_000_000, 6, 7));
        let off = HealthOptions { disable: true, ..Default::default() }.to_healthcheck().unwrap();
        assert_eq!(resolve(Some(image.clone()), off).unwrap(), None);
        let cmd = HealthOptions { cmd: Some("test -f /x".into()), ..Default::default() }.to_healthcheck().unwrap();
        assert_eq!(resolve(Some(image), cmd).unwrap().unwrap().test, ["CMD-SHELL", "test -f /x"]);
        assert_eq!(resolve(None, None).unwrap(), None);
    }

    #[test]
    fn bad_flags_are_clear_errors() {
        let conflict = HealthOptions { disable: true, cmd: Some("x".into()), ..Default::default() };
        assert!(conflict.to_healthcheck().unwrap_err().to_string().contains("conflicts"));
        let neg = HealthOptions { retries: Some(-1), ..Default::default() };
        assert!(neg.to_healthcheck().unwrap_err().to_string().contains("negative"));
        let tiny = HealthOptions { interval: Some("10us".into()), ..Default::default() };
        assert!(tiny.to_healthcheck().unwrap_err().to_string().contains("1ms"));
        let bad = HealthOptions { timeout: Some("soon".into()), ..Default::default() };
        assert!(bad.to_healthcheck().unwrap_err().to_string().contains("invalid duration"));
        let weird = Healthcheck { test: vec!["RUN".into(), "x".into()], ..Default::default() };
        assert!(resolve(Some(weird), None).is_err());
    }
}
