//! Human output: sizes, ages and tables as Docker prints them.

/// Docker's sizes: SI units, three significant digits (`4.26MB`).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        return format!("{bytes}B");
    }
    // Three significant digits, trailing zeros dropped: 1.04MB, 12.3kB, 210MB.
    let decimals = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[i])
}

/// "3 minutes ago", from an RFC 3339 timestamp.
pub fn age(created: Option<&str>) -> String {
    let Some(t) = created.and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok()) else {
        return "N/A".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds().max(0);
    let (n, unit) = match secs {
        s if s < 60 => return "Less than a minute ago".into(),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86400 => (s / 3600, "hour"),
        s if s < 86400 * 14 => (s / 86400, "day"),
        s if s < 86400 * 60 => (s / (86400 * 7), "week"),
        s if s < 86400 * 730 => (s / (86400 * 30), "month"),
        s => (s / (86400 * 365), "year"),
    };
    let unit = if n == 1 { unit.to_string() } else { format!("{unit}s") };
    let n = if n == 1 && unit == "hour" {
        "About an".to_string()
    } else if n == 1 {
        "1".to_string()
    } else {
        n.to_string()
    };
    format!("{n} {unit} ago")
}

/// Prints rows as left-aligned columns separated by three spaces.
pub fn table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..cols).map(|c| rows.iter().map(|r| r.get(c).map_or(0, |s| s.chars().count())).max().unwrap_or(0)).collect();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[c]));
            }
        }
        println!("{}", line.trim_end());
    }
}

/// The 12-hex-character short form of an ID.
pub fn short_id(id: &str) -> String {
    id.strip_prefix("sha256:").unwrap_or(id).chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::size(999), "999B");
        assert_eq!(super::size(1_040_000), "1.04MB");
        assert_eq!(super::size(210_000_000), "210MB");
        assert_eq!(super::size(12_300), "12.3kB");
    }
}
