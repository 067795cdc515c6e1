//! Human output: sizes, ages and tables as Docker prints them, and the one
//! way to write to standard output.
//!
//! Everything a command prints goes through [`outln!`] (or [`Stdout`] for a
//! byte stream): a write that finds the reader gone (EPIPE, as in
//! `wharf images | head -1`) becomes a [`StdoutClosed`] error, which unwinds
//! the command like any error — locks released, temp files removed — and
//! `main` then ends the process quietly. `println!` would panic instead, so
//! clippy forbids it in this crate (`crates/cli/clippy.toml`).

use std::fmt;
use std::io::{self, Write};

/// Standard output was a pipe whose reader has gone away.
#[derive(Debug)]
pub struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output is closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Whether `e` comes from writing to a closed standard output, however a
/// library wrapped the `io::Error` that [`Stdout`] returned.
pub fn is_stdout_closed(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<StdoutClosed>()
            || c.downcast_ref::<io::Error>().and_then(|io| io.get_ref()).is_some_and(|inner| inner.is::<StdoutClosed>())
    })
}

/// Ends the process the way docker, runc and `cat` end when their stdout is
/// a closed pipe: killed by SIGPIPE (status 141 in a shell), nothing
/// printed. Called by `main` once the command has returned its error, so
/// whatever it held has been released; Rust ignores SIGPIPE until now so
/// that pipes to children and relays get EPIPE errors they can handle.
pub fn exit_stdout_closed() -> ! {
    // SAFETY: signal(2) and raise(3) with constants; no handler is installed.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    // Still here only if this thread blocks SIGPIPE: exit with the status
    // a shell shows for a process killed by it.
    std::process::exit(128 + libc::SIGPIPE)
}

/// Marks a broken pipe on stdout so that `main` knows it from other EPIPEs
/// (a registry connection, a child's stdin), which stay errors.
fn mark(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        io::Error::new(io::ErrorKind::BrokenPipe, StdoutClosed)
    } else {
        e
    }
}

/// Writes formatted text to stdout and flushes it; see [`outln!`].
pub fn write_out(args: fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    out.write_fmt(args).and_then(|()| out.flush()).map_err(|e| match e.kind() {
        io::ErrorKind::BrokenPipe => anyhow::Error::new(StdoutClosed),
        _ => anyhow::Error::new(e).context("write to standard output"),
    })
}

/// `println!` that returns an error instead of panicking: `outln!("{x}")?`.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Standard output as a byte stream (archives): a broken pipe comes back as
/// an `io::Error` that [`is_stdout_closed`] recognises.
pub struct Stdout(io::StdoutLock<'static>);

impl Stdout {
    pub fn lock() -> Self {
        Stdout(io::stdout().lock())
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(mark)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(mark)
    }
}

/// Docker's sizes: SI units, three significant digits (`4.26MB`).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        return format!("{bytes}B");
    }
    // Three significant digits, trailing zeros dropped: 1.04MB, 12.3kB, 210MB.
    let decimals = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[i])
}

/// "3 minutes ago", from an RFC 3339 timestamp.
pub fn age(created: Option<&str>) -> String {
    let Some(t) = created.and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok()) else {
        return "N/A".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds().max(0);
    let (n, unit) = match secs {
        s if s < 60 => return "Less than a minute ago".into(),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86400 => (s / 3600, "hour"),
        s if s < 86400 * 14 => (s / 86400, "day"),
        s if s < 86400 * 60 => (s / (86400 * 7), "week"),
        s if s < 86400 * 730 => (s / (86400 * 30), "month"),
        s => (s / (86400 * 365), "year"),
    };
    let unit = if n == 1 { unit.to_string() } else { format!("{unit}s") };
    let n = if n == 1 && unit == "hour" {
        "About an".to_string()
    } else if n == 1 {
        "1".to_string()
    } else {
        n.to_string()
    };
    format!("{n} {unit} ago")
}

/// Prints rows as left-aligned columns separated by three spaces.
pub fn table(rows: &[Vec<String>]) -> anyhow::Result<()> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..cols).map(|c| rows.iter().map(|r| r.get(c).map_or(0, |s| s.chars().count())).max().unwrap_or(0)).collect();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[c]));
            }
        }
        crate::outln!("{}", line.trim_end())?;
    }
    Ok(())
}

/// The 12-hex-character short form of an ID.
pub fn short_id(id: &str) -> String {
    id.strip_prefix("sha256:").unwrap_or(id).chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use std::io;

    #[test]
    fn a_closed_stdout_is_recognised_however_wrapped_and_other_epipes_are_not() {
        let closed = super::mark(io::Error::from(io::ErrorKind::BrokenPipe));
        // As a library wraps it: an io::Error whose payload has ours as source.
        #[derive(Debug)]
        struct Wrapper(io::Error);
        impl std::fmt::Display for Wrapper {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("write archive")
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let wrapped = io::Error::other(Wrapper(closed));
        assert!(super::is_stdout_closed(&anyhow::Error::new(wrapped).context("save")));
        assert!(super::is_stdout_closed(&anyhow::Error::new(super::StdoutClosed)));
        // A registry connection or a child's stdin: still an error to report.
        let other = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("upload blob");
        assert!(!super::is_stdout_closed(&other));
    }

    #[test]
    fn sizes() {
        assert_eq!(super::size(999), "999B");
        assert_eq!(super::size(1_040_000), "1.04MB");
        assert_eq!(super::size(210_000_000), "210MB");
        assert_eq!(super::size(12_300), "12.3kB");
    }
}
