//! Checks of single values (stage names, ports, signals, modes). A value
//! holding `$` is only checked after expansion, when it is known.

use crate::error::Problem;

fn deferred(value: &str) -> bool {
    value.contains('$')
}

/// Stage names are lowercased, as Docker does, then must match
/// `[a-z][a-z0-9-_.]*`.
pub(crate) fn stage_name(name: &str) -> Result<String, Problem> {
    let lower = name.to_ascii_lowercase();
    let mut chars = lower.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(lower)
    } else {
        Err(Problem::BadStageName(name.to_string()))
    }
}

/// `port[-port][/tcp|udp|sctp]`.
pub(crate) fn port(spec: String) -> Result<String, Problem> {
    if deferred(&spec) {
        return Ok(spec);
    }
    let (ports, proto) = spec.split_once('/').unwrap_or((&spec, "tcp"));
    if !matches!(proto.to_ascii_lowercase().as_str(), "tcp" | "udp" | "sctp") {
        return Err(Problem::value("port", &spec, format!("unknown protocol {proto:?} (tcp, udp or sctp)")));
    }
    let (low, high) = ports.split_once('-').unwrap_or((ports, ports));
    let num = |s: &str| s.parse::<u16>().ok().filter(|p| *p > 0);
    match (num(low), num(high)) {
        (Some(l), Some(h)) if l <= h => Ok(spec),
        (Some(_), Some(_)) => Err(Problem::value("port", &spec, "the range ends before it starts")),
        _ => Err(Problem::value("port", &spec, "expected a port number 1-65535 or a range such as 8000-8010")),
    }
}

pub(crate) fn volume(path: String) -> Result<String, Problem> {
    if path.trim().is_empty() {
        return Err(Problem::value("volume", &path, "a volume path can not be empty"));
    }
    Ok(path)
}

const SIGNALS: &[&str] = &[
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE", "ALRM",
    "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH",
    "IO", "POLL", "PWR", "SYS",
];

/// A signal name (`SIGTERM`, `TERM`, `SIGRTMIN+3`) or number.
pub(crate) fn signal(sig: String) -> Result<String, Problem> {
    if deferred(&sig) {
        return Ok(sig);
    }
    let upper = sig.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let realtime = |base: &str| {
        name.strip_prefix(base).is_some_and(|n| n.is_empty() || n.trim_start_matches(['+', '-']).parse::<u8>().is_ok())
    };
    let ok = sig.parse::<u8>().is_ok_and(|n| (1..=64).contains(&n))
        || SIGNALS.contains(&name)
        || realtime("RTMIN")
        || realtime("RTMAX");
    if ok {
        Ok(sig)
    } else {
        Err(Problem::value("signal", &sig, "expected a signal name such as SIGTERM or a number 1-64"))
    }
}

/// An octal mode such as `755` or `0644`, at most `07777`.
pub(crate) fn chmod(mode: &str) -> Result<Option<u32>, Problem> {
    if deferred(mode) {
        return Ok(None);
    }
    match u32::from_str_radix(mode, 8) {
        Ok(m) if m <= 0o7777 && !mode.starts_with('+') => Ok(Some(m)),
        _ => Err(Problem::BadChmod(mode.to_string())),
    }
}

/// Go's duration syntax, as HEALTHCHECK options use it: `1h2m3.5s`, `300ms`.
pub(crate) fn duration(text: &str) -> Option<std::time::Duration> {
    if text == "0" {
        return Some(std::time::Duration::ZERO);
    }
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let number: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_end..];
    }
    Some(std::time::Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_names() {
        assert_eq!(stage_name("Build-1.x_y").unwrap(), "build-1.x_y");
        assert!(stage_name("1build").is_err());
        assert!(stage_name("a/b").is_err());
    }

    #[test]
    fn ports() {
        for ok in ["80", "80/tcp", "53/UDP", "8000-8010", "1-2/sctp", "$PORT"] {
            assert!(port(ok.into()).is_ok(), "{ok}");
        }
        for bad in ["0", "70000", "80/xyz", "10-5", "http", ""] {
            assert!(port(bad.into()).is_err(), "{bad}");
        }
    }

    #[test]
    fn signals() {
        for ok in ["SIGTERM", "term", "9", "SIGRTMIN+3", "RTMAX"] {
            assert!(signal(ok.into()).is_ok(), "{ok}");
        }
        for bad in ["SIGFOO", "0", "65", "TERM9"] {
            assert!(signal(bad.into()).is_err(), "{bad}");
        }
    }

    #[test]
    fn chmod_is_octal() {
        assert_eq!(chmod("755").unwrap(), Some(0o755));
        assert_eq!(chmod("0644").unwrap(), Some(0o644));
        assert_eq!(chmod("$MODE").unwrap(), None);
        for bad in ["789", "u+x", "17777", "", "+7"] {
            assert!(chmod(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(duration("0"), Some(Duration::ZERO));
        assert_eq!(duration("10"), None);
        assert_eq!(duration("5x"), None);
        assert_eq!(duration(""), None);
    }
}
