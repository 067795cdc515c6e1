//! Transfer progress: a bar per blob on a terminal (indicatif), one plain
//! line per blob event otherwise, nothing with `-q`.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use wharf_registry::{Progress, ProgressFn};

fn short(d: &str) -> String {
    d.strip_prefix("sha256:").unwrap_or(d).chars().take(12).collect()
}

fn verb(how: &str, pulling: bool) -> &'static str {
    match how {
        "exists" if pulling => "Already exists",
        "exists" => "Layer already exists",
        "mounted" => "Mounted from another repository",
        "pushed" => "Pushed",
        "downloaded" => "Download complete",
        "unpacked" => "Pull complete",
        _ => "Done",
    }
}

/// The progress callback for a pull (`pulling`) or push, as the output allows.
pub fn reporter(quiet: bool, pulling: bool) -> ProgressFn {
    if quiet {
        return Arc::new(|_| {});
    }
    if !std::io::stderr().is_terminal() {
        return Arc::new(move |p| match p {
            Progress::Start { digest, size } => {
                let what = if pulling { "Downloading" } else { "Pushing" };
                eprintln!("{}: {what} {}", short(&digest), crate::output::size(size));
            }
            Progress::Done { digest, how } => eprintln!("{}: {}", short(&digest), verb(how, pulling)),
            Progress::Retry { digest, attempt, reason } => {
                eprintln!("{}: retry {attempt} after: {reason}", short(&digest))
            }
            Progress::Bytes { .. } => {}
        });
    }
    let multi = MultiProgress::new();
    let bars: Mutex<HashMap<String, ProgressBar>> = Mutex::new(HashMap::new());
    let style = ProgressStyle::with_template("{prefix}: {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    Arc::new(move |p| {
        let mut bars = bars.lock().unwrap_or_else(|e| e.into_inner());
        let bar = |bars: &mut HashMap<String, ProgressBar>, d: &str, size: u64| {
            bars.entry(d.to_string())
                .or_insert_with(|| {
                    let b = multi.add(ProgressBar::new(size));
                    b.set_style(style.clone());
                    b.set_prefix(short(d));
                    b
                })
                .clone()
        };
        match p {
            Progress::Start { digest, size } => {
                bar(&mut bars, &digest, size).set_message(if pulling { "Downloading" } else { "Pushing" })
            }
            Progress::Bytes { digest, done, size } => bar(&mut bars, &digest, size).set_position(done),
            Progress::Retry { digest, attempt, .. } => {
                bar(&mut bars, &digest, 0).set_message(format!("Retrying ({attempt})"))
            }
            Progress::Done { digest, how } => {
                let b = bar(&mut bars, &digest, 0);
                b.finish_with_message(verb(how, pulling));
            }
        }
    })
}
