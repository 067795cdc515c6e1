//! `wharf build --provenance --sbom`: SLSA provenance and SPDX SBOM
//! attached as BuildKit attaches them (an index; per platform an
//! attestation manifest, `unknown/unknown`, whose layers are in-toto
//! statements), pushed to a local docker-registry, read back with
//! `inspect` / `manifest inspect --format`, pulled into a fresh store
//! (the host's image, not the attestations, is what runs).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use wharf_tests::registry::{Auth, TestRegistry};
use wharf_tests::{mounts_under, privileged, require_tool, TestStore};

const ATT_TYPE: &str = "vnd.docker.reference.type";
const ATT_DIGEST: &str = "vnd.docker.reference.digest";

fn skopeo_raw(reference: &str) -> Value {
    let out = Command::new(require_tool("skopeo"))
        .args(["inspect", "--raw", "--tls-verify=false", reference])
        .output()
        .unwrap();
    assert!(out.status.success(), "skopeo inspect --raw {reference}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn blob(reg: &TestRegistry, repo: &str, digest: &str) -> Value {
    let out = Command::new(require_tool("curl"))
        .args(["-fsS", &format!("http://{}/v2/{repo}/blobs/{digest}", reg.addr)])
        .output()
        .unwrap();
    assert!(out.status.success(), "GET blob {digest}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn assert_no_leaks(s: &TestStore) {
    assert!(mounts_under(s.dir.path()).is_empty(), "mounts leaked: {:?}", mounts_under(s.dir.path()));
    let builds = s.dir.path().join("run/build");
    let left: Vec<_> = std::fs::read_dir(&builds).into_iter().flatten().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "build dirs left: {left:?}");
    s.assert_consistent();
}

/// The index `reference` and, per image manifest, its attestation
/// manifest's statements (fetched from the registry): checks BuildKit's layout.
fn attested(reg: &TestRegistry, repo: &str, tag: &str) -> Vec<(Value, Vec<Value>)> {
    let index = skopeo_raw(&format!("docker://{}/{repo}:{tag}", reg.addr));
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json", "{index}");
    let list = index["manifests"].as_array().unwrap();
    let images: Vec<&Value> = list.iter().filter(|m| m["platform"]["os"] != "unknown").collect();
    let atts: Vec<&Value> = list.iter().filter(|m| m["platform"]["os"] == "unknown").collect();
    assert_eq!(images.len(), atts.len(), "one attestation manifest per image: {index}");
    // As BuildKit: the attestation manifests come after every image.
    assert!(list[..images.len()].iter().all(|m| m["platform"]["os"] != "unknown"), "{index}");
    let mut out = Vec::new();
    for img in images {
        let d = img["digest"].as_str().unwrap();
        let att = atts.iter().find(|a| a["annotations"][ATT_DIGEST] == d).unwrap_or_else(|| panic!("no att for {d}"));
        assert_eq!(att["annotations"][ATT_TYPE], "attestation-manifest");
        assert_eq!(att["platform"]["architecture"], "unknown");
        let man = skopeo_raw(&format!("docker://{}/{repo}@{}", reg.addr, att["digest"].as_str().unwrap()));
        let cfg = blob(reg, repo, man["config"]["digest"].as_str().unwrap());
        assert_eq!((cfg["os"].as_str(), cfg["architecture"].as_str()), (Some("unknown"), Some("unknown")));
        let mut statements = Vec::new();
        for l in man["layers"].as_array().unwrap() {
            assert_eq!(l["mediaType"], "application/vnd.in-toto+json");
            let st = blob(reg, repo, l["digest"].as_str().unwrap());
            assert_eq!(l["annotations"]["in-toto.io/predicate-type"], st["predicateType"]);
            assert_eq!(st["_type"], "https://in-toto.io/Statement/v0.1");
            // Each statement is about the image manifest it is attached to.
            for s in st["subject"].as_array().unwrap() {
                assert_eq!(format!("sha256:{}", s["digest"]["sha256"].as_str().unwrap()), d, "{st}");
            }
            statements.push(st);
        }
        out.push(((*img).clone(), statements));
    }
    out
}

fn of_type<'a>(statements: &'a [Value], t: &str) -> &'a Value {
    statements.iter().find(|s| s["predicateType"] == t).unwrap_or_else(|| panic!("no {t} statement"))
}

/// (name, version, purl) of the SBOM's packages.
fn sbom_packages(doc: &Value) -> Vec<(String, String, String)> {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            let purl = p["externalRefs"][0]["referenceLocator"].as_str()?;
            Some((p["name"].as_str()?.to_string(), p["versionInfo"].as_str()?.to_string(), purl.to_string()))
        })
        .collect()
}

fn write_context(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir.to_path_buf()
}

const STATUS: &str = "Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13.dfsg-1\nArchitecture: amd64\n\
Source: zlib\nDescription: compression library\n runtime\n\nPackage: gone\nStatus: deinstall ok config-files\n\
Version: 1\n\nPackage: base-files\nStatus: install ok installed\nVersion: 12.4+deb12u5\nArchitecture: amd64\n";

/// FROM scratch with hand-made package databases, for two platforms (no
/// RUN: nothing to emulate): the index holds two images and two
/// attestation manifests; pushed, written as an OCI archive, read back.
#[test]
fn scratch_two_platforms_attested_and_pushed() {
    if !privileged("scratch_two_platforms_attested_and_pushed") {
        return;
    }
    let s = TestStore::new();
    let reg = TestRegistry::start(Auth::None);
    let ctx = write_context(
        &s.path("ctx"),
        &[
            (
                "Dockerfile",
                "FROM scratch\nARG VERSION\nCOPY status /var/lib/dpkg/status\nCOPY tzdata /var/lib/dpkg/status.d/tzdata\n\
COPY os-release /etc/os-release\nCOPY installed /lib/apk/db/installed\n\
COPY METADATA /usr/lib/python3.11/site-packages/Foo_Bar-2.0.dist-info/METADATA\n",
            ),
            ("status", STATUS),
            ("tzdata", "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n"),
            ("os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n"),
            ("installed", "P:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\n\n"),
            ("METADATA", "Metadata-Version: 2.1\nName: Foo_Bar\nVersion: 2.0\nLicense: MIT\n\nbody\n"),
        ],
    );
    let name = format!("{}/attest/scratch:1", reg.addr);
    let oci = s.path("out.oci.tar");
    s.ok([
        "build",
        "-q",
        "--platform",
        "linux/amd64,linux/arm64",
        "--provenance=mode=max",
        "--sbom=true",
        "--build-arg",
        "VERSION=7",
        "--secret",
        &format!("id=tok,src={}", ctx.join("status").display()),
        "-t",
        &name,
        "--push",
        "-o",
        &format!("type=oci,dest={}", oci.display()),
        ctx.to_str().unwrap(),
    ]);
    let got = attested(&reg, "attest/scratch", "1");
    assert_eq!(got.len(), 2);
    for (img, statements) in &got {
        let plat = format!(
            "{}/{}",
            img["platform"]["os"].as_str().unwrap(),
            img["platform"]["architecture"].as_str().unwrap()
        );
        let sbom = of_type(statements, "https://spdx.dev/Document");
        let subject = sbom["subject"][0]["name"].as_str().unwrap();
        assert_eq!(subject, format!("pkg:docker/{}/attest/scratch@1?platform={}", reg.addr, plat.replace('/', "%2F")));
        let doc = &sbom["predicate"];
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        let pkgs = sbom_packages(doc);
        let has = |n: &str, v: &str, purl: &str| pkgs.iter().any(|p| p.0 == n && p.1 == v && p.2 == purl);
        assert!(
            has(
                "zlib1g",
                "1:1.2.13.dfsg-1",
                "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12&upstream=zlib"
            ),
            "{pkgs:?}"
        );
        assert!(
            has("base-files", "12.4+deb12u5", "pkg:deb/debian/base-files@12.4+deb12u5?arch=amd64&distro=debian-12"),
            "{pkgs:?}"
        );
        assert!(
            has("tzdata", "2024a-0+deb12u1", "pkg:deb/debian/tzdata@2024a-0+deb12u1?arch=all&distro=debian-12"),
            "{pkgs:?}"
        );
        assert!(pkgs.iter().any(|p| p.0 == "musl" && p.2 == "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64"), "{pkgs:?}");
        assert!(has("Foo_Bar", "2.0", "pkg:pypi/foo-bar@2.0"), "{pkgs:?}");
        assert!(!pkgs.iter().any(|p| p.0 == "gone"), "a removed package is not listed: {pkgs:?}");
        let os = doc["packages"].as_array().unwrap().iter().find(|p| p["SPDXID"] == "SPDXRef-OperatingSystem").unwrap();
        assert_eq!((os["name"].as_str(), os["versionInfo"].as_str()), (Some("debian"), Some("12")));
        let rels = doc["relationships"].as_array().unwrap();
        assert_eq!(rels.iter().filter(|r| r["relationshipType"] == "CONTAINS").count(), pkgs.len() + 1);
        let prov = &of_type(statements, "https://slsa.dev/provenance/v0.2")["predicate"];
        assert_eq!(prov["buildType"], "https://mobyproject.org/buildkit@v1");
        assert_eq!(prov["invocation"]["configSource"]["entryPoint"], "Dockerfile");
        let args = &prov["invocation"]["parameters"]["args"];
        assert_eq!(args["build-arg:VERSION"], "7", "max mode has the build args: {args}");
        assert_eq!(args["platform"], "linux/amd64,linux/arm64");
        assert_eq!(prov["invocation"]["parameters"]["secrets"][0]["id"], "tok");
        assert!(!prov.to_string().contains("Package: zlib1g"), "a secret's content is never in the provenance");
        let steps = prov["buildConfig"]["steps"].as_array().unwrap();
        assert!(steps.iter().any(|st| st["instruction"].as_str().unwrap().starts_with("COPY installed")), "{steps:?}");
        assert!(steps.iter().all(|st| st["platform"] == plat.as_str()));
        assert_eq!(prov["metadata"]["completeness"]["materials"], false);
        assert!(
            prov["metadata"]["buildStartedOn"].as_str().unwrap()
                <= prov["metadata"]["buildFinishedOn"].as_str().unwrap()
        );
        let df =
            prov["metadata"]["https://mobyproject.org/buildkit@v1#metadata"]["source"]["infos"][0]["data"].as_str();
        assert!(df.is_some(), "max mode carries the Dockerfile: {prov}");
    }
    // The OCI archive holds the same index, attestations included.
    let list = Command::new("tar").arg("-xOf").arg(&oci).arg("index.json").output().unwrap();
    let idx: Value = serde_json::from_slice(&list.stdout).unwrap();
    let top = idx["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let inner = Command::new("tar").arg("-xOf").arg(&oci).arg(format!("blobs/sha256/{top}")).output().unwrap();
    let inner: Value = serde_json::from_slice(&inner.stdout).unwrap();
    assert_eq!(inner["manifests"].as_array().unwrap().len(), 4, "{inner}");
    // Read back: from the store (inspect: the host's image) and from the registry (manifest inspect).
    let i: Value = serde_json::from_str(&s.ok(["inspect", &name])).unwrap();
    assert_eq!(i[0]["SBOM"]["SPDX"]["spdxVersion"], "SPDX-2.3");
    assert_eq!(i[0]["Provenance"]["SLSA"]["buildType"], "https://mobyproject.org/buildkit@v1");
    let fresh = TestStore::new();
    let by_plat: Value =
        serde_json::from_str(&fresh.ok(["manifest", "inspect", "--format", "{{json .Provenance}}", &name])).unwrap();
    assert!(by_plat["linux/arm64"]["SLSA"]["materials"].is_array(), "{by_plat}");
    let sbom: Value =
        serde_json::from_str(&fresh.ok(["manifest", "inspect", "--format", "{{json .SBOM}}", &name])).unwrap();
    assert_eq!(sbom["linux/amd64"]["SPDX"]["spdxVersion"], "SPDX-2.3");
    // Every platform pulled: the attestations are stored, not unpacked as layers.
    fresh.ok(["pull", "-q", "--all-platforms", &name]);
    let i: Value = serde_json::from_str(&fresh.ok(["inspect", &name])).unwrap();
    assert_eq!(i[0]["Architecture"], "amd64");
    assert_eq!(i[0]["SBOM"]["SPDX"]["spdxVersion"], "SPDX-2.3");
    let check = fresh.ok(["system", "check"]);
    assert!(!check.contains("not unpacked"), "attestation layers are not snapshots: {check}");
    assert_no_leaks(&s);
    assert_no_leaks(&fresh);
}

/// A real Debian base: the SBOM lists exactly what dpkg-query says is
/// installed, with versions; pushed, pulled into a fresh store, run.
#[test]
fn debian_image_sbom_matches_dpkg_and_runs_after_pull() {
    if !privileged("debian_image_sbom_matches_dpkg_and_runs_after_pull") {
        return;
    }
    let base = wharf_tests::debian_base(Path::new(env!("CARGO_TARGET_TMPDIR")));
    let s = TestStore::new();
    let reg = TestRegistry::start(Auth::None);
    s.ok(["import", base.to_str().unwrap(), "wharf-test/debian:bookworm"]);
    let ctx = write_context(
        &s.path("ctx"),
        &[("Dockerfile", "FROM wharf-test/debian:bookworm\nRUN echo attested > /proof\n")],
    );
    // Without the flags: a plain image manifest, as before.
    s.ok(["build", "-q", "-t", "wharf-test/plain:1", ctx.to_str().unwrap()]);
    let plain: Value = serde_json::from_str(&s.ok(["manifest", "inspect", "wharf-test/plain:1"])).unwrap();
    assert!(plain.get("layers").is_some(), "{plain}");
    let name = format!("{}/attest/debian:1", reg.addr);
    s.ok(["build", "-q", "--provenance=mode=min", "--sbom", "-t", &name, "--push", ctx.to_str().unwrap()]);
    let got = attested(&reg, "attest/debian", "1");
    assert_eq!(got.len(), 1, "one platform, still an index (as BuildKit)");
    let (_, statements) = &got[0];
    let prov = &of_type(statements, "https://slsa.dev/provenance/v0.2")["predicate"];
    let mat = &prov["materials"][0];
    assert_eq!(mat["uri"], "pkg:docker/wharf-test/debian@bookworm?platform=linux%2Famd64", "{prov}");
    let base_digest = s.ok(["inspect", "-f", "{{.Digest}}", "wharf-test/debian:bookworm"]);
    assert_eq!(format!("sha256:{}", mat["digest"]["sha256"].as_str().unwrap()), base_digest.trim());
    assert!(prov.get("buildConfig").is_none(), "min mode has no steps");
    assert!(prov["invocation"]["parameters"]["args"].get("build-arg:X").is_none());
    // What dpkg says is installed, against the SBOM.
    let fresh = TestStore::new();
    fresh.ok(["pull", "-q", &name]);
    let listed = fresh.ok([
        "run",
        "--rm",
        "--network",
        "none",
        &name,
        "dpkg-query",
        "-W",
        "-f",
        "${db:Status-Status} ${Package} ${Version}\\n",
    ]);
    let mut want: Vec<(String, String)> = listed
        .lines()
        .filter_map(|l| l.strip_prefix("installed "))
        .filter_map(|l| l.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())))
        .collect();
    want.sort();
    let doc = &of_type(statements, "https://spdx.dev/Document")["predicate"];
    let mut have: Vec<(String, String)> =
        sbom_packages(doc).into_iter().filter(|p| p.2.starts_with("pkg:deb/debian/")).map(|p| (p.0, p.1)).collect();
    have.sort();
    assert!(want.len() > 50, "{listed}");
    assert_eq!(have, want);
    let libc = sbom_packages(doc).into_iter().find(|p| p.0 == "libc6").unwrap();
    assert!(libc.2.contains("distro=debian-12") && libc.2.contains("upstream=glibc"), "{libc:?}");
    let lic = doc["packages"].as_array().unwrap().iter().find(|p| p["name"] == "bash").unwrap();
    assert!(lic["licenseDeclared"].as_str().unwrap().contains("GPL-3.0"), "{lic}");
    assert_eq!(fresh.ok(["run", "--rm", "--network", "none", &name, "cat", "/proof"]).trim(), "attested");
    assert_no_leaks(&s);
    assert_no_leaks(&fresh);
}

#[test]
fn bad_attestation_flags_are_clear_errors() {
    if !privileged("bad_attestation_flags_are_clear_errors") {
        return;
    }
    let s = TestStore::new();
    let ctx = write_context(&s.path("ctx"), &[("Dockerfile", "FROM scratch\nCOPY Dockerfile /\n")]);
    let e = s.fails(["build", "--sbom=generator=docker/buildkit-syft-scanner", "-t", "x:1", ctx.to_str().unwrap()]);
    assert!(e.contains("one SBOM generator"), "{e}");
    let e = s.fails(["build", "--provenance=mode=huge", "-t", "x:1", ctx.to_str().unwrap()]);
    assert!(e.contains("mode \"huge\""), "{e}");
    let e = s.fails(["build", "--attest", "type=vex", "-t", "x:1", ctx.to_str().unwrap()]);
    assert!(e.contains("type=provenance"), "{e}");
    assert!(s.fails(["inspect", "x:1"]).contains("x:1"));
    // Asked off, as buildx: no index.
    s.ok(["build", "-q", "--provenance=false", "--sbom=false", "-t", "x:1", ctx.to_str().unwrap()]);
    let m: Value = serde_json::from_str(&s.ok(["manifest", "inspect", "x:1"])).unwrap();
    assert!(m.get("layers").is_some(), "{m}");
    assert_no_leaks(&s);
}
