//! Plain HTTP(S) downloads for `ADD <url>`: streamed to a file while
//! hashed, checked against an expected digest, never whole in memory.

use crate::error::{Error, Result};
use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};
use std::io::Write;
use std::path::Path;

/// What a download fetched.
#[derive(Debug, Clone)]
pub struct Downloaded {
    pub digest: String,
    pub size: u64,
    /// The server's `Last-Modified`, as seconds since the epoch.
    pub modified: Option<i64>,
}

/// Fetches `url` into `dest`; with `expected` (`sha256:…`), a mismatch is an
/// error and `dest` is removed.
pub async fn download(url: &str, dest: &Path, expected: Option<&str>) -> Result<Downloaded> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client =
        reqwest::Client::builder().user_agent("wharf").build().map_err(|e| Error::InvalidInput(e.to_string()))?;
    let res = client.get(url).send().await.map_err(|e| Error::Registry {
        registry: url.into(),
        reason: e.to_string(),
        transient: true,
    })?;
    if !res.status().is_success() {
        return Err(Error::Registry {
            registry: url.into(),
            reason: format!("answered {}", res.status()),
            transient: res.status().is_server_error(),
        });
    }
    let modified = res
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .map(|t| t.timestamp());
    let mut f = std::fs::File::create(dest).map_err(|e| Error::io(format!("create {}", dest.display()), e))?;
    let mut h = Sha256::new();
    let mut size = 0u64;
    let mut body = res.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| Error::Registry { registry: url.into(), reason: e.to_string(), transient: true })?;
        h.update(&chunk);
        size += chunk.len() as u64;
        f.write_all(&chunk).map_err(|e| Error::io(format!("write {}", dest.display()), e))?;
    }
    let digest = format!("sha256:{}", hex::encode(h.finalize()));
    if let Some(want) = expected {
        if want != digest {
            let _ = std::fs::remove_file(dest);
            return Err(Error::DigestMismatch {
                what: format!("ADD {url} --checksum"),
                expected: want.into(),
                actual: digest,
            });
        }
    }
    Ok(Downloaded { digest, size, modified })
}
