//! HEALTHCHECK: `NONE`, or `CMD` with timing options in Go's duration syntax.

use std::time::Duration;

use super::flags::{Flags, Kind};
use super::{command, values, HealthCheck, Healthcheck};
use crate::error::Problem;
use crate::parser::{Args, Node};

const FLAGS: &[(&str, Kind)] = &[
    ("interval", Kind::Value),
    ("timeout", Kind::Value),
    ("start-period", Kind::Value),
    ("start-interval", Kind::Value),
    ("retries", Kind::Value),
];

pub(crate) fn parse(node: &Node) -> Result<Healthcheck, Problem> {
    let Args::Health { kind, command: cmd } = &node.args else {
        return Err(Problem::args("healthcheck", "NONE or CMD followed by a command"));
    };
    match kind.to_ascii_uppercase().as_str() {
        "NONE" => {
            if !node.flags.is_empty() || **cmd != Args::Empty {
                return Err(Problem::Syntax("HEALTHCHECK NONE takes no arguments and no options".into()));
            }
            Ok(Healthcheck::Disable)
        }
        "CMD" => {
            let flags = Flags::parse("healthcheck", &node.flags, FLAGS)?;
            let test = command("healthcheck cmd", cmd)?;
            Ok(Healthcheck::Check(HealthCheck {
                test,
                interval: duration(&flags, "interval")?,
                timeout: duration(&flags, "timeout")?,
                start_period: duration(&flags, "start-period")?,
                start_interval: duration(&flags, "start-interval")?,
                retries: retries(&flags)?,
            }))
        }
        _ => Err(Problem::Syntax(format!("HEALTHCHECK: unknown type {kind:?}: expected CMD or NONE"))),
    }
}

fn duration(flags: &Flags, name: &'static str) -> Result<Option<Duration>, Problem> {
    let Some(text) = flags.value(name) else { return Ok(None) };
    let what = match name {
        "interval" => "--interval",
        "timeout" => "--timeout",
        "start-period" => "--start-period",
        _ => "--start-interval",
    };
    let d = values::duration(&text)
        .ok_or_else(|| Problem::value(what, &text, "expected a duration such as 30s or 1m30s"))?;
    // Docker's rule: zero means "the default"; anything else is at least 1ms.
    if !d.is_zero() && d < Duration::from_millis(1) {
        return Err(Problem::value(what, &text, "must be 0 or at least 1ms"));
    }
    Ok(Some(d))
}

fn retries(flags: &Flags) -> Result<Option<u32>, Problem> {
    let Some(text) = flags.value("retries") else { return Ok(None) };
    match text.parse::<i64>() {
        Ok(n) if n < 0 => Err(Problem::value("--retries", &text, "can not be negative")),
        Ok(n) => u32::try_from(n).map(Some).map_err(|_| Problem::value("--retries", &text, "too large")),
        Err(_) => Err(Problem::value("--retries", &text, "expected a whole number")),
    }
}
