use crate::output;
use crate::Globals;
use std::process::ExitCode;
use wharf_image::Reference;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Output format: table or json.
    #[arg(long, default_value = "table")]
    format: String,
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<ExitCode> {
    let images = g.store()?.images()?;
    match a.format.as_str() {
        "json" => crate::outln!("{}", serde_json::to_string_pretty(&images)?)?,
        "table" if a.quiet => {
            let mut seen = std::collections::HashSet::new();
            for i in images.iter().filter(|i| seen.insert(i.id.clone())) {
                crate::outln!("{}", output::short_id(&i.id))?;
            }
        }
        "table" => {
            let mut rows =
                vec![vec!["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"].into_iter().map(String::from).collect()];
            for i in &images {
                let names: Vec<(String, String)> = if i.names.is_empty() {
                    vec![("<none>".into(), "<none>".into())]
                } else {
                    i.names.iter().map(|n| split_name(n)).collect()
                };
                for (repo, tag) in names {
                    rows.push(vec![
                        repo,
                        tag,
                        output::short_id(&i.id),
                        output::age(i.created.as_deref()),
                        output::size(i.size),
                    ]);
                }
            }
            output::table(&rows)?;
        }
        other => anyhow::bail!("unknown --format {other:?}: use table or json"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Repository and tag of a stored name; a foreign layout's bare name is its own repository.
fn split_name(n: &str) -> (String, String) {
    match Reference::parse(n) {
        Ok(r) if n.contains('/') => (r.repository(), r.tag().unwrap_or("<none>").to_string()),
        _ => (n.to_string(), "<none>".to_string()),
    }
}
