use crate::Globals;
use std::process::ExitCode;
use wharf_pod::container::logs::{write_logs, LogOptions};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Follow the log output.
    #[arg(short, long)]
    follow: bool,
    /// Only lines since: RFC 3339 time, Unix seconds, or a duration (10m, 1h30m).
    #[arg(long)]
    since: Option<String>,
    /// Only lines before: same forms as --since.
    #[arg(long)]
    until: Option<String>,
    /// Number of lines from the end ("all" for every line).
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps.
    #[arg(short, long)]
    timestamps: bool,
    container: String,
}

/// Docker's time forms → RFC 3339 UTC with nanoseconds.
pub fn parse_time(s: &str) -> anyhow::Result<String> {
    use chrono::{DateTime, Utc};
    let fmt = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(fmt(t.with_timezone(&Utc)));
    }
    if let Ok(secs) = s.parse::<f64>() {
        let t = DateTime::from_timestamp(secs as i64, ((secs.fract()) * 1e9) as u32).unwrap_or_default();
        return Ok(fmt(t));
    }
    let mut total = 0f64;
    let mut num = String::new();
    for ch in s.chars() {
        if ch.is_ascii_digit() || ch == '.' {
            num.push(ch);
            continue;
        }
        let n: f64 = num.parse().map_err(|_| anyhow::anyhow!("invalid time {s:?}"))?;
        total += n * match ch {
            's' => 1.0,
            'm' => 60.0,
            'h' => 3600.0,
            _ => anyhow::bail!("invalid time {s:?}: use RFC 3339, Unix seconds or a duration like 10m"),
        };
        num.clear();
    }
    if !num.is_empty() || total == 0.0 {
        anyhow::bail!("invalid time {s:?}: use RFC 3339, Unix seconds or a duration like 10m");
    }
    Ok(fmt(Utc::now() - chrono::Duration::milliseconds((total * 1000.0) as i64)))
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<ExitCode> {
    let cs = wharf_pod::Containers::new(&g.root, &g.run_root);
    let c = cs.get(&a.container)?;
    let tail = match a.tail.as_str() {
        "all" | "-1" => None,
        n => Some(n.parse().map_err(|_| anyhow::anyhow!("invalid --tail {n:?}"))?),
    };
    let o = LogOptions {
        follow: a.follow,
        since: a.since.as_deref().map(parse_time).transpose()?,
        until: a.until.as_deref().map(parse_time).transpose()?,
        tail,
        timestamps: a.timestamps,
    };
    let out = std::io::stdout();
    let err = std::io::stderr();
    write_logs(&c, &o, &mut out.lock(), &mut err.lock())?;
    Ok(ExitCode::SUCCESS)
}
