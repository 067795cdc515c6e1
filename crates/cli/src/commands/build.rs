use crate::Globals;
use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use wharf_builder::build::{BuildCache, BuildOptions, Output};
use wharf_builder::layer::LayerCompression;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Name the image (repeatable).
    #[arg(short, long = "tag")]
    tag: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile).
    #[arg(short, long)]
    file: Option<PathBuf>,
    /// Build this stage instead of the last.
    #[arg(long)]
    target: Option<String>,
    /// KEY=VALUE for an ARG (KEY alone takes it from the environment).
    #[arg(long = "build-arg")]
    build_arg: Vec<String>,
    /// KEY=VALUE label on the image.
    #[arg(long)]
    label: Vec<String>,
    /// Run every step, ignoring the cache.
    #[arg(long)]
    no_cache: bool,
    /// Pull base images even when the store has them.
    #[arg(long)]
    pull: bool,
    /// Write the image ID to this file.
    #[arg(long)]
    iidfile: Option<PathBuf>,
    /// id=NAME,src=FILE: a secret for RUN --mount=type=secret.
    #[arg(long)]
    secret: Vec<String>,
    /// auto, tty, plain or quiet.
    #[arg(long, default_value = "auto")]
    progress: String,
    /// Layer compression: gzip or zstd.
    #[arg(long, default_value = "gzip")]
    compression: String,
    /// Print only the image ID.
    #[arg(short, long)]
    quiet: bool,
    /// Push every -t name to its registry after the build.
    #[arg(long)]
    push: bool,
    /// Also write the result: type=oci,dest=FILE | type=docker,dest=FILE | type=local,dest=DIR.
    #[arg(short, long)]
    output: Vec<String>,
    // Multi-platform builds (issue 14 §2).
    /// os/arch[/variant],…: build for these platforms (several: an image index);
    /// RUN for a foreign one needs QEMU registered in binfmt_misc.
    #[arg(long, value_name = "PLATFORMS")]
    platform: Vec<String>,
    /// The build context directory.
    context: PathBuf,
}

fn key_values(items: &[String], what: &str, from_env: bool) -> anyhow::Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for i in items {
        match i.split_once('=') {
            Some((k, v)) => _ = m.insert(k.to_string(), v.to_string()),
            None if from_env => {
                if let Ok(v) = std::env::var(i) {
                    m.insert(i.clone(), v);
                }
            }
            None => anyhow::bail!("--{what} {i:?}: use KEY=VALUE"),
        }
    }
    Ok(m)
}

fn secrets(items: &[String]) -> anyhow::Result<HashMap<String, PathBuf>> {
    let mut m = HashMap::new();
    for s in items {
        let kv: HashMap<&str, &str> = s.split(',').filter_map(|p| p.split_once('=')).collect();
        let id = kv.get("id").ok_or_else(|| anyhow::anyhow!("--secret {s:?}: id= is required"))?;
        let src =
            kv.get("src").or(kv.get("source")).ok_or_else(|| anyhow::anyhow!("--secret {s:?}: src= is required"))?;
        let p = std::fs::canonicalize(src).map_err(|e| anyhow::anyhow!("--secret {s:?}: {e}"))?;
        m.insert(id.to_string(), p);
    }
    Ok(m)
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<ExitCode> {
    let mut platforms: Vec<wharf_image::Platform> = Vec::new();
    for p in &a.platform {
        for p in wharf_image::Platform::parse_list(p)? {
            if !platforms.contains(&p) {
                platforms.push(p);
            }
        }
    }
    let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => {
            Some(v.parse::<i64>().map_err(|_| anyhow::anyhow!("SOURCE_DATE_EPOCH={v:?} is not a number"))?)
        }
        _ => None,
    };
    let quiet = a.quiet || a.progress == "quiet";
    anyhow::ensure!(
        matches!(a.progress.as_str(), "auto" | "tty" | "plain" | "quiet"),
        "--progress {:?}: use auto, tty, plain or quiet",
        a.progress
    );
    let tty = a.progress == "tty" || (a.progress == "auto" && std::io::stderr().is_terminal());
    let view = (!quiet).then(|| crate::build_progress::BuildView::new(tty));
    let opts = BuildOptions {
        context: a.context.clone(),
        dockerfile: a.file.clone(),
        tags: a.tag.iter().map(|t| wharf_image::Reference::parse(t)).collect::<Result<_, _>>()?,
        target: a.target,
        build_args: key_values(&a.build_arg, "build-arg", true)?,
        labels: key_values(&a.label, "label", false)?,
        no_cache: a.no_cache,
        pull: a.pull,
        run_root: g.run_root.clone(),
        compression: match a.compression.as_str() {
            "gzip" => LayerCompression::Gzip,
            "zstd" => LayerCompression::Zstd,
            other => anyhow::bail!("--compression {other:?}: use gzip or zstd"),
        },
        epoch,
        secrets: secrets(&a.secret)?,
        progress: view.as_ref().map(|v| v.progress()),
        platforms,
    };
    let outputs: Vec<Output> = a.output.iter().map(|o| Output::parse(o)).collect::<Result<_, _>>()?;
    anyhow::ensure!(!a.push || !opts.tags.is_empty(), "--push needs a name: add -t REGISTRY/REPO:TAG");
    let store = g.store()?;
    let built = wharf_builder::build::build(&store, &opts);
    if let Some(v) = &view {
        v.finish(built.is_ok());
    }
    let built = built?;
    for o in &outputs {
        o.write(&store, built.id.as_ref(), &g.run_root)?;
    }
    if a.push {
        for t in &opts.tags {
            let reg = wharf_registry::Registry::new(t.domain(), wharf_registry::RegistryOptions::default())?;
            let popts =
                wharf_registry::PushOptions { progress: crate::progress::reporter(quiet, false), digestfile: None };
            let pushed = wharf_registry::block_on(reg.push(&store, &t.to_string(), t, &popts))?;
            if !quiet {
                eprintln!("pushed {t}@{}", pushed.digest);
            }
        }
    }
    if let Some(f) = &a.iidfile {
        std::fs::write(f, built.id.to_string())?;
    }
    if quiet {
        crate::outln!("{}", built.id)?;
    } else {
        eprintln!("writing image {} done", built.id);
        for t in &opts.tags {
            eprintln!("naming to {t} done");
        }
        crate::outln!("{}", built.id)?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Accepted for Docker compatibility.
    #[arg(short, long)]
    force: bool,
}

pub fn prune(g: &Globals, _a: PruneArgs) -> anyhow::Result<ExitCode> {
    let dead = wharf_builder::build::remove_leftovers(&g.run_root)?;
    if dead > 0 {
        crate::outln!("Deleted what {dead} killed build(s) left")?;
    }
    let n = BuildCache::prune(&g.root)?;
    crate::outln!("Deleted {n} build cache entr{}", if n == 1 { "y" } else { "ies" })?;
    Ok(ExitCode::SUCCESS)
}
