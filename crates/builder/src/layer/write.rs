//! A layer tar stream → a compressed blob in the store, hashed both ways as
//! it streams (diffID of the tar, digest of the blob), never whole in memory.

use super::{LayerError, Result, TarOptions};
use gzp::deflate::Gzip;
use gzp::par::compress::ParCompressBuilder;
use gzp::ZWriter;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use wharf_image::digest::HashingWriter;
use wharf_image::spec::{Descriptor, MediaType};
use wharf_image::{Digest, Store};

/// gzip level: Go's and pigz's default, what Docker writes.
const GZIP_LEVEL: u32 = 6;
/// zstd level: the zstd CLI's default.
const ZSTD_LEVEL: i32 = 3;
/// gzp compresses blocks of this size in parallel, each primed with the
/// last 32 KiB of the one before. The output depends on this and on the
/// level, never on the thread count, so it is fixed: blobs stay reproducible
/// across machines.
const GZIP_BLOCK: usize = 1024 * 1024;
/// An empty layer: only the end-of-archive marker.
const EMPTY_TAR_LEN: u64 = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LayerCompression {
    #[default]
    Gzip,
    Zstd,
}

/// A layer in the store.
#[derive(Debug, Clone)]
pub struct WrittenLayer {
    /// The compressed blob: media type, digest, size.
    pub descriptor: Descriptor,
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// The tar holds no entry (a step that changed nothing).
    pub empty: bool,
}

/// Streams the tar `produce` writes into a compressed blob, then unpacks it
/// as the snapshot of its diffID so that it can be a lower layer at once.
pub fn write_layer(
    store: &Store,
    compression: LayerCompression,
    produce: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
) -> Result<WrittenLayer> {
    // Shared gc lock: the blob must not be collected before it is referenced.
    let _content = store.content_lock()?;
    let layer = compress(store, compression, produce)?;
    unpack_snapshot(store, &layer)?;
    Ok(layer)
}

/// A RUN step's layer: the tar of the overlay upper dir `upper` into a
/// compressed blob, then `upper` itself moved into place as its snapshot
/// (see [`super::adopt`]) — or, when it cannot be (another filesystem than
/// the store), the blob unpacked as [`write_layer`] does. `upper` is gone
/// or changed afterwards either way.
pub fn write_upper_layer(
    store: &Store,
    compression: LayerCompression,
    upper: &Path,
    opts: &TarOptions,
) -> Result<WrittenLayer> {
    let _content = store.content_lock()?;
    let start = std::time::Instant::now();
    let layer = compress(store, compression, &mut |w| super::upper_to_tar(upper, w, opts))?;
    let compressed = start.elapsed();
    if store.snapshots().exists(&layer.diff_id) {
        return Ok(layer);
    }
    let adopted = adopt(store, &layer.diff_id, upper, opts).unwrap_or_else(|e| {
        tracing::debug!("{}: {e}", upper.display());
        false
    });
    if !adopted {
        unpack_snapshot(store, &layer)?;
    }
    tracing::debug!(
        "layer {}: tar+compress {compressed:?}, {} {:?}",
        layer.diff_id,
        if adopted { "upper dir adopted as its snapshot" } else { "unpacked" },
        start.elapsed() - compressed
    );
    Ok(layer)
}

/// Makes `upper` the snapshot of `diff_id`; false if it cannot be (an error
/// too leaves the blob to be unpacked).
fn adopt(store: &Store, diff_id: &Digest, upper: &Path, opts: &TarOptions) -> Result<bool> {
    if !same_fs(upper, &store.snapshots().path(diff_id)) || !super::adopt::upper_to_snapshot(upper, opts)? {
        return Ok(false);
    }
    Ok(store.snapshots().adopt(diff_id, upper)?.is_some())
}

/// Whether `dir` is on the filesystem that holds `dest`'s parent: else a
/// rename cannot move it there (the run root is often a tmpfs).
fn same_fs(dir: &Path, dest: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    dest.parent().and_then(dev).is_some_and(|d| dev(dir) == Some(d))
}

/// The blob of the tar `produce` writes, hashed both ways.
fn compress(
    store: &Store,
    compression: LayerCompression,
    produce: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
) -> Result<WrittenLayer> {
    let blob = store.blobs().writer()?;
    let (blob, diff_id, tar_len) = match compression {
        LayerCompression::Gzip => gzip(blob, threads(), produce)?,
        LayerCompression::Zstd => zstd(blob, produce)?,
    };
    let (digest, size) = blob.commit(None, None)?;
    let media_type = match compression {
        LayerCompression::Gzip => MediaType::ImageLayerGzip,
        LayerCompression::Zstd => MediaType::ImageLayerZstd,
    };
    Ok(WrittenLayer { descriptor: Descriptor::new(media_type, size, digest), diff_id, empty: tar_len == EMPTY_TAR_LEN })
}

/// Unpacks the layer's blob as the snapshot of its diffID.
fn unpack_snapshot(store: &Store, layer: &WrittenLayer) -> Result<()> {
    let blob = store.blobs().open(layer.descriptor.digest())?;
    store.snapshots().ensure(&layer.diff_id, std::io::BufReader::with_capacity(256 * 1024, blob))?;
    Ok(())
}

type Produced<W> = (W, Digest, u64);

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn gzip<W: Write + Send + 'static>(
    out: W,
    threads: usize,
    produce: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
) -> Result<Produced<W>> {
    let gz_err = |e: gzp::GzpError| LayerError::Write(std::io::Error::other(e));
    // gzp panics when its writer fails (unwraps in its error paths and
    // Drop): it is handed a writer that never fails, and the first error is
    // kept aside and reported once gzp is done.
    let failed = Arc::new(AtomicBool::new(false));
    let sink = Sticky { inner: out, err: None, failed: failed.clone() };
    let gz = ParCompressBuilder::<Gzip>::new()
        .num_threads(threads)
        .map_err(gz_err)?
        .buffer_size(GZIP_BLOCK)
        .map_err(gz_err)?
        .compression_level(gzp::Compression::new(GZIP_LEVEL))
        .from_writer(sink);
    let mut tar = HashingWriter::new(StopOnFailure { inner: gz, failed });
    let produced = produce(&mut tar).and_then(|()| tar.flush().map_err(LayerError::Write));
    let (StopOnFailure { inner: mut gz, .. }, diff_id, len) = tar.finish();
    let finished = gz.finish().map_err(gz_err);
    let sink = finished?;
    if let Some(e) = sink.err {
        return Err(LayerError::Write(e));
    }
    produced?;
    Ok((sink.inner, diff_id, len))
}

/// Remembers the first write error and swallows what follows.
struct Sticky<W> {
    inner: W,
    err: Option<std::io::Error>,
    failed: Arc<AtomicBool>,
}

impl<W: Write> Write for Sticky<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.err.is_none() {
            if let Err(e) = self.inner.write_all(buf) {
                self.err = Some(e);
                self.failed.store(true, Ordering::Relaxed);
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.err.is_none() {
            if let Err(e) = self.inner.flush() {
                self.err = Some(e);
                self.failed.store(true, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

/// Stops the producer early once the blob can no longer be written.
struct StopOnFailure<W> {
    inner: W,
    failed: Arc<AtomicBool>,
}

impl<W: Write> Write for StopOnFailure<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.failed.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("the layer blob could not be written"));
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn zstd<W: Write>(out: W, produce: &mut dyn FnMut(&mut dyn Write) -> Result<()>) -> Result<Produced<W>> {
    // Single-threaded: the frame layout then depends on the input alone.
    let enc = zstd::Encoder::new(out, ZSTD_LEVEL).map_err(LayerError::Write)?;
    let mut tar = HashingWriter::new(enc);
    produce(&mut tar)?;
    let (enc, diff_id, len) = tar.finish();
    let out = enc.finish().map_err(LayerError::Write)?;
    Ok((out, diff_id, len))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    fn sample() -> Vec<u8> {
        (0..1_500_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 17) as u8).collect()
    }

    #[test]
    fn gzip_output_does_not_depend_on_the_thread_count() {
        let data = sample();
        let run = |threads| {
            let (out, diff_id, len) = super::gzip(Vec::new(), threads, &mut |w: &mut dyn Write| {
                w.write_all(&data).map_err(super::LayerError::Write)
            })
            .unwrap();
            assert_eq!(len, data.len() as u64);
            (out, diff_id)
        };
        let (one, d1) = run(1);
        let (three, d3) = run(3);
        assert_eq!(d1, d3);
        assert!(one == three, "gzip bytes differ between 1 and 3 threads");
        // No file name, mtime 0: a header that only depends on the settings.
        assert_eq!(&one[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&one[..]).read_to_end(&mut back).unwrap();
        assert!(back == data);
    }

    /// A disk that fills up after `room` bytes.
    struct Full {
        room: usize,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if buf.len() > self.room {
                return Err(std::io::Error::other("no space left on device"));
            }
            self.room -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn gzip_errors_are_returned_not_panics() {
        let data = sample();
        let mut produce = |w: &mut dyn Write| {
            for _ in 0..3 {
                w.write_all(&data).map_err(super::LayerError::Write)?;
            }
            Ok(())
        };
        let size = super::gzip(Vec::new(), 2, &mut produce).unwrap().0.len();
        for room in [0, size / 3, size - 1] {
            let Err(err) = super::gzip(Full { room }, 2, &mut produce) else { panic!("room {room}: no error") };
            assert!(err.to_string().contains("no space left"), "room {room}: {err}");
        }
        let mut failing = |w: &mut dyn Write| {
            w.write_all(&data).map_err(super::LayerError::Write)?;
            Err(super::LayerError::Write(std::io::Error::other("producer failed")))
        };
        let Err(err) = super::gzip(Vec::new(), 2, &mut failing) else { panic!("no error") };
        assert!(err.to_string().contains("producer failed"), "{err}");
    }
}
