//! What a build reports while it runs, as events: the CLI turns them into
//! BuildKit-style plain lines or a live terminal view.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// One thing that happened. `id` numbers a step within the build; steps of
/// stages that run at the same time interleave, the id tells them apart.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// A step starts: `[stage index/total] text`.
    Step { id: usize, stage: &'a str, index: usize, total: usize, text: &'a str },
    /// The step's result came from the cache.
    Cached { id: usize },
    /// The step ran and finished after `secs`.
    Done { id: usize, secs: f64 },
    /// A line a RUN step printed (stdout or stderr), as it printed it.
    Output { id: usize, line: &'a str },
    /// Anything else worth saying (pulls, warnings).
    Note(&'a str),
}

/// The callback events go to.
#[derive(Clone)]
pub struct Progress(pub Arc<dyn Fn(&Event) + Send + Sync>);

impl Progress {
    pub fn new(f: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        Progress(Arc::new(f))
    }

    pub fn emit(&self, e: &Event) {
        (self.0)(e)
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress(..)")
    }
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// A fresh step id.
pub(crate) fn next_id() -> usize {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}
