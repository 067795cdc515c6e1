//! The package databases an image carries, parsed without a network:
//! dpkg's status file (and distroless' `status.d/`), Alpine's apk
//! `installed`, `/etc/os-release`, Python's `*.dist-info/METADATA`,
//! npm's `node_modules/**/package.json`. Pure functions on text: the file lookups are in `rootfs`.

use std::collections::BTreeMap;

/// One package found in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// `deb`, `apk`, `pypi`, `npm`, `golang` or `cargo`: the purl type.
    pub kind: &'static str,
    pub arch: Option<String>,
    /// The source package (deb `Source:`, apk origin) when it differs.
    pub source: Option<String>,
    /// The license as the database states it (apk `L:`, Python `License:`,
    /// the `License:` names of a Debian copyright file).
    pub license: Option<String>,
    pub supplier: Option<String>,
    pub homepage: Option<String>,
    pub summary: Option<String>,
    /// The file it was found in, for the SBOM's `sourceInfo`.
    pub found_in: String,
}

impl Package {
    /// A package known only by name and version (and where it was found):
    /// what a binary's embedded build info says.
    pub fn bare(kind: &'static str, name: &str, version: &str, found_in: &str) -> Package {
        Package {
            name: name.to_string(),
            version: version.to_string(),
            kind,
            arch: None,
            source: None,
            license: None,
            supplier: None,
            homepage: None,
            summary: None,
            found_in: found_in.to_string(),
        }
    }
}

/// `/etc/os-release`: the fields wharf uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    pub id: String,
    pub version_id: String,
    pub codename: String,
    pub pretty_name: String,
    pub name: String,
}

impl OsRelease {
    /// The purl `distro` qualifier: `debian-12`, `alpine-3.19.1`.
    pub fn distro(&self) -> Option<String> {
        if self.id.is_empty() {
            return None;
        }
        let v = if self.version_id.is_empty() { &self.codename } else { &self.version_id };
        Some(if v.is_empty() { self.id.clone() } else { format!("{}-{v}", self.id) })
    }
}

/// Parses os-release's `KEY=value` lines (values quoted or not, `#` comments).
pub fn parse_os_release(text: &str) -> OsRelease {
    let mut m = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let Some((k, v)) = line.split_once('=') else { continue };
        let v = v.trim();
        let v = match v.as_bytes().first() {
            Some(q @ (b'"' | b'\'')) if v.len() >= 2 && v.as_bytes()[v.len() - 1] == *q => &v[1..v.len() - 1],
            _ => v,
        };
        m.insert(k.trim().to_string(), v.replace("\\\"", "\"").replace("\\$", "$").replace("\\\\", "\\"));
    }
    let get = |k: &str| m.get(k).cloned().unwrap_or_default();
    OsRelease {
        id: get("ID").to_ascii_lowercase(),
        version_id: get("VERSION_ID"),
        codename: get("VERSION_CODENAME"),
        pretty_name: get("PRETTY_NAME"),
        name: get("NAME"),
    }
}

/// RFC 822-like paragraphs (dpkg, Python METADATA headers): `Key: value`,
/// continuation lines start with a space or tab, paragraphs are separated
/// by blank lines. Keys are kept as written; a repeated key keeps the first.
fn paragraphs(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut cur: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            last = None;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(v) = last.as_ref().and_then(|k| cur.get_mut(k)) {
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        match line.split_once(':') {
            Some((k, v)) if !k.contains(' ') => {
                let k = k.to_string();
                cur.entry(k.clone()).or_insert_with(|| v.trim().to_string());
                last = Some(k);
            }
            _ => last = None, // not a field: ignored, as dpkg-query would refuse it
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// dpkg's `status` (or one file of `status.d/`): the installed packages.
/// Entries whose `Status` is not `… installed` (removed with config files
/// left, half-installed) and entries without a name or version are skipped.
pub fn parse_dpkg_status(text: &str, found_in: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for p in paragraphs(text) {
        let (Some(name), Some(version)) = (p.get("Package"), p.get("Version")) else { continue };
        if name.is_empty() || version.is_empty() {
            continue;
        }
        // status.d/ files of distroless images have no Status: installed.
        if let Some(st) = p.get("Status") {
            if st.split_whitespace().last() != Some("installed") {
                continue;
            }
        }
        // `Source: name (version)` when the source version differs.
        let source =
            p.get("Source").and_then(|s| s.split_whitespace().next()).filter(|s| s != name).map(str::to_string);
        out.push(Package {
            name: name.clone(),
            version: version.clone(),
            kind: "deb",
            arch: p.get("Architecture").cloned(),
            source,
            license: None,
            supplier: p.get("Maintainer").cloned(),
            homepage: p.get("Homepage").cloned(),
            summary: p.get("Description").and_then(|d| d.lines().next()).map(str::to_string),
            found_in: found_in.to_string(),
        });
    }
    out
}

/// Alpine's `/lib/apk/db/installed`: `X:value` lines, a blank line between packages.
pub fn parse_apk_installed(text: &str, found_in: &str) -> Vec<Package> {
    let mut out = Vec::new();
    let mut cur: BTreeMap<char, String> = BTreeMap::new();
    let mut flush = |cur: &mut BTreeMap<char, String>| {
        let c = std::mem::take(cur);
        let (Some(name), Some(version)) = (c.get(&'P'), c.get(&'V')) else { return };
        if name.is_empty() || version.is_empty() {
            return;
        }
        out.push(Package {
            name: name.clone(),
            version: version.clone(),
            kind: "apk",
            arch: c.get(&'A').cloned(),
            source: c.get(&'o').filter(|o| *o != name).cloned(),
            license: c.get(&'L').cloned().filter(|l| !l.is_empty()),
            supplier: c.get(&'m').cloned(),
            homepage: c.get(&'U').cloned(),
            summary: c.get(&'T').cloned(),
            found_in: found_in.to_string(),
        });
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            flush(&mut cur);
            continue;
        }
        let mut chars = line.chars();
        if let (Some(k), Some(':')) = (chars.next(), chars.next()) {
            // Per-file lines (F:, R:, Z:, a:) repeat: the first of each key is the package's.
            cur.entry(k).or_insert_with(|| chars.as_str().to_string());
        }
    }
    flush(&mut cur);
    out
}

/// A Python distribution's `METADATA` (or `PKG-INFO`): the header part.
pub fn parse_python_metadata(text: &str, found_in: &str) -> Option<Package> {
    let header = text.split("\n\n").next().unwrap_or_default();
    let p = paragraphs(header).into_iter().next()?;
    let name = p.get("Name").filter(|n| !n.is_empty())?;
    let version = p.get("Version").filter(|v| !v.is_empty())?;
    let license = p
        .get("License-Expression")
        .or_else(|| p.get("License"))
        .filter(|l| !l.is_empty() && l.as_str() != "UNKNOWN" && !l.contains('\n'))
        .cloned();
    Some(Package {
        name: name.clone(),
        version: version.clone(),
        kind: "pypi",
        arch: None,
        source: None,
        license,
        supplier: p.get("Author").cloned(),
        homepage: p.get("Home-page").cloned(),
        summary: p.get("Summary").cloned(),
        found_in: found_in.to_string(),
    })
}

/// The `License:` names of a Debian machine-readable copyright file
/// (DEP-5), distinct, in order.
pub fn debian_copyright_licenses(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let Some(v) = line.strip_prefix("License:") else { continue };
        // `License: GPL-2+ or Artistic` names several.
        for name in v.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty()) {
            if matches!(name.to_ascii_lowercase().as_str(), "or" | "and" | "with" | "exception") {
                continue;
            }
            if !out.iter().any(|o| o == name) {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// Debian's license short names that have an SPDX identifier.
pub fn spdx_license_id(debian: &str) -> Option<&'static str> {
    Some(match debian {
        "GPL-2" => "GPL-2.0-only",
        "GPL-2+" => "GPL-2.0-or-later",
        "GPL-3" => "GPL-3.0-only",
        "GPL-3+" => "GPL-3.0-or-later",
        "LGPL-2" => "LGPL-2.0-only",
        "LGPL-2+" => "LGPL-2.0-or-later",
        "LGPL-2.1" => "LGPL-2.1-only",
        "LGPL-2.1+" => "LGPL-2.1-or-later",
        "LGPL-3" => "LGPL-3.0-only",
        "LGPL-3+" => "LGPL-3.0-or-later",
        "GPL-1+" => "GPL-1.0-or-later",
        "Artistic" => "Artistic-1.0-Perl",
        "Apache-2.0" => "Apache-2.0",
        "MIT" | "Expat" => "MIT",
        "BSD-2-clause" | "BSD-2-Clause" => "BSD-2-Clause",
        "BSD-3-clause" | "BSD-3-Clause" => "BSD-3-Clause",
        "BSD-4-clause" | "BSD-4-Clause" => "BSD-4-Clause",
        "ISC" => "ISC",
        "Zlib" | "zlib" => "Zlib",
        "public-domain" => return None,
        "MPL-2.0" => "MPL-2.0",
        "X11" => "X11",
        "curl" => "curl",
        "OpenSSL" => "OpenSSL",
        "PSF-2" => "PSF-2.0",
        "CC0-1.0" => "CC0-1.0",
        "GFDL-1.2+" => "GFDL-1.2-or-later",
        "GFDL-1.3+" => "GFDL-1.3-or-later",
        _ => return None,
    })
}

/// An npm package's `package.json` in a `node_modules` tree (the
/// installed package, as syft reads it): name, version, license
/// (`"MIT"` or the old `{"type": "MIT"}`), author, homepage, description.
pub fn parse_npm_package_json(text: &str, found_in: &str) -> Option<Package> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let name = v["name"].as_str().filter(|n| !n.is_empty())?;
    let version = v["version"].as_str().filter(|n| !n.is_empty())?;
    let license = v["license"].as_str().or_else(|| v["license"]["type"].as_str()).map(str::to_string);
    let author = v["author"].as_str().or_else(|| v["author"]["name"].as_str()).map(str::to_string);
    Some(Package {
        name: name.to_string(),
        version: version.to_string(),
        kind: "npm",
        arch: None,
        source: None,
        license,
        supplier: author,
        homepage: v["homepage"].as_str().map(str::to_string),
        summary: v["description"].as_str().filter(|d| !d.is_empty()).map(str::to_string),
        found_in: found_in.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_status_with_odd_entries() {
        let text = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\n\
Version: 2.36-9+deb12u4\nMaintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>\n\
Description: GNU C Library: Shared libraries\n Contains the standard libraries\n .\n more text\n\
Homepage: https://www.gnu.org/software/libc/libc.html\n\
\n\
Package: removed-pkg\nStatus: deinstall ok config-files\nVersion: 1.0\n\
\n\n\n\
Package: no-version\nStatus: install ok installed\n\
\n\
Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b2\nArchitecture: amd64\nSource: bash (5.2.15-2)\n\
Conffiles:\n /etc/bash.bashrc 89269e1298235f1b12b4c16e4065ad0d\n /etc/skel/.bashrc abc\n\
not a field line\n\
Package: half\nStatus: install reinstreq half-installed\nVersion: 2\n";
        let p = parse_dpkg_status(text, "/var/lib/dpkg/status");
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["libc6", "bash"]);
        assert_eq!(p[0].version, "2.36-9+deb12u4");
        assert_eq!(p[0].source.as_deref(), Some("glibc"));
        assert_eq!(p[0].arch.as_deref(), Some("amd64"));
        assert_eq!(p[0].summary.as_deref(), Some("GNU C Library: Shared libraries"));
        // `Source: bash (5.2.15-2)` names the package itself: no upstream.
        assert_eq!(p[1].source, None);
        assert_eq!(p[1].version, "5.2.15-2+b2");
    }

    #[test]
    fn dpkg_status_d_without_status_field_and_crlf_free_end() {
        let p = parse_dpkg_status("Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all", "x");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].arch.as_deref(), Some("all"));
        assert!(parse_dpkg_status("", "x").is_empty());
        assert!(parse_dpkg_status("\n\n \n", "x").is_empty());
        assert!(parse_dpkg_status(" continuation with no field\nPackage:\nVersion: 1\n", "x").is_empty());
    }

    #[test]
    fn apk_installed() {
        let text = "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nS:383152\nT:the musl c library\n\
U:https://musl.libc.org/\nL:MIT\no:musl\nm:Timo <timo@alpinelinux.org>\nF:lib\nR:libc.musl-x86_64.so.1\n\
\n\
P:busybox-binsh\nV:1.36.1-r15\nA:x86_64\nL:GPL-2.0-only\no:busybox\nF:bin\nR:sh\nF:usr\nR:x\n\
\n\
P:broken\n\
\n\
V:1.0\n";
        let p = parse_apk_installed(text, "/lib/apk/db/installed");
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].name.as_str(), p[0].version.as_str()), ("musl", "1.2.4-r2"));
        assert_eq!(p[0].license.as_deref(), Some("MIT"));
        assert_eq!(p[0].source, None);
        assert_eq!(p[1].source.as_deref(), Some("busybox"));
    }

    #[test]
    fn os_release_quotes_and_comments() {
        let o = parse_os_release(
            "# comment\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME='Debian GNU/Linux'\nVERSION_ID=\"12\"\n\
VERSION_CODENAME=bookworm\nID=debian\nnonsense\n",
        );
        assert_eq!(o.pretty_name, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(o.name, "Debian GNU/Linux");
        assert_eq!(o.distro().as_deref(), Some("debian-12"));
        let sid = parse_os_release("ID=debian\nVERSION_CODENAME=trixie\n");
        assert_eq!(sid.distro().as_deref(), Some("debian-trixie"));
        assert_eq!(parse_os_release("").distro(), None);
    }

    #[test]
    fn npm_package_json() {
        let p = parse_npm_package_json(
            r#"{"name":"@types/node","version":"20.1.0","license":{"type":"MIT"},"author":{"name":"A B"}}"#,
            "/app/node_modules/@types/node/package.json",
        )
        .unwrap();
        assert_eq!((p.name.as_str(), p.version.as_str(), p.kind), ("@types/node", "20.1.0", "npm"));
        assert_eq!((p.license.as_deref(), p.supplier.as_deref()), (Some("MIT"), Some("A B")));
        assert!(parse_npm_package_json(r#"{"name":"x"}"#, "/p").is_none(), "no version: not an installed package");
        assert!(parse_npm_package_json("not json", "/p").is_none());
    }

    #[test]
    fn python_metadata_and_copyright() {
        let m = "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache 2.0\n\nLong description\nName: not-this\n";
        let p = parse_python_metadata(m, "x").unwrap();
        assert_eq!(
            (p.name.as_str(), p.version.as_str(), p.license.as_deref()),
            ("requests", "2.31.0", Some("Apache 2.0"))
        );
        assert!(parse_python_metadata("Name: x\n", "x").is_none());
        let c = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\n\
License: GPL-2+\n\nFiles: a\nLicense: GPL-2+ or Artistic\n\nLicense: GPL-2+\n text\n";
        assert_eq!(debian_copyright_licenses(c), ["GPL-2+", "Artistic"]);
        assert_eq!(spdx_license_id("GPL-2+"), Some("GPL-2.0-or-later"));
        assert_eq!(spdx_license_id("custom"), None);
    }
}
