//! Docker's shell-like word lexer: quote removal, escapes and `$VAR`
//! expansion, used on the instructions Docker expands (ADD, ARG, COPY, ENV,
//! EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR and RUN's mounts).
//! It does not run anything: no globbing, no command substitution.

mod lexer;
mod pattern;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use crate::error::Error;

pub(crate) use lexer::Options;

/// Where variable values come from when a word is expanded.
pub trait Env {
    /// The value of `name`, or `None` when it is unset (which `${X-y}` tells
    /// apart from set-but-empty).
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl Env for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Env for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// Expands words the way Docker's frontend does, with the Dockerfile's escape
/// character (`\` unless an `# escape=` directive changed it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer { escape: '\\' }
    }
}

impl Lexer {
    pub fn new(escape: char) -> Self {
        Lexer { escape }
    }

    pub fn escape(&self) -> char {
        self.escape
    }

    /// Expands variables and removes quotes, keeping the result one word
    /// (Docker's `ProcessWord`: `ENV A="$B c"` stays one value).
    pub fn expand_word(&self, word: &str, env: &dyn Env) -> Result<String, Error> {
        self.run(word, env, Options::default()).map(|(word, _)| word)
    }

    /// Expands and then splits into words on unquoted whitespace (Docker's
    /// `ProcessWords`), so an unquoted `$PORTS` holding `80 443` gives two words.
    pub fn expand_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, Error> {
        self.run(word, env, Options::default()).map(|(_, words)| words)
    }

    pub(crate) fn run(&self, word: &str, env: &dyn Env, opts: Options) -> Result<(String, Vec<String>), Error> {
        lexer::process(word, self.escape, env, opts).map_err(|reason| Error::Expand { word: word.to_string(), reason })
    }

    /// Expands a COPY/ADD heredoc body as BuildKit does: quotes are kept as
    /// they are, `$VAR` is expanded and `\` escapes the next character.
    /// BuildKit uses `\` here whatever the escape directive says.
    pub fn expand_heredoc(&self, body: &str, env: &dyn Env) -> Result<String, Error> {
        let opts = Options { heredoc: true, ..Options::default() };
        Lexer::new('\\').run(body, env, opts).map(|(text, _)| text)
    }
}

/// An `Env` with nothing set.
pub(crate) struct NoEnv;

impl Env for NoEnv {
    fn lookup(&self, _: &str) -> Option<&str> {
        None
    }
}
