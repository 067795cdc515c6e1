//! SLSA provenance v0.2 as BuildKit writes it (`solver/llbsolver/provenance`):
//! the same `buildType`, the Dockerfile frontend's parameter names
//! (`build-arg:K`, `label:K`, `target`, `filename`, `platform`), materials
//! as `pkg:docker` purls with the digest the base was resolved to, and
//! BuildKit's metadata keys. In `max` mode BuildKit adds its LLB
//! definition; wharf has no LLB, and records its own steps instead
//! (`buildConfig.steps`: stage, platform, Dockerfile lines, the instruction
//! as written, cached or run), plus the Dockerfile itself under
//! BuildKit's `source.infos` key, so `imagetools`-style templates find it.

use super::{ProvenanceMode, Recorded};
use crate::build::BuildOptions;
use base64::Engine;
use serde_json::{json, Map, Value};
use wharf_image::{Platform, Reference};

pub(crate) const BUILD_TYPE: &str = "https://mobyproject.org/buildkit@v1";
pub(crate) const BUILDKIT_METADATA: &str = "https://mobyproject.org/buildkit@v1#metadata";

/// A `pkg:docker` purl as BuildKit's `RefToPURL` makes it: the familiar
/// name split into namespace and name, the tag (or `latest`) as the
/// version, a digest and the platform as qualifiers.
pub fn docker_purl(r: &Reference, platform: Option<&Platform>) -> String {
    let name_part = match r.domain() {
        "docker.io" => r.path().strip_prefix("library/").unwrap_or(r.path()).to_string(),
        _ => r.repository(),
    };
    let mut s = format!("pkg:docker/{name_part}@{}", r.tag().unwrap_or("latest"));
    let mut q = Vec::new();
    if let Some(d) = r.digest() {
        q.push(format!("digest={}", d.replace(':', "%3A")));
    }
    if let Some(p) = platform {
        q.push(format!("platform={}", p.to_string().replace('/', "%2F")));
    }
    if !q.is_empty() {
        s.push('?');
        s.push_str(&q.join("&"));
    }
    s
}

/// The statement's subjects: every name of the image (or `_`), with the
/// image manifest's digest.
pub(crate) fn subjects(tags: &[Reference], platform: &Platform, manifest: &str) -> Value {
    let digest = json!({"sha256": manifest.trim_start_matches("sha256:")});
    if tags.is_empty() {
        return json!([{"name": "_", "digest": digest}]);
    }
    Value::Array(tags.iter().map(|t| json!({"name": docker_purl(t, Some(platform)), "digest": digest})).collect())
}

/// The frontend parameters: in `min` mode those that say what was built
/// (target, file, platforms); `max` adds build args, labels and the other
/// build flags, and the ids (never the values) of secrets.
fn args(opts: &BuildOptions, mode: ProvenanceMode) -> Map<String, Value> {
    let mut a = Map::new();
    if let Some(t) = &opts.target {
        a.insert("target".into(), json!(t));
    }
    if let Some(f) = &opts.dockerfile {
        a.insert("filename".into(), json!(entry_point(opts, f)));
    }
    if !opts.platforms.is_empty() {
        let p: Vec<String> = opts.platforms.iter().map(|p| p.to_string()).collect();
        a.insert("platform".into(), json!(p.join(",")));
    }
    if opts.no_cache {
        a.insert("no-cache".into(), json!(""));
    }
    if mode == ProvenanceMode::Min {
        return a;
    }
    for (k, v) in &opts.build_args {
        a.insert(format!("build-arg:{k}"), json!(v));
    }
    for (k, v) in &opts.labels {
        a.insert(format!("label:{k}"), json!(v));
    }
    if !opts.add_hosts.is_empty() {
        let h: Vec<String> = opts.add_hosts.iter().map(|(n, ip)| format!("{n}={ip}")).collect();
        a.insert("add-hosts".into(), json!(h.join(",")));
    }
    if let Some(s) = opts.shm_size {
        a.insert("shm-size".into(), json!(s.to_string()));
    }
    if !opts.no_cache_filter.is_empty() {
        a.insert("no-cache".into(), json!(opts.no_cache_filter.join(",")));
    }
    for (name, c) in &opts.named_contexts {
        a.insert(format!("context:{name}"), json!(format!("{c:?}")));
    }
    a
}

/// The Dockerfile's path as BuildKit names it: relative to the context when inside it.
fn entry_point(opts: &BuildOptions, f: &std::path::Path) -> String {
    let abs = |p: &std::path::Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    match abs(f).strip_prefix(abs(&opts.context)) {
        Ok(rel) => rel.display().to_string(),
        Err(_) => f.display().to_string(),
    }
}

/// Everything the statement needs besides what the options say.
pub(crate) struct Facts<'a> {
    pub platform: &'a Platform,
    pub manifest: &'a str,
    pub invocation_id: &'a str,
    pub started: &'a str,
    pub finished: &'a str,
    pub recorded: &'a Recorded,
    pub dockerfile: Option<&'a [u8]>,
}

/// The in-toto statement of the provenance of one platform's image.
pub(crate) fn statement(opts: &BuildOptions, mode: ProvenanceMode, builder_id: &str, f: &Facts) -> Value {
    let materials: Vec<Value> = f
        .recorded
        .materials
        .iter()
        .map(|m| json!({"uri": m.uri, "digest": {"sha256": m.digest.trim_start_matches("sha256:")}}))
        .collect();
    let entry = opts.dockerfile.as_deref().map_or_else(|| "Dockerfile".to_string(), |d| entry_point(opts, d));
    let mut parameters = json!({
        "frontend": "dockerfile.v0",
        "args": args(opts, mode),
        "locals": [{"name": "context"}, {"name": "dockerfile"}],
    });
    let mut meta = json!({
        "buildInvocationID": f.invocation_id,
        "buildStartedOn": f.started,
        "buildFinishedOn": f.finished,
        "reproducible": false,
        // The local context is not a material: what it held is not recorded.
        "completeness": {"parameters": true, "environment": true, "materials": false},
    });
    let mut predicate = json!({
        "builder": {"id": builder_id},
        "buildType": BUILD_TYPE,
        "materials": materials,
        "invocation": {
            "configSource": {"entryPoint": entry},
            "parameters": Value::Null,
            "environment": {"platform": Platform::host().to_string()},
        },
    });
    if mode == ProvenanceMode::Max {
        let mut secrets: Vec<&String> = opts.secrets.keys().collect();
        secrets.sort();
        if !secrets.is_empty() {
            parameters["secrets"] =
                json!(secrets.iter().map(|s| json!({"id": s, "optional": false})).collect::<Vec<_>>());
        }
        predicate["buildConfig"] = json!({"steps": f.recorded.steps});
        if let Some(df) = f.dockerfile {
            let data = base64::engine::general_purpose::STANDARD.encode(df);
            meta[BUILDKIT_METADATA] =
                json!({"source": {"infos": [{"filename": entry, "language": "Dockerfile", "data": data}]}});
        }
    }
    predicate["invocation"]["parameters"] = parameters;
    predicate["metadata"] = meta;
    json!({
        "_type": wharf_image::attestation::STATEMENT_V01,
        "predicateType": wharf_image::attestation::SLSA_PROVENANCE_V02,
        "subject": subjects(&opts.tags, f.platform, f.manifest),
        "predicate": predicate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_as_buildkit() {
        let amd64 = Platform::parse("linux/amd64").unwrap();
        let r = Reference::parse("debian:bookworm").unwrap();
        assert_eq!(docker_purl(&r, Some(&amd64)), "pkg:docker/debian@bookworm?platform=linux%2Famd64");
        let r = Reference::parse("127.0.0.1:5000/a/b:v1").unwrap();
        assert_eq!(docker_purl(&r, Some(&amd64)), "pkg:docker/127.0.0.1:5000/a/b@v1?platform=linux%2Famd64");
        let r = Reference::parse("user/app").unwrap();
        assert_eq!(docker_purl(&r, None), "pkg:docker/user/app@latest");
    }
}
