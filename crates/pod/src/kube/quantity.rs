//! Kubernetes quantities (`500m`, `0.5`, `128Mi`, `1G`, `1e3`) as numbers.

/// A quantity as a number of units (`128Mi` → 134217728.0, `500m` → 0.5).
pub(crate) fn parse(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    (n >= 0.0).then_some(n * mult)
}

/// Bytes of a memory quantity (rounded up, as the kubelet does).
pub(crate) fn bytes(q: &str) -> Option<i64> {
    parse(q).map(|b| b.ceil() as i64)
}

/// Millicores of a CPU quantity.
pub(crate) fn millis(q: &str) -> Option<u64> {
    parse(q).map(|c| (c * 1000.0).ceil() as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn quantities() {
        assert_eq!(super::bytes("128Mi"), Some(128 << 20));
        assert_eq!(super::bytes("1G"), Some(1_000_000_000));
        assert_eq!(super::bytes("1e3"), Some(1000));
        assert_eq!(super::bytes("4096"), Some(4096));
        assert_eq!(super::millis("500m"), Some(500));
        assert_eq!(super::millis("0.25"), Some(250));
        assert_eq!(super::millis("2"), Some(2000));
        assert_eq!(super::bytes("12XB"), None);
        assert_eq!(super::bytes("-1"), None);
    }
}
