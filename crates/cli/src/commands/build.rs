use crate::Globals;
use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use wharf_builder::build::{BuildCache, BuildOptions, CacheSpec, Output};
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
    /// default|ID[=SOCKET|KEY[,KEY…]]: an ssh agent for RUN --mount=type=ssh (default: $SSH_AUTH_SOCK;
    /// key files are served by an ssh-agent run for the build).
    #[arg(long, value_name = "ID[=SOCKET|KEY]")]
    ssh: Vec<String>,
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
    /// Also write the result: type=oci,dest=FILE | type=docker,dest=FILE | type=local,dest=DIR |
    /// type=tar,dest=FILE.
    #[arg(short, long)]
    output: Vec<String>,
    // Multi-platform builds (issue 14 §2).
    /// os/arch[/variant],…: build for these platforms (several: an image index);
    /// RUN for a foreign one needs QEMU registered in binfmt_misc.
    #[arg(long, value_name = "PLATFORMS")]
    platform: Vec<String>,
    // -- CI and compatibility flags (issue 14 §3/§4) --
    /// Only check the Dockerfile (BuildKit's checks, with line numbers); build nothing.
    #[arg(long)]
    check: bool,
    /// Write the build's result as JSON (containerimage.digest, containerimage.descriptor, image.name), as buildx.
    #[arg(long, value_name = "FILE")]
    metadata_file: Option<PathBuf>,
    /// [TYPE[PLATFORM]:]KEY=VALUE annotation, as buildx: TYPE manifest (the default), or for a
    /// multi-platform build index, manifest-descriptor, index-descriptor.
    #[arg(long)]
    annotation: Vec<String>,
    /// NAME:IP line added to /etc/hosts for RUN.
    #[arg(long = "add-host", value_name = "NAME:IP")]
    add_host: Vec<String>,
    /// NAME=SOFT[:HARD] rlimit for RUN (nofile, nproc, …), as docker build.
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    ulimit: Vec<String>,
    /// Size of RUN's /dev/shm (default 64m).
    #[arg(long, value_name = "SIZE")]
    shm_size: Option<String>,
    /// Build this stage without the cache (repeatable); what depends on it reruns only if its result changed.
    #[arg(long, value_name = "STAGE")]
    no_cache_filter: Vec<String>,
    /// NAME=DIR, NAME=docker-image://REF or NAME=oci-layout://DIR[:TAG]: a named context for FROM, COPY --from and RUN --mount from=.
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    build_context: Vec<String>,
    /// Export the build cache (repeatable), in BuildKit's format: type=registry,ref=REPO:TAG
    /// (options mode=min|max, oci-mediatypes=false), type=local,dest=DIR, or type=inline.
    #[arg(long = "cache-to", value_name = "SPEC")]
    cache_to: Vec<String>,
    /// Import a build cache (repeatable): type=registry,ref=REF (a cache, or an image with an
    /// inline cache), type=local,src=DIR, or a bare REF; one that cannot be read is skipped, with a warning.
    #[arg(long = "cache-from", value_name = "SPEC")]
    cache_from: Vec<String>,
    // -- Attestations (issue 14 §3), as buildx; off unless asked --
    /// Attach a SLSA provenance: true|false, mode=min|max[,builder-id=URI].
    #[arg(long, value_name = "MODE", num_args = 0..=1, default_missing_value = "true")]
    provenance: Option<String>,
    /// Attach an SPDX SBOM of the image's packages (dpkg, apk, Python, npm, Go and
    /// cargo-auditable binaries, os-release): true|false.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    sbom: Option<String>,
    /// type=provenance[,mode=min|max] or type=sbom (repeatable), as buildx --attest.
    #[arg(long, value_name = "SPEC")]
    attest: Vec<String>,
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
    if a.check {
        let df = a.file.clone().unwrap_or_else(|| a.context.join("Dockerfile"));
        return super::build_check::run(g, &df);
    }
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
        ssh: a.ssh.iter().map(|s| wharf_builder::build::SshSpec::parse(s)).collect::<Result<_, _>>()?,
        progress: view.as_ref().map(|v| v.progress()),
        platforms,
        add_hosts: a.add_host.iter().map(|h| wharf_builder::build::parse_add_host(h)).collect::<Result<_, _>>()?,
        ulimits: ulimits(&a.ulimit)?,
        shm_size: shm_size(a.shm_size.as_deref())?,
        no_cache_filter: a.no_cache_filter.clone(),
        annotations: BTreeMap::new(),
        index_annotations: Default::default(),
        named_contexts: a
            .build_context
            .iter()
            .map(|c| wharf_builder::build::NamedContext::parse(c))
            .collect::<Result<_, _>>()?,
        cache_from: a.cache_from.iter().map(|c| CacheSpec::parse_from(c)).collect::<Result<_, _>>()?,
        cache_to: a.cache_to.iter().map(|c| CacheSpec::parse_to(c)).collect::<Result<_, _>>()?,
        lazy_layers: false,
        attest: attest_options(&a.attest, a.provenance.as_deref(), a.sbom.as_deref())?,
    };
    let mut opts = opts;
    (opts.annotations, opts.index_annotations) =
        wharf_builder::build::parse_annotations(&a.annotation, opts.platforms.len() > 1)?;
    let outputs: Vec<Output> = a.output.iter().map(|o| Output::parse(o)).collect::<Result<_, _>>()?;
    // `-o type=image|registry,name=…`: more names, pushed or not.
    let mut push: Vec<wharf_image::Reference> = if a.push { opts.tags.clone() } else { Vec::new() };
    for o in &outputs {
        if let Output::Image { names, push: p } = o {
            for n in names {
                let r = wharf_image::Reference::parse(n)?;
                if *p && !push.contains(&r) {
                    push.push(r.clone());
                }
                if !opts.tags.contains(&r) {
                    opts.tags.push(r);
                }
            }
        }
    }
    anyhow::ensure!(!a.push || !opts.tags.is_empty(), "--push needs a name: add -t REGISTRY/REPO:TAG");
    // Pushed and written nowhere else: layers only the registry has stay there.
    opts.lazy_layers = !push.is_empty() && outputs.iter().all(|o| matches!(o, Output::Image { .. }));
    for o in &outputs {
        o.check(&opts)?;
    }
    let store = g.store()?;
    let built = wharf_builder::build::build(&store, &opts);
    if let Some(v) = &view {
        v.finish(built.is_ok());
    }
    let built = built?;
    if !quiet {
        for n in &built.cache_notes {
            eprintln!("{n}");
        }
        if built.fetched_bytes > 0 {
            eprintln!("fetched {} bytes of cached layers", built.fetched_bytes);
        }
    }
    // By a name the build set when it has one: an ID can be ambiguous (the
    // same config in two indexes, e.g. one- and two-platform builds).
    let name = opts.tags.first().map_or_else(|| built.id.to_string(), |t| t.to_string());
    for o in &outputs {
        o.write(&store, &name, &opts.platforms, &g.run_root)?;
    }
    let mut pushed_digest = None;
    let pushed = (|| -> anyhow::Result<()> {
        for t in &push {
            let reg = wharf_registry::Registry::new(t.domain(), wharf_registry::RegistryOptions::default())?;
            let popts =
                wharf_registry::PushOptions { progress: crate::progress::reporter(quiet, false), digestfile: None };
            let pushed = wharf_registry::block_on(reg.push(&store, &t.to_string(), t, &popts))?;
            if !quiet {
                eprintln!("pushed {t}@{}", pushed.digest);
            }
            pushed_digest = Some(pushed.digest.to_string());
        }
        Ok(())
    })();
    if built.absent_layers > 0 {
        // As buildx --push: the image is in the registry, not loaded here
        // (its cached layers were never downloaded; `wharf pull` gets them).
        let names: Vec<String> = opts.tags.iter().map(|t| t.to_string()).collect();
        store.remove_images(&names, true)?;
        if !quiet {
            eprintln!("not kept in the store: {} of its layers are only in the registry", built.absent_layers);
        }
    }
    pushed?;
    if let Some(f) = &a.iidfile {
        std::fs::write(f, built.id.to_string())?;
    }
    if let Some(f) = &a.metadata_file {
        let m = metadata(&built, &opts.tags, pushed_digest);
        write_atomic(f, &serde_json::to_vec_pretty(&m)?)?;
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

/// `--attest`, then `--provenance` and `--sbom` (which win, as in buildx).
fn attest_options(
    attest: &[String],
    provenance: Option<&str>,
    sbom: Option<&str>,
) -> anyhow::Result<wharf_builder::attest::AttestOptions> {
    let mut o = wharf_builder::attest::AttestOptions::default();
    for s in attest {
        o.set_attest(s)?;
    }
    if let Some(p) = provenance {
        o.set_provenance(p)?;
    }
    if let Some(s) = sbom {
        o.set_sbom(s)?;
    }
    Ok(o)
}

/// `--ulimit nofile=1024:2048`, with run's parser and names.
fn ulimits(items: &[String]) -> anyhow::Result<Vec<(String, u64, u64)>> {
    let lim = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
    items
        .iter()
        .map(|s| {
            let u = wharf_pod::hostconfig::Ulimit::parse(s)?;
            Ok((u.rlimit_type(), lim(u.soft), lim(u.hard)))
        })
        .collect()
}

fn shm_size(s: Option<&str>) -> anyhow::Result<Option<u64>> {
    let Some(s) = s else { return Ok(None) };
    let n = wharf_pod::hostconfig::parse_size(s).map_err(|e| anyhow::anyhow!("--shm-size {s:?}: {e}"))?;
    anyhow::ensure!(n > 0, "--shm-size {s:?}: the size must be greater than 0");
    Ok(Some(n as u64))
}

/// The metadata file buildx writes: the manifest's digest and descriptor, the names.
fn metadata(
    built: &wharf_builder::build::Built,
    tags: &[wharf_image::Reference],
    pushed: Option<String>,
) -> serde_json::Value {
    let d = &built.manifest;
    let mut desc = serde_json::json!({
        "mediaType": d.media_type().to_string(),
        "digest": d.digest().to_string(),
        "size": d.size(),
    });
    if let Some(a) = d.annotations().as_ref().filter(|a| !a.is_empty()) {
        desc["annotations"] = serde_json::json!(a);
    }
    let names: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
    let mut m = serde_json::json!({
        "containerimage.config.digest": built.id.to_string(),
        "containerimage.descriptor": desc,
        "containerimage.digest": pushed.unwrap_or_else(|| d.digest().to_string()),
    });
    if !names.is_empty() {
        m["image.name"] = serde_json::json!(names.join(","));
    }
    m
}

/// Temp file and rename: a reader never sees half a file.
fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::anyhow!("write {}: {e}", path.display())
    })
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Accepted for Docker compatibility.
    #[arg(short, long)]
    force: bool,
}

pub fn prune(g: &Globals, _a: PruneArgs) -> anyhow::Result<ExitCode> {
    let dead = wharf_builder::build::remove_leftovers(&g.root, &g.run_root)?;
    if dead > 0 {
        crate::outln!("Deleted what {dead} killed build(s) left")?;
    }
    let n = BuildCache::prune(&g.root)?;
    crate::outln!("Deleted {n} build cache entr{}", if n == 1 { "y" } else { "ies" })?;
    Ok(ExitCode::SUCCESS)
}
