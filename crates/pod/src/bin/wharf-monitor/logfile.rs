//! The container's log in the CRI format (what the kubelet and
//! `podman logs` read): `TIMESTAMP STREAM P|F TEXT\n`, one line of output
//! per record (`F`), or a piece of one (`P`) when a read ends mid-line or
//! the line is longer than `max_line` (containerd's
//! `max_container_log_line_size`: pieces of that size, then the rest).
//! Rotated by size as Docker's `max-size`/`max-file`: `ctr.log` →
//! `ctr.log.1` → … → `ctr.log.<max-file - 1>`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub struct LogFile {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max_size: u64,
    max_files: u32,
    /// 0: no limit.
    max_line: usize,
}

impl LogFile {
    pub fn open(path: &Path, max_size: u64, max_files: u32, max_line: u64) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        let max_line = usize::try_from(max_line).unwrap_or(usize::MAX);
        Ok(LogFile {
            path: path.to_path_buf(),
            file: Some(file),
            size,
            max_size,
            max_files: max_files.max(1),
            max_line,
        })
    }

    /// Writes `data`, read from `stream` (`stdout`/`stderr`) at one instant.
    pub fn write(&mut self, stream: &str, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let ts = crate::sys::now_rfc3339();
        let mut out = Vec::with_capacity(data.len() + 64);
        let mut rest = data;
        while !rest.is_empty() {
            let (line, tag, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) if self.max_line == 0 || i <= self.max_line => (&rest[..i], "F", &rest[i + 1..]),
                _ if self.max_line > 0 && rest.len() > self.max_line => {
                    (&rest[..self.max_line], "P", &rest[self.max_line..])
                }
                _ => (rest, "P", &rest[rest.len()..]),
            };
            out.extend_from_slice(ts.as_bytes());
            out.push(b' ');
            out.extend_from_slice(stream.as_bytes());
            out.push(b' ');
            out.extend_from_slice(tag.as_bytes());
            out.push(b' ');
            out.extend_from_slice(line);
            out.push(b'\n');
            rest = next;
        }
        if let Some(f) = &mut self.file {
            // A full disk loses log lines, never the container.
            if f.write_all(&out).is_ok() {
                self.size += out.len() as u64;
            }
        }
        if self.max_size > 0 && self.size >= self.max_size {
            self.rotate();
        }
    }

    /// Opens the path again if the file there is not the one written to
    /// (renamed or removed by the kubelet's rotation, then SIGUSR1).
    pub fn reopen_if_moved(&mut self) {
        use std::os::unix::fs::MetadataExt;
        let same = match (&self.file, std::fs::metadata(&self.path)) {
            (Some(f), Ok(m)) => f.metadata().is_ok_and(|o| o.ino() == m.ino() && o.dev() == m.dev()),
            _ => false,
        };
        if !same {
            self.file = OpenOptions::new().create(true).append(true).open(&self.path).ok();
            self.size = self.file.as_ref().and_then(|f| f.metadata().ok()).map_or(0, |m| m.len());
        }
    }

    fn rotate(&mut self) {
        self.file = None;
        let name = |i: u32| PathBuf::from(format!("{}.{i}", self.path.display()));
        if self.max_files <= 1 {
            let _ = std::fs::remove_file(&self.path);
        } else {
            for i in (1..self.max_files - 1).rev() {
                let _ = std::fs::rename(name(i), name(i + 1));
            }
            let _ = std::fs::rename(&self.path, name(1));
        }
        self.file = OpenOptions::new().create(true).append(true).open(&self.path).ok();
        self.size = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_partials_and_rotation() {
        let dir = std::env::temp_dir().join(format!("wharf-monitor-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("ctr.log");
        // 200: the three first records (133 bytes with their 30-byte
        // timestamps) rotated at once under the 120 this test had.
        let mut l = LogFile::open(&p, 200, 3, 0).unwrap();
        l.write("stdout", b"one\ntwo\npart");
        let text = std::fs::read_to_string(&p).unwrap();
        let tags: Vec<_> = text.lines().map(|l| l.splitn(4, ' ').skip(1).collect::<Vec<_>>().join(" ")).collect();
        assert_eq!(tags, ["stdout F one", "stdout F two", "stdout P part"]);
        for _ in 0..5 {
            l.write("stderr", b"0123456789012345678901234567890123456789\n");
        }
        assert!(p.with_file_name("ctr.log.1").exists() && p.with_file_name("ctr.log.2").exists());
        assert!(!p.with_file_name("ctr.log.3").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn long_lines_split_at_the_limit() {
        let dir = std::env::temp_dir().join(format!("wharf-monitor-longlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("ctr.log");
        let mut l = LogFile::open(&p, 0, 1, 4).unwrap();
        // A line of 10 written as one record (and a line of exactly 4 too).
        l.write("stdout", b"0123456789\nabcd\nxyz");
        let text = std::fs::read_to_string(&p).unwrap();
        let recs: Vec<_> = text.lines().map(|l| l.splitn(4, ' ').skip(2).collect::<Vec<_>>().join(" ")).collect();
        assert_eq!(recs, ["P 0123", "P 4567", "F 89", "F abcd", "P xyz"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
