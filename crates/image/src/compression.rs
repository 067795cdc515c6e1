//! Layer compression: chosen by media type, confirmed by the stream's magic.

use crate::error::{Error, Result};
use std::io::{self, BufRead, BufReader, Read};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

impl Compression {
    /// What a layer media type says, or `None` when it says nothing we know.
    pub fn from_media_type(mt: &str) -> Result<Option<Self>> {
        if mt.contains("encrypted") {
            return Err(Error::Unsupported(format!("encrypted layers ({mt}) are not supported")));
        }
        Ok(if mt.ends_with("+gzip") || mt.ends_with(".tar.gzip") {
            Some(Compression::Gzip)
        } else if mt.ends_with("+zstd") {
            Some(Compression::Zstd)
        } else if mt.ends_with(".tar") || mt.ends_with("diff.tar") {
            Some(Compression::None)
        } else {
            None
        })
    }

    pub fn sniff(head: &[u8]) -> Self {
        if head.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    pub fn layer_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// Wraps `r` in the decompressor its magic bytes call for. The magic decides:
/// registries and archives mislabel layers often enough that the type is a hint.
pub fn decompress<'a, R: Read + 'a>(r: R) -> Result<(Compression, Box<dyn Read + 'a>)> {
    let mut br = BufReader::with_capacity(256 * 1024, r);
    let head = br.fill_buf().map_err(|e| Error::other("read layer", e))?;
    let c = Compression::sniff(head);
    let out: Box<dyn Read + 'a> = match c {
        Compression::None => Box::new(br),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(br)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(br).map_err(|e| Error::other("start zstd decoder", e))?)
        }
    };
    Ok((c, out))
}

/// Sniffs the compression of a file without consuming it.
pub fn sniff_file(f: &mut std::fs::File) -> io::Result<Compression> {
    use std::io::{Seek, SeekFrom};
    let mut head = [0u8; 4];
    let n = f.read(&mut head)?;
    f.seek(SeekFrom::Start(0))?;
    Ok(Compression::sniff(&head[..n]))
}
