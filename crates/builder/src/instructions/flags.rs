//! `--flag` handling shared by the instructions (BuildKit's BFlags): each
//! instruction declares its flags; anything else is an error naming the flag.

use crate::error::Problem;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `--link` or `--link=true|false`.
    Bool,
    /// `--from=x`, at most once.
    Value,
    /// `--mount=...`, repeatable.
    Repeated,
}

pub(crate) struct Flags {
    instruction: String,
    given: Vec<(String, Option<String>)>,
}

impl Flags {
    /// Checks `raw` (`--name[=value]` words) against the declared flags.
    pub fn parse(instruction: &str, raw: &[String], spec: &[(&str, Kind)]) -> Result<Self, Problem> {
        let instruction = instruction.to_ascii_uppercase();
        let mut given: Vec<(String, Option<String>)> = Vec::new();
        for word in raw {
            let word = word.strip_prefix("--").unwrap_or(word);
            // Flag names are case-sensitive, as in Docker: `--FROM` is unknown.
            let (name, value) = match word.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (word.to_string(), None),
            };
            let flag = || name.clone();
            let Some(&(_, kind)) = spec.iter().find(|(n, _)| *n == name) else {
                return Err(Problem::UnknownFlag { instruction, flag: flag() });
            };
            if kind != Kind::Repeated && given.iter().any(|(n, _)| *n == name) {
                return Err(Problem::DuplicateFlag { instruction, flag: flag() });
            }
            if kind != Kind::Bool && value.as_deref().is_none_or(str::is_empty) {
                return Err(Problem::MissingFlagValue { instruction, flag: flag() });
            }
            given.push((name, value));
        }
        Ok(Flags { instruction, given })
    }

    pub fn value(&self, name: &str) -> Option<String> {
        self.given.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.clone())
    }

    pub fn values(&self, name: &str) -> Vec<String> {
        self.given.iter().filter(|(n, _)| n == name).filter_map(|(_, v)| v.clone()).collect()
    }

    pub fn bool(&self, name: &str) -> Result<bool, Problem> {
        let Some((_, value)) = self.given.iter().find(|(n, _)| n == name) else { return Ok(false) };
        match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(_) => Err(Problem::BadBoolFlag {
                instruction: self.instruction.clone(),
                flag: name.to_string(),
                value: value.clone().unwrap_or_default(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &[(&str, Kind)] = &[("link", Kind::Bool), ("from", Kind::Value), ("mount", Kind::Repeated)];

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn accepts_declared_flags() {
        let f = Flags::parse("copy", &words(&["--link", "--from=a", "--mount=x", "--mount=y"]), SPEC).unwrap();
        assert!(f.bool("link").unwrap());
        assert_eq!(f.value("from").as_deref(), Some("a"));
        assert_eq!(f.values("mount"), vec!["x", "y"]);
    }

    #[test]
    fn rejects_bad_flags() {
        let err = |w: &[&str]| Flags::parse("copy", &words(w), SPEC).err().unwrap().to_string();
        assert_eq!(err(&["--chown=a"]), "COPY: unknown flag --chown");
        assert_eq!(err(&["--from=a", "--from=b"]), "COPY: flag --from is given more than once");
        assert_eq!(err(&["--from"]), "COPY: flag --from needs a value (--from=...)");
        let f = Flags::parse("copy", &words(&["--link=maybe"]), SPEC).unwrap();
        assert!(f.bool("link").is_err());
    }
}
