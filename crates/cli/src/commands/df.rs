//! `system df`: space used by images, containers, volumes and the build cache.

use crate::output;
use crate::Globals;
use std::process::ExitCode;
use wharf_pod::Containers;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Show each image, container and volume.
    #[arg(short, long)]
    verbose: bool,
    /// table (default) or json.
    #[arg(long)]
    format: Option<String>,
}

fn reclaimable(part: u64, total: u64) -> String {
    match (part * 100).checked_div(total) {
        Some(pct) => format!("{} ({pct}%)", output::size(part)),
        None => output::size(part),
    }
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<ExitCode> {
    let cs = Containers::new(&g.root, &g.run_root);
    cs.sweep();
    let du = cs.disk_usage(&g.store()?)?;
    if a.format.as_deref() == Some("json") {
        crate::outln!("{}", serde_json::to_string(&du)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(f) = a.format.as_deref().filter(|f| *f != "table") {
        anyhow::bail!("unknown --format {f:?}: use table or json");
    }
    let active_images = du.images.iter().filter(|i| i.containers > 0).count();
    let ctr_size: u64 = du.containers.iter().map(|c| c.size).sum();
    let ctr_free: u64 = du.containers.iter().filter(|c| !c.running).map(|c| c.size).sum();
    let vol_size: u64 = du.volumes.iter().map(|v| v.size).sum();
    let vol_free: u64 = du.volumes.iter().filter(|v| v.links == 0).map(|v| v.size).sum();
    let n = |x: usize| x.to_string();
    let rows = vec![
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"].map(String::from).to_vec(),
        vec![
            "Images".into(),
            n(du.images.len()),
            n(active_images),
            output::size(du.images_size),
            reclaimable(du.images_reclaimable, du.images_size),
        ],
        vec![
            "Containers".into(),
            n(du.containers.len()),
            n(du.containers.iter().filter(|c| c.running).count()),
            output::size(ctr_size),
            reclaimable(ctr_free, ctr_size),
        ],
        vec![
            "Local Volumes".into(),
            n(du.volumes.len()),
            n(du.volumes.iter().filter(|v| v.links > 0).count()),
            output::size(vol_size),
            reclaimable(vol_free, vol_size),
        ],
        vec![
            "Build Cache".into(),
            n(du.build_cache_entries),
            "0".into(),
            output::size(du.build_cache_size),
            output::size(du.build_cache_size),
        ],
    ];
    output::table(&rows)?;
    if a.verbose {
        verbose(&du)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn verbose(du: &wharf_pod::container::DiskUsage) -> anyhow::Result<()> {
    crate::outln!("\nImages space usage:\n")?;
    let mut rows = vec![["REPOSITORY:TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"]
        .map(String::from)
        .to_vec()];
    for i in &du.images {
        rows.push(vec![
            i.names.first().cloned().unwrap_or_else(|| "<none>".into()),
            output::short_id(&i.id),
            output::age(i.created.as_deref()),
            output::size(i.size),
            output::size(i.shared_size),
            output::size(i.size - i.shared_size.min(i.size)),
            i.containers.to_string(),
        ]);
    }
    output::table(&rows)?;
    crate::outln!("\nContainers space usage:\n")?;
    let mut rows = vec![["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS", "NAMES"]
        .map(String::from)
        .to_vec()];
    for c in &du.containers {
        rows.push(vec![
            output::short_id(&c.id),
            c.image.clone(),
            format!("\"{}\"", c.command),
            c.volumes.to_string(),
            output::size(c.size),
            output::age(Some(&c.created)),
            c.status.clone(),
            c.name.clone(),
        ]);
    }
    output::table(&rows)?;
    crate::outln!("\nLocal Volumes space usage:\n")?;
    let mut rows = vec![["VOLUME NAME", "LINKS", "SIZE"].map(String::from).to_vec()];
    for v in &du.volumes {
        rows.push(vec![v.name.clone(), v.links.to_string(), output::size(v.size)]);
    }
    output::table(&rows)?;
    crate::outln!("\nBuild cache usage: {}", output::size(du.build_cache_size))?;
    Ok(())
}
