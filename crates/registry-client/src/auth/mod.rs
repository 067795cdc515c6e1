//! Registry authentication: where credentials come from ([`config`]) and
//! how they become a bearer token ([`token`]).

pub mod config;
pub mod token;

pub use config::{Credential, DockerConfig};
pub use token::{parse_challenge, Challenge, TokenCache, TokenRequest};
