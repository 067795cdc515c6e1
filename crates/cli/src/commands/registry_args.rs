use std::path::PathBuf;
use wharf_registry::RegistryOptions;

/// Flags every registry command shares.
#[derive(clap::Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Reach this registry over plain HTTP (loopback registries always are); repeatable.
    #[arg(long = "insecure-registry")]
    insecure: Vec<String>,
    /// Directory of per-registry CA certificates (`DIR/HOST/*.crt`), like Docker's certs.d.
    #[arg(long = "cert-dir")]
    cert_dir: Option<PathBuf>,
}

impl RegistryArgs {
    pub fn options(&self) -> RegistryOptions {
        let mut o = RegistryOptions::default();
        o.insecure.extend(self.insecure.iter().cloned());
        if let Some(d) = &self.cert_dir {
            o.cert_dirs.insert(0, d.clone());
        }
        o
    }
}
