//! Errors of running a build. The parser's `crate::Error` stays a plain
//! value (its golden tests compare errors); building adds I/O, the store,
//! the runtime and registries, so it has its own type wrapping that one.

use crate::LineRange;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    #[error(transparent)]
    Dockerfile(#[from] crate::Error),
    /// A step that failed, located in the Dockerfile.
    #[error("dockerfile {lines}: {instruction}: {reason}")]
    Step { lines: LineRange, instruction: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Layer(#[from] crate::layer::LayerError),
    #[error(transparent)]
    Image(#[from] wharf_image::Error),
    #[error(transparent)]
    Runtime(#[from] wharf_runtime::Error),
    #[error(transparent)]
    Registry(#[from] wharf_registry::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl BuildError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        BuildError::Io { context: context.into(), source }
    }

    pub(crate) fn step(step: &crate::Step, reason: impl std::fmt::Display) -> Self {
        let first = step.original.lines().next().unwrap_or_default();
        let mut instruction: String = first.chars().take(80).collect();
        if instruction.len() < first.len() {
            instruction.push('…');
        }
        BuildError::Step { lines: step.lines, instruction, reason: reason.to_string() }
    }
}

pub type BuildResult<T> = std::result::Result<T, BuildError>;
