//! Progress events, for a display the CLI draws.

use std::sync::Arc;

#[derive(Debug, Clone)]
pub enum Progress {
    /// A blob transfer begins (`size` in bytes).
    Start { digest: String, size: u64 },
    /// `done` of `size` bytes transferred so far.
    Bytes { digest: String, done: u64, size: u64 },
    /// Finished; `how` says what happened: "downloaded", "exists", "mounted", "pushed", "unpacked".
    Done { digest: String, how: &'static str },
    /// A retry after a transient failure.
    Retry { digest: String, attempt: u32, reason: String },
}

pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

pub fn silent() -> ProgressFn {
    Arc::new(|_| {})
}
