//! ADD of a local archive: recognised by content, as Docker does (a
//! compressed stream whose content starts with a valid tar header), then
//! unpacked with the image store's hardened layer code into a temp dir.

use super::{LayerError, Result};
use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek};
use std::path::Path;

const BLOCK: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Plain,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
}

fn sniff(head: &[u8]) -> Format {
    if head.starts_with(&[0x1f, 0x8b]) {
        Format::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Format::Zstd
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Format::Xz
    } else if head.starts_with(b"BZh") {
        Format::Bzip2
    } else {
        Format::Plain
    }
}

/// Whether the first bytes could start an archive ADD would unpack (cheap:
/// for cache keys, where decompressing is not worth it).
pub(crate) fn looks_like_archive(path: &Path) -> Result<bool> {
    let mut head = Vec::with_capacity(BLOCK);
    File::open(path)
        .map_err(LayerError::io("open", path))?
        .take(BLOCK as u64)
        .read_to_end(&mut head)
        .map_err(LayerError::io("read", path))?;
    Ok(sniff(&head) != Format::Plain || is_tar_header(&head))
}

/// The decompressed tar stream of `path`, or `None` when it is not an archive.
pub(crate) fn open_tar(path: &Path) -> Result<Option<Box<dyn Read>>> {
    let mut f = File::open(path).map_err(LayerError::io("open", path))?;
    let mut head = [0u8; 6];
    let n = read_full(&mut f, &mut head).map_err(LayerError::io("read", path))?;
    f.rewind().map_err(LayerError::io("read", path))?;
    let r: Box<dyn Read> = match sniff(&head[..n]) {
        Format::Plain => Box::new(f),
        Format::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(f))),
        Format::Zstd => Box::new(zstd::Decoder::new(f).map_err(LayerError::io("read zstd archive", path))?),
        Format::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(BufReader::new(f))),
        Format::Xz => Box::new(xz_to_temp(f, path)?),
    };
    peek_tar(r).map_err(LayerError::io("read archive", path))
}

/// lzma-rs decodes from a reader into a writer only: spool to an unnamed temp file.
fn xz_to_temp(f: File, path: &Path) -> Result<File> {
    let mut tmp = tempfile::tempfile().map_err(LayerError::io("create temp file for", path))?;
    lzma_rs::xz_decompress(&mut BufReader::new(f), &mut tmp).map_err(|e| LayerError::Source {
        pattern: path.display().to_string(),
        reason: format!("invalid xz archive: {e}"),
    })?;
    tmp.rewind().map_err(LayerError::io("read", path))?;
    Ok(tmp)
}

/// Reads the first block; the stream is a tar when it is a valid header.
fn peek_tar(mut r: Box<dyn Read>) -> io::Result<Option<Box<dyn Read>>> {
    let mut head = vec![0u8; BLOCK];
    let n = match read_full(&mut r, &mut head) {
        Ok(n) => n,
        // A stream that looked compressed but is not: a plain file to copy.
        Err(e) if matches!(e.kind(), io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData) => return Ok(None),
        Err(e) => return Err(e),
    };
    head.truncate(n);
    if !is_tar_header(&head) {
        return Ok(None);
    }
    Ok(Some(Box::new(Cursor::new(head).chain(r))))
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A tar header block: its checksum (unsigned sum with the field as spaces) matches.
fn is_tar_header(b: &[u8]) -> bool {
    if b.len() < BLOCK || b[0] == 0 {
        return false;
    }
    let field = &b[148..156];
    let digits: String = field
        .iter()
        .skip_while(|&&c| c == b' ')
        .take_while(|c| (b'0'..=b'7').contains(c))
        .map(|&c| c as char)
        .collect();
    let Ok(want) = u32::from_str_radix(&digits, 8) else { return false };
    let sum: u32 =
        b[..BLOCK].iter().enumerate().map(|(i, &c)| if (148..156).contains(&i) { 32 } else { u32::from(c) }).sum();
    sum == want
}

/// Unpacks the tar stream `r` into the empty directory `dir`.
pub(crate) fn unpack_into(r: Box<dyn Read>, dir: &Path, what: &Path) -> Result<()> {
    wharf_image::unpack::apply_layer(r, dir).map(|_| ()).map_err(|e| LayerError::Source {
        pattern: what.display().to_string(),
        reason: format!("cannot unpack archive: {e}"),
    })
}
