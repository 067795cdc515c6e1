//! sha256 digests: hashing while streaming, and parsing untrusted digest strings.

use crate::error::{Error, Result};
use sha2::{Digest as _, Sha256};
use std::io::{self, Read, Write};

pub use oci_spec::image::Digest;

/// Parses a digest string, accepting only algorithms the store can verify.
pub fn parse(s: &str) -> Result<Digest> {
    let invalid = |reason: &str| Error::InvalidDigest { digest: s.to_string(), reason: reason.to_string() };
    let (algo, hex) = s.split_once(':').ok_or_else(|| invalid("must be sha256:HEX"))?;
    if algo != "sha256" {
        return Err(invalid("only sha256 is supported"));
    }
    if hex.len() != 64 || !hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(invalid("must be 64 lowercase hex characters"));
    }
    s.parse().map_err(|e| invalid(&format!("{e}")))
}

pub fn from_hasher(h: Sha256) -> Digest {
    let s = format!("sha256:{}", hex::encode(h.finalize()));
    s.parse().expect("a sha256 digest we formatted is valid")
}

pub fn of_bytes(b: &[u8]) -> Digest {
    let mut h = Sha256::new();
    h.update(b);
    from_hasher(h)
}

/// The hex part of a digest: the file name under `blobs/sha256/`.
pub fn hex(d: &Digest) -> &str {
    d.digest()
}

/// A reader that hashes and counts what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader { inner, hasher: Sha256::new(), count: 0 }
    }
    /// Reads the rest of the stream (tar padding after the end marker counts
    /// toward a diffID), then returns the digest and byte count.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((from_hasher(self.hasher), self.count))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W> {
    pub(crate) inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Sha256::new(), count: 0 }
    }
    pub fn count(&self) -> u64 {
        self.count
    }
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, from_hasher(self.hasher), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parse_rejects_bad_digests() {
        assert!(super::parse("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").is_ok());
        for bad in [
            "",
            "sha256:",
            "sha256:../../etc/passwd",
            "md5:abc",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        ] {
            assert!(super::parse(bad).is_err(), "{bad}");
        }
    }
}
