//! `events`: an append-only log of what happened to containers,
//! `<root>/events.log`, one JSON object per line in Docker's event shape.
//!
//! Every writer (the CLI, a monitor's exit command, `wharf cri`) opens the
//! log with `O_APPEND` and writes each line with one `write(2)` of less
//! than `PIPE_BUF` bytes, so concurrent writers never interleave. Once the
//! log passes [`MAX_LOG`] bytes the writer that noticed renames it to
//! `events.log.1` (replacing the older one): readers read both.
//! Recording an event never fails the operation it describes.

use super::record::Record;
use super::Containers;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const LOG: &str = "events.log";
/// The size at which the log is rotated (one older generation is kept).
pub const MAX_LOG: u64 = 4 << 20;
/// A line must fit one atomic append (`PIPE_BUF`).
const MAX_LINE: usize = 4096;

/// Docker's event message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub status: String,
    pub id: String,
    pub from: String,
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

impl Event {
    /// A container event about `rec`, now; `extra` attributes (exitCode, signal).
    pub fn container(rec: &Record, action: &str, extra: &[(&str, String)]) -> Event {
        let now = chrono::Utc::now();
        let nanos = now.timestamp_nanos_opt().unwrap_or(0);
        let mut attributes = BTreeMap::new();
        attributes.insert("name".to_string(), rec.name.clone());
        attributes.insert("image".to_string(), rec.image.clone());
        for l in &rec.options.labels {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            attributes.entry(k.to_string()).or_insert_with(|| v.to_string());
        }
        for (k, v) in extra {
            attributes.insert(k.to_string(), v.clone());
        }
        Event {
            status: action.to_string(),
            id: rec.id.clone(),
            from: rec.image.clone(),
            kind: "container".into(),
            action: action.to_string(),
            actor: Actor { id: rec.id.clone(), attributes },
            scope: "local".into(),
            time: nanos / 1_000_000_000,
            time_nano: nanos,
        }
    }

    /// One log line, shortened to fit an atomic append (labels go first).
    fn line(&self) -> Option<Vec<u8>> {
        let mut e = self.clone();
        loop {
            let mut bytes = serde_json::to_vec(&e).ok()?;
            bytes.push(b'\n');
            if bytes.len() < MAX_LINE {
                return Some(bytes);
            }
            let drop =
                e.actor.attributes.keys().find(|k| !matches!(k.as_str(), "name" | "image" | "exitCode")).cloned();
            match drop {
                Some(k) => {
                    e.actor.attributes.remove(&k);
                }
                None => return None,
            }
        }
    }
}

/// Appends `e` to the log under `root`; errors are only logged.
pub(crate) fn append(root: &Path, e: &Event) {
    if let Err(err) = try_append(root, e) {
        tracing::warn!("recording event {} of {}: {err}", e.action, e.id);
    }
}

fn try_append(root: &Path, e: &Event) -> std::io::Result<()> {
    let Some(line) = e.line() else { return Ok(()) };
    let path = root.join(LOG);
    let mut f = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(&path)?;
    f.write_all(&line)?;
    if f.metadata()?.len() > MAX_LOG {
        // Whoever renames first wins; a writer still holding the old file
        // appends to events.log.1, which readers read too.
        let cur = std::fs::metadata(&path)?;
        if cur.ino() == f.metadata()?.ino() {
            std::fs::rename(&path, root.join(format!("{LOG}.1")))?;
        }
    }
    Ok(())
}

impl Containers {
    /// Records a container event (see the module doc).
    pub(crate) fn event(&self, rec: &Record, action: &str, extra: &[(&str, String)]) {
        append(&self.root, &Event::container(rec, action, extra));
    }

    /// A reader of the event log, at its start.
    pub fn events(&self) -> EventReader {
        EventReader { root: self.root.clone(), ino: None, offset: 0, partial: Vec::new() }
    }
}

/// `--filter` of `events`: values of one key are alternatives, keys are all required.
#[derive(Debug, Clone, Default)]
pub struct EventFilter(BTreeMap<String, Vec<String>>);

impl EventFilter {
    pub fn parse(filters: &[String]) -> Result<Self> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in filters {
            let (k, v) = f
                .split_once('=')
                .ok_or_else(|| Error::InvalidArgument(format!("bad format of filter (expected name=value): {f}")))?;
            if !matches!(k, "container" | "event" | "type" | "image" | "label" | "scope") {
                return Err(Error::InvalidArgument(format!("invalid filter '{k}'")));
            }
            m.entry(k.to_string()).or_default().push(v.to_string());
        }
        Ok(EventFilter(m))
    }

    pub fn matches(&self, e: &Event) -> bool {
        self.0.iter().all(|(k, vals)| {
            vals.iter().any(|v| match k.as_str() {
                "container" => e.actor.id.starts_with(v) || e.actor.attributes.get("name").is_some_and(|n| n == v),
                "event" => e.action == *v || e.action.split(':').next() == Some(v),
                "type" => e.kind == *v,
                "scope" => e.scope == *v,
                "image" => e.from == *v || e.actor.attributes.get("image").is_some_and(|i| i == v),
                "label" => match v.split_once('=') {
                    Some((lk, lv)) => e.actor.attributes.get(lk).is_some_and(|x| x == lv),
                    None => e.actor.attributes.contains_key(v),
                },
                _ => false,
            })
        })
    }
}

/// Reads the log: first what is there (the rotated generation, then the
/// current file), then, on each call of [`EventReader::poll`], what was
/// appended since (following a rotation).
pub struct EventReader {
    root: PathBuf,
    ino: Option<u64>,
    offset: u64,
    partial: Vec<u8>,
}

impl EventReader {
    /// Every event logged so far, oldest first.
    pub fn backlog(&mut self) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        if let Ok(b) = std::fs::read(self.root.join(format!("{LOG}.1"))) {
            parse_lines(&b, &mut out);
        }
        out.extend(self.poll()?);
        Ok(out)
    }

    /// Events appended since the last call.
    pub fn poll(&mut self) -> Result<Vec<Event>> {
        let path = self.root.join(LOG);
        let mut f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("open {}", path.display()), e)),
        };
        let ino = f.metadata().map_err(|e| Error::io("stat events log", e))?.ino();
        let mut out = Vec::new();
        if self.ino.is_some_and(|i| i != ino) {
            // Rotated: the rest of the old file is events.log.1 now.
            if let Ok(mut old) = std::fs::File::open(self.root.join(format!("{LOG}.1"))) {
                if old.metadata().is_ok_and(|m| Some(m.ino()) == self.ino) {
                    self.read_from(&mut old, &mut out)?;
                }
            }
            self.offset = 0;
            self.partial.clear();
        }
        self.ino = Some(ino);
        self.read_from(&mut f, &mut out)?;
        Ok(out)
    }

    fn read_from(&mut self, f: &mut std::fs::File, out: &mut Vec<Event>) -> Result<()> {
        f.seek(SeekFrom::Start(self.offset)).map_err(|e| Error::io("seek events log", e))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).map_err(|e| Error::io("read events log", e))?;
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        // Only whole lines: a writer may be between its bytes (never with
        // O_APPEND, but a torn tail after a crash must not be parsed twice).
        if let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') {
            let rest = self.partial.split_off(end + 1);
            parse_lines(&self.partial, out);
            self.partial = rest;
        }
        Ok(())
    }
}

fn parse_lines(b: &[u8], out: &mut Vec<Event>) {
    for l in b.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
        if let Ok(e) = serde_json::from_slice::<Event>(l) {
            out.push(e);
        }
    }
}

/// Docker's `--since`/`--until`: Unix seconds (with a fraction), RFC 3339,
/// a date, or a duration before now (`10m`, `1h30m`, `90s`); nanoseconds.
pub fn parse_time(s: &str, now: chrono::DateTime<chrono::Utc>) -> Result<i64> {
    let bad = || Error::InvalidArgument(format!("invalid time {s:?}: use Unix seconds, RFC 3339 or a duration (10m)"));
    if let Ok(secs) = s.parse::<f64>() {
        return Ok((secs * 1e9) as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return t.timestamp_nanos_opt().ok_or_else(bad);
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).and_then(|t| t.and_utc().timestamp_nanos_opt()).ok_or_else(bad);
    }
    let mut total = 0f64;
    let mut num = String::new();
    for ch in s.chars() {
        if ch.is_ascii_digit() || ch == '.' {
            num.push(ch);
            continue;
        }
        let n: f64 = num.parse().map_err(|_| bad())?;
        num.clear();
        total += n * match ch {
            'h' => 3600.0,
            'm' => 60.0,
            's' => 1.0,
            _ => return Err(bad()),
        };
    }
    if !num.is_empty() || s.is_empty() {
        return Err(bad());
    }
    Ok(now.timestamp_nanos_opt().unwrap_or(0) - (total * 1e9) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_docker_does() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:10:00Z").unwrap().to_utc();
        let at = |s: &str| parse_time(s, now).unwrap() / 1_000_000_000;
        assert_eq!(at("10m"), now.timestamp() - 600);
        assert_eq!(at("1h1s"), now.timestamp() - 3601);
        assert_eq!(at("1767225600"), 1767225600);
        assert_eq!(at("2026-01-01T00:00:00Z"), 1767225600);
        assert!(parse_time("10x", now).is_err());
        assert!(parse_time("", now).is_err());
    }

    #[test]
    fn concurrent_appends_stay_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let rec: Record = serde_json::from_value(serde_json::json!({
            "id": "a".repeat(64), "name": "n", "created": "", "image": "busybox",
            "image_digest": "", "image_id": "", "options": {}
        }))
        .unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (root, rec) = (dir.path().to_path_buf(), rec.clone());
                std::thread::spawn(move || {
                    for i in 0..500 {
                        append(&root, &Event::container(&rec, "start", &[("n", i.to_string())]));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut r = EventReader { root: dir.path().to_path_buf(), ino: None, offset: 0, partial: Vec::new() };
        let all = r.backlog().unwrap();
        assert_eq!(all.len(), 2000);
        let f = EventFilter::parse(&["event=start".into(), "container=n".into()]).unwrap();
        assert!(all.iter().all(|e| f.matches(e)));
        assert!(!EventFilter::parse(&["event=die".into()]).unwrap().matches(&all[0]));
    }

    #[test]
    fn a_follower_reads_every_event_across_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let rec: Record = serde_json::from_value(serde_json::json!({
            "id": "b".repeat(64), "name": "n", "created": "", "image": "busybox",
            "image_digest": "", "image_id": "", "options": {}
        }))
        .unwrap();
        let mut r = EventReader { root: dir.path().to_path_buf(), ino: None, offset: 0, partial: Vec::new() };
        assert!(r.backlog().unwrap().is_empty());
        let (mut seen, mut written) = (0, 0);
        while !dir.path().join(format!("{LOG}.1")).exists() || written % 1000 != 0 {
            append(dir.path(), &Event::container(&rec, "start", &[("pad", "x".repeat(300))]));
            written += 1;
            if written % 1000 == 0 {
                seen += r.poll().unwrap().len();
            }
        }
        seen += r.poll().unwrap().len();
        assert_eq!(seen, written);
        assert!(std::fs::metadata(dir.path().join(LOG)).unwrap().len() < MAX_LOG);
    }
}
