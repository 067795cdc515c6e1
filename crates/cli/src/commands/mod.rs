//! One file per command: parse flags, call a library, print.

pub mod build;
pub mod check;
pub mod completion;
pub mod ctr;
pub mod images;
pub mod import;
pub mod inspect;
pub mod load;
pub mod login;
pub mod logs;
pub mod man;
pub mod network;
pub mod prune;
pub mod ps;
pub mod pull;
pub mod push;
pub mod registry_args;
pub mod rmi;
pub mod run;
pub mod run_host;
pub mod save;
pub mod system_prune;
pub mod tag;
pub mod volume;
