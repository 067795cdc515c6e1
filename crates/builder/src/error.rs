//! The crate's one error type. Dockerfile problems carry the lines they come
//! from, as BuildKit's `WithLocation` does, so a user can find them.

use std::fmt;

/// Lines of a Dockerfile (1-based, inclusive) that an instruction or error covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LineRange {
    pub start: usize,
    pub end: usize,
}

impl LineRange {
    pub(crate) fn new(start: usize, end: usize) -> Self {
        LineRange { start, end: end.max(start) }
    }
}

impl fmt::Display for LineRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "line {}", self.start)
        } else {
            write!(f, "lines {}-{}", self.start, self.end)
        }
    }
}

#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A problem in a Dockerfile, located.
    #[error("dockerfile {lines}: {problem}")]
    Dockerfile { lines: LineRange, problem: Problem },
    /// A `.dockerignore` line that is not a valid pattern.
    #[error(".dockerignore line {line}: invalid pattern {pattern:?}: {reason}")]
    IgnorePattern { line: usize, pattern: String, reason: String },
    /// A word that cannot be expanded outside any Dockerfile line.
    #[error("cannot expand {word:?}: {reason}")]
    Expand { word: String, reason: String },
    /// Writing a layer failed (see `layer::LayerError`, kept as text).
    #[error("{0}")]
    Layer(String),
}

impl Error {
    pub(crate) fn at(lines: LineRange, problem: Problem) -> Self {
        Error::Dockerfile { lines, problem }
    }

    /// The Dockerfile lines the error is about, if it is about a Dockerfile.
    pub fn lines(&self) -> Option<LineRange> {
        match self {
            Error::Dockerfile { lines, .. } => Some(*lines),
            _ => None,
        }
    }

    /// The kind of Dockerfile problem, for callers that match on it.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::Dockerfile { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

/// What is wrong with a Dockerfile; `Error::Dockerfile` adds where.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("file with no instructions")]
    NoInstructions,
    #[error("unknown instruction: {0}")]
    UnknownInstruction(String),
    #[error("invalid escape directive {0:?}: the escape character must be ` or \\")]
    BadEscape(String),
    #[error("parser directive {0:?} is given more than once")]
    DuplicateDirective(String),
    #[error("unterminated heredoc: no line {0:?} before the end of the file")]
    UnterminatedHeredoc(String),
    #[error("{0}: a JSON exec form must be an array of strings only")]
    JsonNotStrings(String),
    #[error("{instruction} requires {expected}")]
    Arguments { instruction: String, expected: &'static str },
    #[error("no FROM instruction: a Dockerfile needs at least one build stage")]
    NoFrom,
    #[error("{0} before the first FROM: only ARG may come before FROM")]
    NoStage(String),
    #[error("{instruction}: unknown flag --{flag}")]
    UnknownFlag { instruction: String, flag: String },
    #[error("{instruction}: flag --{flag} is given more than once")]
    DuplicateFlag { instruction: String, flag: String },
    #[error("{instruction}: flag --{flag} needs a value (--{flag}=...)")]
    MissingFlagValue { instruction: String, flag: String },
    #[error("{instruction}: flag --{flag} expects true or false, not {value:?}")]
    BadBoolFlag { instruction: String, flag: String, value: String },
    #[error("invalid --chmod {0:?}: expected an octal mode such as 0755")]
    BadChmod(String),
    #[error("invalid --mount {mount:?}: {reason}")]
    BadMount { mount: String, reason: String },
    #[error("invalid --network {0:?}: expected default, none or host")]
    BadNetwork(String),
    #[error("invalid stage name {0:?}: it must start with a letter and hold only letters, digits, '-', '_' and '.'")]
    BadStageName(String),
    #[error("no stage has the index {0} (stages are numbered from 0)")]
    MissingStage(String),
    #[error("circular dependency between stages: {0}")]
    StageCycle(String),
    #[error("invalid {what} {value:?}: {reason}")]
    BadValue { what: &'static str, value: String, reason: String },
    #[error("{0} is not allowed as an ONBUILD trigger")]
    BadOnbuild(String),
    #[error("cannot expand {word:?}: {reason}")]
    Expand { word: String, reason: String },
    #[error("{0}")]
    Syntax(String),
}

impl Problem {
    pub(crate) fn args(instruction: &str, expected: &'static str) -> Self {
        Problem::Arguments { instruction: instruction.to_ascii_uppercase(), expected }
    }

    pub(crate) fn value(what: &'static str, value: &str, reason: impl Into<String>) -> Self {
        Problem::BadValue { what, value: value.to_string(), reason: reason.into() }
    }
}
