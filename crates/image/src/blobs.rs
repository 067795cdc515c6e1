//! Content-addressed blobs under `blobs/sha256/`, written through `ingest/`.
//!
//! A blob becomes visible only by rename after it was hashed, sized and
//! fsynced, so a blob under `blobs/` always matches its name.

use crate::digest::{self, Digest, HashingWriter};
use crate::error::{Error, IoContext, Result};
use crate::lock;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
    ingest: PathBuf,
}

/// A name no other process or thread picks at the same time.
pub(crate) fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{prefix}{}-{t:x}-{n}", std::process::id())
}

impl Blobs {
    pub(crate) fn new(root: &Path) -> Self {
        Blobs { dir: root.join("blobs/sha256"), ingest: root.join("ingest") }
    }

    pub(crate) fn init(&self) -> Result<()> {
        fs::create_dir_all(&self.dir).ctx("create", &self.dir)?;
        fs::create_dir_all(&self.ingest).ctx("create", &self.ingest)?;
        Ok(())
    }

    pub fn path(&self, d: &Digest) -> PathBuf {
        self.dir.join(digest::hex(d))
    }

    pub fn exists(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    pub fn size(&self, d: &Digest) -> Result<u64> {
        let p = self.path(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::BlobNotFound(d.to_string())),
            Err(e) => Err(Error::io("stat blob", p, e)),
        }
    }

    pub fn open(&self, d: &Digest) -> Result<File> {
        let p = self.path(d);
        File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::BlobNotFound(d.to_string()),
            _ => Error::io("open blob", p, e),
        })
    }

    /// Reads a small blob (a manifest or config) whole, refusing one over `max`
    /// bytes and re-checking its digest: the file may have been damaged on disk.
    pub fn read(&self, d: &Digest, max: u64) -> Result<Vec<u8>> {
        let mut f = self.open(d)?;
        let mut buf = Vec::new();
        (&mut f).take(max + 1).read_to_end(&mut buf).ctx("read blob", self.path(d))?;
        if buf.len() as u64 > max {
            return Err(Error::malformed(format!("blob {d}"), format!("larger than {max} bytes")));
        }
        let actual = digest::of_bytes(&buf);
        if &actual != d {
            return Err(Error::DigestMismatch {
                what: "blob",
                digest: d.to_string(),
                expected: d.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(buf)
    }

    pub fn writer(&self) -> Result<BlobWriter> {
        let tmp = self.ingest.join(unique_name("blob-"));
        let file =
            OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).ctx("create temp blob", &tmp)?;
        // Held until commit or drop: tells a cleaner this file is live.
        lock::hold(&file);
        Ok(BlobWriter {
            out: Some(HashingWriter::new(BufWriter::with_capacity(256 * 1024, file))),
            tmp,
            dir: self.dir.clone(),
            done: false,
        })
    }

    pub fn put_bytes(&self, b: &[u8]) -> Result<Digest> {
        let mut w = self.writer()?;
        w.write_all(b).map_err(|e| Error::other("write blob", e))?;
        Ok(w.commit(None, None)?.0)
    }

    /// Streams `r` into a blob; with `expected`, a digest or size mismatch is
    /// an error and nothing becomes visible.
    pub fn put_reader(&self, r: &mut impl Read, expected: Option<(&Digest, u64)>) -> Result<(Digest, u64)> {
        let mut w = self.writer()?;
        io::copy(r, &mut w).map_err(|e| Error::other("write blob", e))?;
        w.commit(expected.map(|e| e.0), expected.map(|e| e.1))
    }

    pub fn remove(&self, d: &Digest) -> Result<()> {
        let p = self.path(d);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove blob", p, e)),
        }
    }

    /// Every blob name under `blobs/sha256`, and the names that are not digests.
    pub fn list(&self) -> Result<(Vec<Digest>, Vec<String>)> {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((good, bad)),
            Err(e) => return Err(Error::io("list", &self.dir, e)),
        };
        for ent in rd {
            let ent = ent.ctx("list", &self.dir)?;
            let name = ent.file_name().to_string_lossy().into_owned();
            match digest::parse(&format!("sha256:{name}")) {
                Ok(d) => good.push(d),
                Err(_) => bad.push(name),
            }
        }
        Ok((good, bad))
    }

    /// Re-hashes a blob; an error says how it is damaged.
    pub fn verify(&self, d: &Digest) -> Result<()> {
        let mut r = digest::HashingReader::new(io::BufReader::with_capacity(256 * 1024, self.open(d)?));
        io::copy(&mut r, &mut io::sink()).ctx("read blob", self.path(d))?;
        let (actual, _) = r.finish().ctx("read blob", self.path(d))?;
        if &actual != d {
            return Err(Error::DigestMismatch {
                what: "blob",
                digest: d.to_string(),
                expected: d.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(())
    }

    /// Removes temp blobs whose writer died (nobody holds their lock).
    pub(crate) fn clean_ingest(&self) -> Result<usize> {
        clean_abandoned(&self.ingest)
    }

    pub(crate) fn ingest_dir(&self) -> &Path {
        &self.ingest
    }
}

/// Removes every entry of `dir` whose writer died (see [`abandoned`]).
pub(crate) fn clean_abandoned(dir: &Path) -> Result<usize> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    let mut n = 0;
    for ent in rd.flatten() {
        let p = ent.path();
        let Ok(f) = File::open(&p) else { continue };
        if !abandoned(&p, &f) || !lock::try_lock(&f) {
            continue;
        }
        let is_dir = f.metadata().map(|m| m.is_dir()).unwrap_or(false);
        let r = if is_dir { crate::unpack::remove_tree(&p) } else { fs::remove_file(&p).ctx("remove", &p) };
        if r.is_ok() {
            n += 1;
        }
    }
    Ok(n)
}

/// Whether the temp entry `p` (open as `f`) was left by a dead writer.
/// Its writer holds its flock from a moment after creating it to the end;
/// in that moment the lock is free, so a free lock means dead only when
/// the pid in the name (see [`unique_name`]) is gone or the entry is more
/// than a few seconds old. (A reused pid only delays the verdict.)
/// Takes no lock.
pub(crate) fn abandoned(p: &Path, f: &File) -> bool {
    if !lock::is_free(f) {
        return false;
    }
    let writer_gone = writer_pid(p).is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
    let young = std::time::SystemTime::now() - std::time::Duration::from_secs(5);
    writer_gone || f.metadata().and_then(|m| m.modified()).is_ok_and(|t| t < young)
}

/// The writer's pid in a temp name `<prefix>-<pid>-<time>-<n>`.
fn writer_pid(p: &Path) -> Option<u32> {
    let name = p.file_name()?.to_str()?;
    let (_, rest) = name.split_once('-')?;
    rest.split('-').next()?.parse().ok()
}

pub struct BlobWriter {
    out: Option<HashingWriter<BufWriter<File>>>,
    tmp: PathBuf,
    dir: PathBuf,
    done: bool,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out()?.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out()?.flush()
    }
}

impl BlobWriter {
    fn out(&mut self) -> io::Result<&mut HashingWriter<BufWriter<File>>> {
        self.out.as_mut().ok_or_else(|| io::Error::other("blob writer already committed"))
    }

    pub fn written(&self) -> u64 {
        self.out.as_ref().map_or(0, |o| o.count())
    }

    /// Verifies, fsyncs and renames the blob into place.
    pub fn commit(mut self, expected: Option<&Digest>, expected_size: Option<u64>) -> Result<(Digest, u64)> {
        let out = self.out.take().ok_or_else(|| Error::other("commit blob", io::Error::other("already committed")))?;
        let (buf, actual, size) = out.finish();
        let file = buf.into_inner().map_err(|e| Error::io("write", &self.tmp, e.into_error()))?;
        if let Some(want) = expected_size {
            if size != want {
                return Err(Error::DigestMismatch {
                    what: "blob size of",
                    digest: expected.map_or_else(|| actual.to_string(), |d| d.to_string()),
                    expected: want.to_string(),
                    actual: size.to_string(),
                });
            }
        }
        if let Some(want) = expected {
            if &actual != want {
                return Err(Error::DigestMismatch {
                    what: "blob",
                    digest: want.to_string(),
                    expected: want.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        let dest = self.dir.join(digest::hex(&actual));
        if dest.is_file() {
            return Ok((actual, size)); // same content already stored; drop removes the temp
        }
        file.sync_all().ctx("fsync", &self.tmp)?;
        fs::set_permissions(&self.tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644)).ctx("chmod", &self.tmp)?;
        fs::rename(&self.tmp, &dest).ctx("rename blob into", &dest)?;
        self.done = true;
        Ok((actual, size))
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temp_file_is_abandoned_when_unlocked_and_its_writer_gone() {
        let t = tempfile::tempdir().unwrap();
        // pid 0 names no process (/proc/0 does not exist).
        let dead = t.path().join("blob-0-1-0");
        std::fs::write(&dead, b"x").unwrap();
        assert!(abandoned(&dead, &File::open(&dead).unwrap()));
        // Ours, fresh and not locked yet: a writer about to lock it.
        let young = t.path().join(unique_name("blob-"));
        std::fs::write(&young, b"x").unwrap();
        assert!(!abandoned(&young, &File::open(&young).unwrap()));
        // Locked: live, whatever its name says.
        let held = File::open(&dead).unwrap();
        lock::hold(&held);
        assert!(!abandoned(&dead, &File::open(&dead).unwrap()));
        assert_eq!(clean_abandoned(t.path()).unwrap(), 0);
        drop(held);
        assert_eq!(clean_abandoned(t.path()).unwrap(), 1);
        assert!(!dead.exists() && young.exists());
    }
}
