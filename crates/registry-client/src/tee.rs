//! Unpacking a layer while it downloads: each chunk written to the blob is
//! also handed, through a small bounded channel, to a blocking thread that
//! applies the layer into a temp snapshot. The snapshot is committed only
//! when its diffID matches (checked by `Snapshots::ensure`), so an early,
//! damaged or cut stream can never leave a wrong snapshot behind; the blob
//! keeps its own digest check. Memory stays bounded by the channel
//! (`DEPTH` chunks of at most hyper's read buffer, a few hundred KiB each).

use crate::error::{Error, Result};
use bytes::{Buf, Bytes};
use std::io::{self, Read};
use std::path::PathBuf;
use tokio::sync::mpsc;
use wharf_image::{Digest, Store};

/// Chunks in flight between the download and the unpacking thread.
const DEPTH: usize = 4;

pub(crate) struct Unpacker {
    tx: Option<mpsc::Sender<io::Result<Bytes>>>,
    job: tokio::task::JoinHandle<wharf_image::Result<PathBuf>>,
}

impl Unpacker {
    /// Starts unpacking the layer whose uncompressed digest is `diff`.
    pub(crate) fn start(store: &Store, diff: Digest) -> Self {
        let (tx, rx) = mpsc::channel(DEPTH);
        let snaps = store.snapshots().clone();
        let job = tokio::task::spawn_blocking(move || snaps.ensure(&diff, ChannelReader { rx, cur: Bytes::new() }));
        Unpacker { tx: Some(tx), job }
    }

    /// Passes the next chunk on. When the thread has stopped (a bad layer,
    /// or the snapshot already existed), chunks are dropped: `finish` says why.
    pub(crate) async fn feed(&mut self, chunk: Bytes) {
        if let Some(tx) = &self.tx {
            if tx.send(Ok(chunk)).await.is_err() {
                self.tx = None;
            }
        }
    }

    /// Ends the stream as a whole layer now; the future waits for the
    /// thread's answer (a download slot need not wait for it).
    pub(crate) fn end(mut self) -> impl std::future::Future<Output = Result<PathBuf>> + Send + 'static {
        self.tx = None;
        async move {
            let res = self.job.await.map_err(|e| Error::io("unpack layer".to_string(), io::Error::other(e)))?;
            Ok(res?)
        }
    }

    /// Ends the stream — as a whole layer when `complete`, else as a failed
    /// one, so nothing is committed — and waits for the thread's answer.
    pub(crate) async fn finish(mut self, complete: bool) -> Result<PathBuf> {
        if let Some(tx) = self.tx.take() {
            if !complete {
                let _ = tx.send(Err(io::Error::other("the download of this layer failed"))).await;
            }
        }
        let res = self.job.await.map_err(|e| Error::io("unpack layer".to_string(), io::Error::other(e)))?;
        Ok(res?)
    }
}

/// The receiving end as a blocking `Read`; a closed channel is the end of the layer.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur.advance(n);
        Ok(n)
    }
}
