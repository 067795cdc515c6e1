//! Signal names and numbers as `kill` accepts them (KILL, SIGKILL, 9).

use nix::sys::signal::Signal;

use crate::error::{Error, Result};

/// Parses a signal number as `kill` takes it: a name (see [`parse`]) or a
/// number, 0 included (it only checks the target exists, as kill(2)).
pub fn parse_number(s: &str) -> Result<i32> {
    match s.parse::<i32>() {
        Ok(0) => Ok(0),
        _ => parse(s).map(|sig| sig as i32),
    }
}

/// Parses "TERM", "SIGTERM", "sigterm" or "15".
pub fn parse(s: &str) -> Result<Signal> {
    let bad = || Error::InvalidArgument(format!("unknown signal {s:?}"));
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    name.parse::<Signal>().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_numbers() {
        assert_eq!(parse("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse("9").unwrap(), Signal::SIGKILL);
        assert!(parse("NOPE").is_err());
        assert!(parse("999").is_err());
        assert_eq!(parse_number("0").unwrap(), 0);
        assert_eq!(parse_number("KILL").unwrap(), 9);
    }
}
