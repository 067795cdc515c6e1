//! Minimal logging for the runtime: `--log` file in text or JSON (runc's
//! format, which containerd's shim parses), warnings to stderr otherwise.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

#[derive(Debug, Clone)]
struct Sink {
    path: Option<PathBuf>,
    json: bool,
    debug: bool,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Sets where log lines go; call once at start-up. The file is created
/// now, as runc and crun do: a caller may read it even when nothing is logged.
pub fn init(path: Option<PathBuf>, json: bool, debug: bool) {
    if let Some(p) = &path {
        if let Err(e) = std::fs::OpenOptions::new().create(true).append(true).open(p) {
            eprintln!("wharf-runtime: warning: open log file {}: {e}", p.display());
        }
    }
    let _ = SINK.set(Sink { path, json, debug });
}

fn write(level: &str, msg: &str) {
    let sink = SINK.get();
    if level == "debug" && !sink.is_some_and(|s| s.debug) {
        return;
    }
    let Some(Sink { path: Some(p), json, .. }) = sink else {
        if level != "debug" {
            eprintln!("wharf-runtime: {level}: {msg}");
        }
        return;
    };
    let time = crate::sys::rfc3339_now();
    let line = if *json {
        let v = serde_json::json!({"level": level, "msg": msg, "time": time});
        format!("{v}\n")
    } else {
        format!("time=\"{time}\" level={level} msg={msg:?}\n")
    };
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(p) {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Logs an error to the `--log` file; the caller prints it to stderr itself.
pub fn error(msg: &str) {
    if SINK.get().is_some_and(|s| s.path.is_some()) {
        write("error", msg);
    }
}

pub fn warn(msg: &str) {
    write("warning", msg);
}

pub fn debug(msg: &str) {
    write("debug", msg);
}
