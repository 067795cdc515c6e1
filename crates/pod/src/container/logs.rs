//! `logs`: the CRI-format log the monitor writes (`ctr.log`, and the
//! rotated `ctr.log.1` … older first), with `--since/--until/--tail/-t`,
//! and `-f` that follows the file across rotations until the container
//! stops.

use super::record::{self, Container};
use crate::error::{Error, Result};
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    /// RFC 3339 bounds (already normalised to UTC with nanoseconds).
    pub since: Option<String>,
    pub until: Option<String>,
    pub tail: Option<usize>,
    pub timestamps: bool,
}

/// One log record (a whole line once its partials are joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub time: String,
    pub stderr: bool,
    pub text: Vec<u8>,
}

/// Parses CRI log lines, joining `P` pieces into their `F` line.
#[derive(Default)]
struct Parser {
    partial: Option<Line>,
}

impl Parser {
    fn push(&mut self, raw: &[u8]) -> Option<Line> {
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        let mut it = raw.splitn(4, |&b| b == b' ');
        let (time, stream, tag) = (it.next()?, it.next()?, it.next()?);
        let text = it.next().unwrap_or(b"");
        let stderr = stream == b"stderr";
        let p = self.partial.get_or_insert_with(|| Line {
            time: String::from_utf8_lossy(time).into_owned(),
            stderr,
            text: Vec::new(),
        });
        p.text.extend_from_slice(text);
        if tag == b"P" {
            return None;
        }
        let mut line = self.partial.take()?;
        line.text.push(b'\n');
        Some(line)
    }
}

/// `(inode, name)` of the log files, oldest first (`ctr.log.N` … `ctr.log`).
fn list(log: &Path) -> Vec<(u64, String)> {
    let name = log.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut rotated: Vec<(u32, u64, String)> = Vec::new();
    let mut live = None;
    for e in std::fs::read_dir(log.parent().unwrap_or(Path::new("."))).into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n == name {
            live = Some((e.ino(), n));
        } else if let Some(i) = n.strip_prefix(&format!("{name}.")).and_then(|i| i.parse().ok()) {
            rotated.push((i, e.ino(), n));
        }
    }
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    rotated.into_iter().map(|(_, ino, n)| (ino, n)).chain(live).collect()
}

/// The log files opened, oldest first, as one consistent set: the monitor
/// rotates by renaming each file in turn, so a listing and the opens that
/// follow it can straddle a rotation (and then skip a file or take one
/// twice). The set is kept only when a second listing matches the first
/// and every open file is the one listed (any such set is a state the
/// renames went through, which is whole and in order). Rotations come at
/// most once per `max-size` written, so a set is found within a few tries;
/// after two seconds of rotations without a pause the last try is taken.
fn open_files(log: &Path) -> Vec<(u64, File)> {
    let dir = log.parent().unwrap_or(Path::new("."));
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let mut last = Vec::new();
    while std::time::Instant::now() < deadline {
        let before = list(log);
        let opened: Vec<(u64, File)> = before
            .iter()
            .filter_map(|(ino, n)| File::open(dir.join(n)).ok().map(|f| (*ino, f)))
            .filter(|(ino, f)| f.metadata().is_ok_and(|m| m.ino() == *ino))
            .collect();
        if opened.len() == before.len() && list(log) == before {
            return opened;
        }
        last = opened;
        std::thread::sleep(Duration::from_millis(1));
    }
    last
}

fn keep(l: &Line, o: &LogOptions) -> bool {
    o.since.as_ref().is_none_or(|s| l.time.as_str() >= s.as_str())
        && o.until.as_ref().is_none_or(|u| l.time.as_str() < u.as_str())
}

fn emit(l: &Line, o: &LogOptions, out: &mut impl Write, err: &mut impl Write) -> std::io::Result<()> {
    let w: &mut dyn Write = if l.stderr { err } else { out };
    if o.timestamps {
        w.write_all(l.time.as_bytes())?;
        w.write_all(b" ")?;
    }
    w.write_all(&l.text)
}

/// Writes the container's log to `out`/`err` (stdout and stderr lines).
pub fn write_logs(c: &Container, o: &LogOptions, out: &mut impl Write, err: &mut impl Write) -> Result<()> {
    let io = |e| Error::io("write logs", e);
    let mut parser = Parser::default();
    let (lines, pos) = read_kept(c, o, &mut parser)?;
    for l in &lines {
        emit(l, o, out, err).map_err(io)?;
    }
    out.flush().map_err(io)?;
    if o.follow {
        follow(c, o, pos, parser, out, err)?;
    }
    Ok(())
}

/// Every complete line of the container's log that `o` keeps (since,
/// until, tail), oldest first (`pod logs` interleaves several).
pub fn read_lines(c: &Container, o: &LogOptions) -> Result<Vec<Line>> {
    read_kept(c, o, &mut Parser::default()).map(|(lines, _)| lines)
}

/// The kept lines of every log file, oldest first, and `(inode, offset)`
/// of where the live file was read up to (for `-f`). With `--tail`, at
/// most about twice as many lines are held while reading.
fn read_kept(c: &Container, o: &LogOptions, parser: &mut Parser) -> Result<(Vec<Line>, (u64, u64))> {
    let log = c.log_path();
    let mut lines: Vec<Line> = Vec::new();
    let mut pos = (0u64, 0u64);
    let opened = open_files(&log);
    let count = opened.len();
    for (n, (ino, file)) in opened.into_iter().enumerate() {
        let mut r = BufReader::new(file);
        let mut buf = Vec::new();
        while r.read_until(b'\n', &mut buf).map_err(|e| Error::io("read log", e))? > 0 {
            if buf.ends_with(b"\n") {
                if let Some(l) = parser.push(&buf).filter(|l| keep(l, o)) {
                    lines.push(l);
                    if o.tail.is_some_and(|t| lines.len() > t * 2 + 1024) {
                        let drop_n = lines.len() - o.tail.unwrap_or(0);
                        lines.drain(..drop_n);
                    }
                }
                buf.clear();
            }
        }
        if n + 1 == count {
            pos = (ino, r.stream_position().unwrap_or(0) - buf.len() as u64);
        }
    }
    let skip = o.tail.map_or(0, |t| lines.len().saturating_sub(t));
    lines.drain(..skip);
    Ok((lines, pos))
}

/// `-f`: new lines as they come, following the file across rotations:
/// `(ino, offset)` is how far the file with that inode was read; each
/// round reads it on from there (wherever rotation moved it: `ctr.log.N`)
/// and every newer file whole, so no line is lost or repeated however
/// many rotations happened in between. Ends once the container stops and
/// all is read.
fn follow(
    c: &Container,
    o: &LogOptions,
    (mut ino, mut offset): (u64, u64),
    mut parser: Parser,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<()> {
    let io = |e| Error::io("write logs", e);
    let log = c.log_path();
    let mut buf = Vec::new();
    loop {
        let running =
            record::load(&c.dir).is_ok_and(|c| c.is_running() || c.status == super::Status::Created && c.owned);
        // Opened before reading: a rotation now moves the files, not the open inodes.
        let opened = open_files(&log);
        // Ours, else (rotated away past max-file, or a new log) the oldest there is.
        let from = match opened.iter().position(|(i, _)| *i == ino) {
            Some(i) => i,
            None => {
                offset = 0;
                0
            }
        };
        for (i, mut f) in opened.into_iter().skip(from) {
            if i != ino {
                (ino, offset) = (i, 0);
            }
            f.seek(SeekFrom::Start(offset)).map_err(|e| Error::io("seek log", e))?;
            offset += read_new(&mut f, &mut buf, &mut parser, o, out, err)?;
        }
        out.flush().map_err(io)?;
        if !running {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Emits the complete lines from `f`'s position; the bytes consumed.
fn read_new(
    f: &mut File,
    buf: &mut Vec<u8>,
    parser: &mut Parser,
    o: &LogOptions,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<u64> {
    let mut r = BufReader::new(f);
    let mut used = 0u64;
    loop {
        buf.clear();
        let n = r.read_until(b'\n', buf).map_err(|e| Error::io("read log", e))?;
        if n == 0 || !buf.ends_with(b"\n") {
            return Ok(used);
        }
        used += n as u64;
        if let Some(l) = parser.push(buf).filter(|l| keep(l, o)) {
            emit(&l, o, out, err).map_err(|e| Error::io("write logs", e))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files "rotated" as the monitor does (rename .N → .N+1 … then
    /// ctr.log → .1, a new ctr.log), each holding its sequence number:
    /// every set opened while that goes on is contiguous, oldest first.
    #[test]
    fn open_files_is_consistent_while_rotating() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("ctr.log");
        std::fs::write(&log, "0").unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (l, s) = (log.clone(), stop.clone());
        let rotator = std::thread::spawn(move || {
            let name = |i: u32| l.with_file_name(format!("ctr.log.{i}"));
            for seq in 1..3000 {
                for i in (1..40).rev() {
                    let _ = std::fs::rename(name(i), name(i + 1));
                }
                std::fs::rename(&l, name(1)).unwrap();
                std::fs::write(&l, seq.to_string()).unwrap();
                // The monitor writes max-size between two rotations.
                std::thread::sleep(Duration::from_micros(300));
            }
            s.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let mut rounds = 0;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let seqs: Vec<u64> = open_files(&log)
                .into_iter()
                .filter_map(|(_, mut f)| {
                    let mut s = String::new();
                    std::io::Read::read_to_string(&mut f, &mut s).ok()?;
                    s.parse().ok()
                })
                .collect();
            assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "a gap or a repeat: {seqs:?}");
            rounds += 1;
        }
        rotator.join().unwrap();
        assert!(rounds > 0);
    }

    #[test]
    fn partials_join() {
        let mut p = Parser::default();
        assert_eq!(p.push(b"2026-01-01T00:00:00.000000000Z stdout P hel\n"), None);
        let l = p.push(b"2026-01-01T00:00:00.100000000Z stdout F lo\n").unwrap();
        assert_eq!(l.text, b"hello\n");
        assert_eq!(l.time, "2026-01-01T00:00:00.000000000Z");
        let e = p.push(b"2026-01-01T00:00:01.000000000Z stderr F \n").unwrap();
        assert!(e.stderr && e.text == b"\n");
    }
}
