//! The SBOM of the final image: its packages, found in the databases it
//! carries (no network), as an SPDX 2.3 JSON document — the predicate of
//! an in-toto statement of type `https://spdx.dev/Document`, as BuildKit's
//! default generator (syft) writes it.

use super::binaries;
use super::packages::{self, OsRelease, Package};
use super::rootfs::LayeredFs;
use serde_json::{json, Value};

/// What the scan found.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub os: Option<OsRelease>,
    pub packages: Vec<Package>,
}

const PYTHON_ROOTS: &[&str] = &["/usr/lib", "/usr/local/lib"];

/// Reads the package databases of the image `fs` shows.
pub(crate) fn scan(fs: &LayeredFs) -> Found {
    let os = fs
        .read_string("/etc/os-release")
        .or_else(|| fs.read_string("/usr/lib/os-release"))
        .map(|t| packages::parse_os_release(&t))
        .filter(|o| !o.id.is_empty());
    let mut pkgs = Vec::new();
    const STATUS: &str = "/var/lib/dpkg/status";
    if let Some(t) = fs.read_string(STATUS) {
        pkgs.extend(packages::parse_dpkg_status(&t, STATUS));
    }
    for f in fs.list("/var/lib/dpkg/status.d") {
        if f.ends_with(".md5sums") || f.starts_with('.') {
            continue;
        }
        let path = format!("/var/lib/dpkg/status.d/{f}");
        if let Some(t) = fs.read_string(&path) {
            pkgs.extend(packages::parse_dpkg_status(&t, &path));
        }
    }
    for p in pkgs.iter_mut() {
        p.license = deb_license(fs, p);
    }
    const APK: &str = "/lib/apk/db/installed";
    if let Some(t) = fs.read_string(APK) {
        pkgs.extend(packages::parse_apk_installed(&t, APK));
    }
    for root in PYTHON_ROOTS {
        for py in fs.list(root).into_iter().filter(|d| d.starts_with("python")) {
            for sub in ["site-packages", "dist-packages"] {
                let dir = format!("{root}/{py}/{sub}");
                for d in fs.list(&dir).into_iter().filter(|d| d.ends_with(".dist-info")) {
                    let path = format!("{dir}/{d}/METADATA");
                    if let Some(p) = fs.read_string(&path).and_then(|t| packages::parse_python_metadata(&t, &path)) {
                        pkgs.push(p);
                    }
                }
            }
        }
    }
    pkgs.extend(scan_files(fs));
    // The same package found twice (status and status.d): once.
    let mut seen = std::collections::HashSet::new();
    pkgs.retain(|p| seen.insert((p.kind, p.name.clone(), p.version.clone(), p.arch.clone())));
    Found { os, packages: pkgs }
}

/// At most this many files are looked at for npm packages and binaries.
const MAX_FILES: usize = 1_000_000;

/// Whether `path` is an installed npm package's manifest:
/// `…/node_modules/NAME/package.json` or `…/node_modules/@SCOPE/NAME/package.json`.
fn is_npm_manifest(path: &str) -> bool {
    let parts: Vec<&str> = path.rsplit('/').take(4).collect();
    match parts.as_slice() {
        ["package.json", _, "node_modules", ..] => true,
        ["package.json", _, scope, "node_modules"] => scope.starts_with('@'),
        _ => false,
    }
}

/// What the image's files say beyond the package databases: npm packages
/// in `node_modules`, the modules Go and cargo-auditable binaries record.
fn scan_files(fs: &LayeredFs) -> Vec<Package> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    for (path, real) in fs.files(MAX_FILES) {
        if is_npm_manifest(&path) {
            let text = std::fs::read_to_string(&real).unwrap_or_default();
            out.extend(packages::parse_npm_package_json(&text, &path));
            continue;
        }
        let Ok(f) = std::fs::File::open(&real) else { continue };
        let executable = f.metadata().is_ok_and(|m| m.permissions().mode() & 0o111 != 0 && m.len() >= 1024);
        let Some(sections) = executable.then(|| binaries::elf_sections(&f)).flatten() else { continue };
        if let Some(info) = sections.go_buildinfo.as_deref().and_then(binaries::parse_go_buildinfo) {
            out.extend(binaries::go_packages(&info, &path));
        }
        if let Some(pkgs) = sections.dep_v0.as_deref().and_then(|d| binaries::cargo_packages(d, &path)) {
            out.extend(pkgs);
        }
    }
    out
}

/// A Debian package's licenses from its copyright file, as an SPDX expression.
fn deb_license(fs: &LayeredFs, p: &Package) -> Option<String> {
    let text = fs.read_string(&format!("/usr/share/doc/{}/copyright", p.name))?;
    let ids: Vec<&str> = {
        let mut v: Vec<&str> =
            packages::debian_copyright_licenses(&text).iter().filter_map(|l| packages::spdx_license_id(l)).collect();
        v.dedup();
        let mut seen = std::collections::HashSet::new();
        v.retain(|x| seen.insert(*x));
        v
    };
    (!ids.is_empty()).then(|| ids.join(" AND "))
}

/// percent-encodes what a purl segment may not hold as is.
fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b".-_~+:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The package's purl: `pkg:deb/debian/NAME@VERSION?arch=…&distro=debian-12`.
pub(crate) fn purl(p: &Package, os: Option<&OsRelease>) -> String {
    // The distro names the namespace when the database is its own (a deb in
    // Debian or Ubuntu, an apk in Alpine or Wolfi); else the family's default.
    let own = |ids: &[&str]| os.filter(|o| ids.contains(&o.id.as_str()) || (p.kind == "deb" && o.id != "alpine"));
    let (ns, distro) = match p.kind {
        "deb" => match own(&[]) {
            Some(o) => (o.id.clone(), o.distro()),
            None => ("debian".to_string(), None),
        },
        "apk" => match own(&["alpine", "wolfi", "chainguard", "postmarketos"]) {
            Some(o) => (o.id.clone(), o.distro()),
            None => ("alpine".to_string(), None),
        },
        _ => (String::new(), None),
    };
    let name = if p.kind == "pypi" { p.name.to_ascii_lowercase().replace('_', "-") } else { p.name.clone() };
    // A Go module path and an npm scope are the purl's namespace segments.
    let name = match p.kind {
        "golang" | "npm" => name.split('/').map(pct).collect::<Vec<_>>().join("/"),
        _ => pct(&name),
    };
    // The Go standard library's version is the toolchain's, without `go`.
    let version = match (p.kind, p.name.as_str()) {
        ("golang", "stdlib") => p.version.trim_start_matches("go"),
        _ => p.version.as_str(),
    };
    let mut s = format!("pkg:{}/", p.kind);
    if !ns.is_empty() {
        s.push_str(&pct(&ns));
        s.push('/');
    }
    s.push_str(&format!("{name}@{}", pct(version)));
    let mut q = Vec::new();
    if let Some(a) = &p.arch {
        q.push(format!("arch={}", pct(a)));
    }
    if let Some(d) = distro {
        q.push(format!("distro={}", pct(&d)));
    }
    if p.kind != "pypi" {
        if let Some(src) = &p.source {
            q.push(format!("upstream={}", pct(src)));
        }
    }
    if !q.is_empty() {
        s.push('?');
        s.push_str(&q.join("&"));
    }
    s
}

/// An SPDX id: letters, digits, `.` and `-` only.
fn spdx_id(prefix: &str, name: &str, n: usize) -> String {
    let clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect();
    format!("SPDXRef-{prefix}-{clean}-{n}")
}

/// The SPDX 2.3 document of `found` for the image `name` (manifest `subject`).
pub(crate) fn spdx_document(found: &Found, name: &str, subject: &str, created: &str) -> Value {
    let root_id = "SPDXRef-DocumentRoot-Image";
    let mut packages = vec![json!({
        "name": name, "SPDXID": root_id, "versionInfo": subject,
        "downloadLocation": "NOASSERTION", "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION", "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
    })];
    let mut rels = vec![json!({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
        "relatedSpdxElement": root_id})];
    if let Some(os) = &found.os {
        let v = if os.version_id.is_empty() { &os.codename } else { &os.version_id };
        packages.push(json!({
            "name": os.id, "SPDXID": "SPDXRef-OperatingSystem", "versionInfo": v,
            "description": os.pretty_name, "downloadLocation": "NOASSERTION", "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION", "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "OPERATING-SYSTEM", "sourceInfo": "acquired package info from /etc/os-release",
        }));
        rels.push(json!({"spdxElementId": root_id, "relationshipType": "CONTAINS",
            "relatedSpdxElement": "SPDXRef-OperatingSystem"}));
    }
    for (i, p) in found.packages.iter().enumerate() {
        let id = spdx_id(&format!("Package-{}", p.kind), &p.name, i);
        let declared = match (&p.license, p.kind) {
            // apk and Python state licenses as SPDX expressions most of the time;
            // anything else is kept as a comment.
            (Some(l), "deb") => l.clone(),
            (Some(l), _) if l.chars().all(|c| c.is_ascii_alphanumeric() || " .-+()".contains(c)) => l.clone(),
            _ => "NOASSERTION".to_string(),
        };
        let mut pkg = json!({
            "name": p.name, "SPDXID": id, "versionInfo": p.version,
            "downloadLocation": "NOASSERTION", "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION", "licenseDeclared": declared, "copyrightText": "NOASSERTION",
            "sourceInfo": format!("acquired package info from {}", p.found_in),
            "primaryPackagePurpose": if matches!(p.kind, "deb" | "apk") { "APPLICATION" } else { "LIBRARY" },
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                "referenceLocator": purl(p, found.os.as_ref())}],
        });
        if let Some(s) = &p.supplier {
            pkg["supplier"] = json!(format!("Person: {s}"));
        }
        if let Some(h) = &p.homepage {
            pkg["homepage"] = json!(h);
        }
        if let Some(s) = &p.summary {
            pkg["summary"] = json!(s);
        }
        if let (Some(l), "NOASSERTION") = (&p.license, declared.as_str()) {
            pkg["licenseComments"] = json!(l);
        }
        packages.push(pkg);
        rels.push(json!({"spdxElementId": root_id, "relationshipType": "CONTAINS", "relatedSpdxElement": id}));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": format!("https://wharf.invalid/spdx/{}", subject.trim_start_matches("sha256:")),
        "creationInfo": {"created": created,
            "creators": [format!("Tool: wharf-{}", env!("CARGO_PKG_VERSION"))]},
        "packages": packages,
        "relationships": rels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(kind: &'static str, name: &str, version: &str) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            kind,
            arch: Some("amd64".into()),
            source: None,
            license: None,
            supplier: None,
            homepage: None,
            summary: None,
            found_in: "x".into(),
        }
    }

    fn pkg_noarch(kind: &'static str, name: &str, version: &str) -> Package {
        Package { arch: None, ..pkg(kind, name, version) }
    }

    #[test]
    fn purls() {
        let os = packages::parse_os_release("ID=debian\nVERSION_ID=12\n");
        let mut p = pkg("deb", "libc6", "2.36-9+deb12u4");
        p.source = Some("glibc".into());
        assert_eq!(
            purl(&p, Some(&os)),
            "pkg:deb/debian/libc6@2.36-9+deb12u4?arch=amd64&distro=debian-12&upstream=glibc"
        );
        let p = pkg("deb", "login", "1:4.13+dfsg1-1");
        assert_eq!(purl(&p, Some(&os)), "pkg:deb/debian/login@1:4.13+dfsg1-1?arch=amd64&distro=debian-12");
        let alpine = packages::parse_os_release("ID=alpine\nVERSION_ID=3.19.1\n");
        let mut p = pkg("apk", "musl", "1.2.4-r2");
        p.arch = Some("x86_64".into());
        assert_eq!(purl(&p, Some(&alpine)), "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1");
        // An apk database in a Debian image: Alpine's namespace, no distro.
        assert_eq!(purl(&p, Some(&os)), "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64");
        let mut p = pkg("pypi", "Foo_Bar", "1.0");
        p.arch = None;
        assert_eq!(purl(&p, None), "pkg:pypi/foo-bar@1.0");
        let p = pkg_noarch("npm", "@types/node", "20.1.0");
        assert_eq!(purl(&p, Some(&os)), "pkg:npm/%40types/node@20.1.0");
        let p = pkg_noarch("golang", "github.com/docker/distribution", "v2.8.2+incompatible");
        assert_eq!(purl(&p, None), "pkg:golang/github.com/docker/distribution@v2.8.2+incompatible");
        assert_eq!(purl(&pkg_noarch("golang", "stdlib", "go1.19.8"), None), "pkg:golang/stdlib@1.19.8");
        assert_eq!(purl(&pkg_noarch("cargo", "serde", "1.0.190"), None), "pkg:cargo/serde@1.0.190");
        assert!(is_npm_manifest("/app/node_modules/left-pad/package.json"));
        assert!(is_npm_manifest("/app/node_modules/@types/node/package.json"));
        assert!(is_npm_manifest("/node_modules/a/node_modules/b/package.json"));
        assert!(!is_npm_manifest("/app/package.json"));
        assert!(!is_npm_manifest("/app/node_modules/a/lib/package.json"));
    }

    #[test]
    fn document_relationships() {
        let found = Found {
            os: Some(packages::parse_os_release("ID=debian\nVERSION_ID=12\nPRETTY_NAME=\"Debian 12\"\n")),
            packages: vec![pkg("deb", "a+b", "1"), pkg("deb", "a+b", "2")],
        };
        let d = spdx_document(&found, "img", "sha256:ab", "2024-01-01T00:00:00Z");
        assert_eq!(d["spdxVersion"], "SPDX-2.3");
        let ids: Vec<&str> = d["packages"].as_array().unwrap().iter().map(|p| p["SPDXID"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), 4);
        assert_eq!(ids.iter().collect::<std::collections::HashSet<_>>().len(), 4, "ids are unique");
        assert!(ids.iter().all(|i| i.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')));
        let rels = d["relationships"].as_array().unwrap();
        assert_eq!(rels[0]["relationshipType"], "DESCRIBES");
        assert_eq!(rels.iter().filter(|r| r["relationshipType"] == "CONTAINS").count(), 3);
    }
}
