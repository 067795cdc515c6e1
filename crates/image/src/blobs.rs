//! Content-addressed blobs under `blobs/sha256/`, written through `ingest/`.
//!
//! A blob becomes visible only by rename after it was hashed, sized and
//! fsynced, so a blob under `blobs/` always matches its name. A pull batches
//! that: `BlobWriter::verify` leaves a `PendingBlob` whose writeback has
//! started, and `Blobs::publish` fsyncs, renames and fsyncs the directory
//! for all of an image's layers at once.

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
            kicked: 0,
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
    /// Bytes already handed to the kernel's writeback.
    kicked: u64,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out()?.write(buf)?;
        self.kick_writeback();
        Ok(n)
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

    /// Every `WRITEBACK_STEP` bytes, starts writing the last step to disk,
    /// so the disk works while the network does and the final fsync of a
    /// large blob has little left to wait for.
    fn kick_writeback(&mut self) {
        let Some(out) = &self.out else { return };
        let written = out.count();
        if written >= self.kicked + WRITEBACK_STEP {
            start_writeback(out.inner.get_ref(), self.kicked, written - self.kicked);
            self.kicked = written;
        }
    }

    /// Verifies, fsyncs and renames the blob into place.
    pub fn commit(self, expected: Option<&Digest>, expected_size: Option<u64>) -> Result<(Digest, u64)> {
        let (actual, size, pending) = self.verify(expected, expected_size)?;
        if let Some(mut p) = pending {
            p.file.sync_all().ctx("fsync", &p.tmp)?;
            p.rename()?;
        }
        Ok((actual, size))
    }

    /// Verifies the blob and starts writing it to disk without waiting, but
    /// does not make it visible: [`Blobs::publish`] does that for a batch
    /// with one wait for the disk. `None` when the same blob is stored already.
    pub fn verify(
        mut self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<(Digest, u64, Option<PendingBlob>)> {
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
            return Ok((actual, size, None)); // same content already stored; drop removes the temp
        }
        start_writeback(&file, 0, 0);
        self.done = true; // the temp file is the PendingBlob's now
        let tmp = std::mem::take(&mut self.tmp);
        let pending = PendingBlob { file, tmp, dest, digest: actual.clone(), published: false };
        Ok((actual, size, Some(pending)))
    }
}

/// Asks the kernel to start writing `f`'s data now (`sync_file_range`), so a
/// later fsync finds it written: a batch of blobs then costs about one wait.
/// `len` 0 means to the end of the file.
fn start_writeback(f: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(off), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else { return };
    // SAFETY: a plain syscall on an fd we own; it reads no memory of ours.
    let _ = unsafe { libc::sync_file_range(f.as_raw_fd(), off, len, libc::SYNC_FILE_RANGE_WRITE) };
}

const WRITEBACK_STEP: u64 = 8 << 20;

/// A verified blob in `ingest/`, not yet visible; removed on drop unless published.
pub struct PendingBlob {
    file: File,
    tmp: PathBuf,
    dest: PathBuf,
    digest: Digest,
    published: bool,
}

impl PendingBlob {
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Its content so far, to read before it is published.
    pub fn open(&self) -> Result<File> {
        File::open(&self.tmp).ctx("open", &self.tmp)
    }

    fn rename(&mut self) -> Result<()> {
        fs::set_permissions(&self.tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644)).ctx("chmod", &self.tmp)?;
        fs::rename(&self.tmp, &self.dest).ctx("rename blob into", &self.dest)?;
        self.published = true;
        Ok(())
    }
}

impl Drop for PendingBlob {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Blobs {
    /// Makes verified blobs visible: every file is fsynced first (their
    /// writeback already started), then renamed into place, then the
    /// directory is fsynced. So a name under `blobs/` never shows content a
    /// crash could lose, and once this returns an index entry may point at them.
    /// Stops at the first error; the blobs published so far are returned with it.
    pub fn publish(&self, pending: Vec<PendingBlob>) -> std::result::Result<Vec<Digest>, (Vec<Digest>, Error)> {
        for p in &pending {
            if let Err(e) = p.file.sync_all().ctx("fsync", &p.tmp) {
                return Err((Vec::new(), e));
            }
        }
        let mut done = Vec::new();
        for mut p in pending {
            if let Err(e) = p.rename() {
                return Err((done, e));
            }
            done.push(p.digest.clone());
        }
        match File::open(&self.dir).and_then(|d| d.sync_all()) {
            Ok(()) => Ok(done),
            Err(e) => Err((done, Error::io("fsync", &self.dir, e))),
        }
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

    fn pending(b: &Blobs, data: &[u8]) -> (Digest, PendingBlob) {
        let mut w = b.writer().unwrap();
        w.write_all(data).unwrap();
        let (d, size, p) = w.verify(None, Some(data.len() as u64)).unwrap();
        assert_eq!(size, data.len() as u64);
        (d, p.expect("a new blob is pending"))
    }

    // Pulled layers are batched: nothing may be visible under blobs/ before publish.
    #[test]
    fn pending_blobs_are_invisible_until_published_and_removed_if_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let b = Blobs::new(dir.path());
        b.init().unwrap();
        let (d1, p1) = pending(&b, b"one");
        let (d2, p2) = pending(&b, b"two");
        assert!(!b.exists(&d1) && !b.exists(&d2));
        let mut got = Vec::new();
        p1.open().unwrap().read_to_end(&mut got).unwrap();
        assert_eq!(got, b"one", "readable before it is published");
        let (d3, p3) = pending(&b, b"three");
        drop(p3);
        assert_eq!(b.publish(vec![p1, p2]).unwrap(), vec![d1.clone(), d2.clone()]);
        assert_eq!(b.read(&d1, 10).unwrap(), b"one");
        assert_eq!(b.read(&d2, 10).unwrap(), b"two");
        assert!(!b.exists(&d3));
        assert_eq!(std::fs::read_dir(b.ingest_dir()).unwrap().count(), 0, "temp files left behind");
        let mut w = b.writer().unwrap();
        w.write_all(b"one").unwrap();
        assert!(w.verify(None, None).unwrap().2.is_none(), "a stored blob is not pending again");
        let mut w = b.writer().unwrap();
        w.write_all(b"four").unwrap();
        assert!(w.verify(Some(&d1), None).is_err(), "digest checked before anything is pending");
        assert_eq!(std::fs::read_dir(b.ingest_dir()).unwrap().count(), 0);
    }
}
