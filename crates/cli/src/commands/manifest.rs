//! `wharf manifest create|add|annotate|inspect|push|rm`: manifest lists (OCI
//! image indexes) in the store, with `docker manifest`'s and `buildah
//! manifest`'s words.

use super::registry_args::RegistryArgs;
use crate::Globals;
use std::collections::BTreeMap;
use std::process::ExitCode;
use wharf_image::manifest_list::EntryOptions;
use wharf_image::Reference;
use wharf_registry::{PushOptions, Registry};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Create a list of the images' manifests (every platform of an image that is a list).
    Create(CreateArgs),
    /// Add an image's manifest (or a list's manifests) to a list.
    Add(AddArgs),
    /// Set the platform or annotations of an entry (or, without IMAGE, the list's annotations).
    Annotate(AnnotateArgs),
    /// Print a list (or image manifest) as JSON: from the store, else from its registry.
    Inspect(InspectArgs),
    /// Push a list and every manifest and blob it references.
    Push(PushArgs),
    /// Remove lists from the store (the images they list stay).
    Rm(RmArgs),
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Name of the new list.
    list: String,
    /// Images in the store to list.
    images: Vec<String>,
    /// Add to the list if it exists already.
    #[arg(short, long)]
    amend: bool,
}

#[derive(clap::Args, Debug)]
pub struct EntryArgs {
    /// Set the entry's operating system.
    #[arg(long)]
    os: Option<String>,
    /// Set the entry's architecture.
    #[arg(long)]
    arch: Option<String>,
    /// Set the entry's architecture variant.
    #[arg(long)]
    variant: Option<String>,
    /// KEY=VALUE annotation (repeatable).
    #[arg(long)]
    annotation: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct AddArgs {
    list: String,
    /// An image in the store.
    image: String,
    #[command(flatten)]
    entry: EntryArgs,
}

#[derive(clap::Args, Debug)]
pub struct AnnotateArgs {
    list: String,
    /// The entry: an image in the store or a manifest digest in the list.
    image: Option<String>,
    #[command(flatten)]
    entry: EntryArgs,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// A list in the store, or a registry reference.
    name: String,
    /// A Go template over {Name, Manifest, Provenance, SBOM} ('{{json .Provenance}}'), as
    /// `buildx imagetools inspect --format`; Provenance/SBOM are by platform for several images.
    #[arg(short, long)]
    format: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(clap::Args, Debug)]
pub struct PushArgs {
    list: String,
    /// Where to push it (default: the list's name).
    destination: Option<String>,
    /// Push every listed image too (always done: accepted for buildah/docker compatibility).
    #[arg(long)]
    all: bool,
    /// Remove the list from the store once pushed.
    #[arg(long)]
    rm: bool,
    /// Print only the digest.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    #[arg(required = true)]
    lists: Vec<String>,
}

fn entry_options(a: EntryArgs) -> anyhow::Result<EntryOptions> {
    let mut annotations = BTreeMap::new();
    for kv in &a.annotation {
        let (k, v) = kv.split_once('=').ok_or_else(|| anyhow::anyhow!("--annotation {kv:?}: use KEY=VALUE"))?;
        annotations.insert(k.to_string(), v.to_string());
    }
    Ok(EntryOptions { os: a.os, arch: a.arch, variant: a.variant, annotations })
}

pub fn run(g: &Globals, c: Command) -> anyhow::Result<ExitCode> {
    let store = g.store()?;
    match c {
        Command::Create(a) => {
            let d = store.create_list(&Reference::parse(&a.list)?, &a.images, a.amend)?;
            crate::outln!("{}", d.digest())?;
        }
        Command::Add(a) => {
            let d = store.add_to_list(&a.list, &a.image, &entry_options(a.entry)?)?;
            crate::outln!("{}", d.digest())?;
        }
        Command::Annotate(a) => {
            let d = store.annotate_list(&a.list, a.image.as_deref(), &entry_options(a.entry)?)?;
            crate::outln!("{}", d.digest())?;
        }
        Command::Inspect(a) => return inspect(&store, a),
        Command::Push(a) => {
            let dest = Reference::parse(a.destination.as_deref().unwrap_or(&a.list))?;
            store.list(&a.list)?;
            let reg = Registry::new(dest.domain(), a.registry.options())?;
            let popts = PushOptions { progress: crate::progress::reporter(a.quiet, false), digestfile: None };
            let pushed = wharf_registry::block_on(reg.push(&store, &a.list, &dest, &popts))?;
            if a.rm {
                store.remove_list(&a.list)?;
            }
            crate::outln!("{}", pushed.digest)?;
        }
        Command::Rm(a) => {
            for l in &a.lists {
                store.remove_list(l)?;
                crate::outln!("Deleted: {l}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn inspect(store: &wharf_image::Store, a: InspectArgs) -> anyhow::Result<ExitCode> {
    type Fetch = Box<dyn Fn(&wharf_image::Digest) -> Option<serde_json::Value>>;
    let (raw, fetch): (Vec<u8>, Fetch) = match store.entry(&a.name) {
        Ok(e) => {
            let s = store.clone();
            let read = move |d: &wharf_image::Digest| {
                s.blobs().read(d, 16 << 20).ok().and_then(|b| serde_json::from_slice(&b).ok())
            };
            (store.blobs().read(e.digest(), 16 << 20)?, Box::new(read))
        }
        Err(e) if e.kind() == wharf_image::ErrorKind::NotFound => {
            let r = Reference::parse(&a.name)?;
            let reg = Registry::new(r.domain(), a.registry.options())?;
            let raw = wharf_registry::block_on(reg.manifest_raw(&r))?.0;
            let repo = r.path().to_string();
            // Attestation manifests, then their statements, read from the registry when asked for.
            let read = move |d: &wharf_image::Digest| {
                let by_digest = Reference::parse(&format!("{}@{d}", r.repository())).ok()?;
                let bytes = match wharf_registry::block_on(reg.manifest_raw(&by_digest)) {
                    Ok((b, _, _)) => b,
                    Err(_) => wharf_registry::block_on(reg.blob_bytes(&repo, d.as_ref(), 16 << 20)).ok()?,
                };
                serde_json::from_slice(&bytes).ok()
            };
            (raw, Box::new(read))
        }
        Err(e) => return Err(e.into()),
    };
    let v: serde_json::Value = serde_json::from_slice(&raw)?;
    let Some(t) = a.format.as_deref() else {
        crate::outln!("{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(ExitCode::SUCCESS);
    };
    let mut view = serde_json::json!({"Name": a.name, "Manifest": v});
    if v.get("manifests").is_some() && (t.contains(".Provenance") || t.contains(".SBOM")) {
        let s = wharf_image::attestation::index_summary(&v, &fetch)?;
        for k in ["Provenance", "SBOM"] {
            if let Some(x) = s.get(k) {
                view[k] = x.clone();
            }
        }
    }
    crate::outln!("{}", super::inspect::template(t, &view))?;
    Ok(ExitCode::SUCCESS)
}
