//! Retries with exponential backoff for transient failures (5xx, dropped connections).

use crate::error::{ErrorKind, Result};
use std::future::Future;
use std::time::Duration;

pub(crate) const ATTEMPTS: u32 = 5;

/// Runs `op` until it succeeds, fails for good, or `ATTEMPTS` are used up.
pub(crate) async fn retry<T, F, Fut>(what: &str, mut on_retry: impl FnMut(u32, &str), mut op: F) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempt = 0;
    loop {
        match op(attempt).await {
            Ok(v) => return Ok(v),
            Err(e) if e.kind() == ErrorKind::Transient && attempt + 1 < ATTEMPTS => {
                attempt += 1;
                let wait = Duration::from_millis(100 << attempt.min(6));
                tracing::debug!("{what}: attempt {attempt} failed ({e}); retrying in {wait:?}");
                on_retry(attempt, &e.to_string());
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(e),
        }
    }
}
