//! # Layout
//!
//! Dockerfile → OCI image. The pipeline stages get one module each, in
//! order, each using only the types of the one before (as BuildKit's
//! `frontend/dockerfile/{parser,instructions,shell}`):
//!
//! - `parser`: text → nodes. Comments, parser directives (`escape`,
//!   `syntax`), line continuations, heredoc bodies, JSON vs shell form; every
//!   node knows its lines.
//! - `shell`: Docker's word lexer: quotes, escapes, `$VAR` / `${VAR:-x}`
//!   expansion against an environment map ([`Lexer`], [`Env`]).
//! - `instructions`: nodes → typed [`Instruction`]s with checked flags,
//!   grouped into [`Stage`]s of a [`Dockerfile`]. Words stay unexpanded;
//!   [`Step::expand`] applies the expansion once the executor knows ARG/ENV.
//! - `dockerignore`: the build context filter ([`DockerIgnore`]).
//! - `check`: BuildKit's Dockerfile checks (`wharf build --check`).
//! - `attest`: SLSA provenance and SPDX SBOM attestations (`--provenance`, `--sbom`).
//!
//! - `build`: running a build on these types: stages on demand and in
//!   parallel, per platform (`emulation`: QEMU through binfmt_misc), the
//!   step cache (`cache`) and BuildKit's cache format (`cache_io`), RUN
//!   through the `wharf-runtime` library, COPY/ADD, `RUN --mount` (ssh:
//!   `ssh`), named contexts, annotations, outputs.
//! - `layer`: layer tars: COPY/ADD sources (globs, walk, chown/chmod),
//!   the RUN overlay's upper dir, deterministic writing and hashing.

pub mod attest;
pub mod build;
pub mod check;
mod dockerignore;
mod error;
mod instructions;
pub mod layer;
mod parser;
mod shell;

pub use dockerignore::DockerIgnore;
pub use error::{Error, LineRange, Problem};
pub use instructions::{
    ArgDecl, Command, Copy, Dockerfile, From, HealthCheck, Healthcheck, Instruction, KeyValue, Mount, MountType,
    Network, Onbuild, Run, Sharing, Stage, Step,
};
pub use parser::{Heredoc, Warning};
pub use shell::{Env, Lexer};

/// Parses a Dockerfile into its stages of typed, unexpanded instructions.
pub fn parse_dockerfile(text: &str) -> Result<Dockerfile, Error> {
    instructions::group(parser::parse(text)?)
}
