//! # Layout
//!
//! Dockerfile → OCI image. The pipeline stages get one module each, in order:
//! `parser` (Dockerfile syntax), `instructions` (typed instructions), `plan`
//! (the stage graph and cache keys) and `exec` (RUN through `wharf-runtime`,
//! COPY/ADD written as layer tars directly).
//!
//! Filled by the builder issue; empty until then.
