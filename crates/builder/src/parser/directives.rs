//! Parser directives (`# escape=`, `# syntax=`): only at the very top of the
//! file; the first line that is not one ends the search, as in BuildKit.

use crate::error::Problem;

pub(crate) struct Directives {
    pub escape: char,
    /// `# check=skip=A,B;error=true`: BuildKit's lint configuration.
    pub check: Option<String>,
    done: bool,
    seen: Vec<String>,
}

/// What a directive line asks for, beyond changing the escape character.
pub(crate) enum Found {
    Nothing,
    /// Accepted but without effect here; the caller records a warning.
    Ignored {
        name: String,
        value: String,
    },
}

impl Directives {
    pub fn new() -> Self {
        Directives { escape: '\\', check: None, done: false, seen: Vec::new() }
    }

    /// Looks at one physical line while directives are still possible.
    pub fn check(&mut self, line: &str) -> Result<Found, Problem> {
        if self.done {
            return Ok(Found::Nothing);
        }
        let Some((name, value)) = split_directive(line) else {
            self.done = true;
            return Ok(Found::Nothing);
        };
        let name = name.to_ascii_lowercase();
        if !matches!(name.as_str(), "escape" | "syntax" | "check") {
            // An unknown directive is a plain comment and ends the directives.
            self.done = true;
            return Ok(Found::Nothing);
        }
        if self.seen.contains(&name) {
            return Err(Problem::DuplicateDirective(name));
        }
        self.seen.push(name.clone());
        if name == "escape" {
            self.escape = match value {
                "\\" => '\\',
                "`" => '`',
                other => return Err(Problem::BadEscape(other.to_string())),
            };
            return Ok(Found::Nothing);
        }
        if name == "check" {
            self.check = Some(value.to_string());
            return Ok(Found::Nothing);
        }
        Ok(Found::Ignored { name, value: value.to_string() })
    }
}

/// `# name = value` with a name of letters and digits starting with a letter.
fn split_directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let end = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
    let name = &rest[..end];
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = rest[end..].trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_forms() {
        assert_eq!(split_directive("# escape=`"), Some(("escape", "`")));
        assert_eq!(split_directive("#syntax = docker/dockerfile:1 "), Some(("syntax", "docker/dockerfile:1")));
        assert_eq!(split_directive("# just a comment"), None);
        assert_eq!(split_directive("# 1x=y"), None);
        assert_eq!(split_directive("# escape="), None);
    }

    #[test]
    fn first_non_directive_ends_search() {
        let mut d = Directives::new();
        assert!(matches!(d.check("# hello"), Ok(Found::Nothing)));
        d.check("# escape=`").unwrap();
        assert_eq!(d.escape, '\\');
    }

    #[test]
    fn duplicate_and_bad_escape() {
        let mut d = Directives::new();
        d.check("# escape=`").unwrap();
        assert_eq!(d.escape, '`');
        assert_eq!(d.check("# ESCAPE=\\").err(), Some(Problem::DuplicateDirective("escape".into())));
        let mut d = Directives::new();
        assert_eq!(d.check("# escape=x").err(), Some(Problem::BadEscape("x".into())));
    }
}
