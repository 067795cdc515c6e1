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

/// The toolchain version a Go binary's build info records (read here
/// byte by byte, independently of wharf: magic, 32-byte header, a length byte).
fn go_toolchain_of(bin: &Path) -> String {
    let bytes = std::fs::read(bin).unwrap();
    let magic = b"\xff Go buildinf:";
    let at = bytes.windows(magic.len()).position(|w| w == magic).expect("no Go build info");
    assert_ne!(bytes[at + 15] & 2, 0, "{}: build info not inline (Go < 1.18)", bin.display());
    let n = bytes[at + 32] as usize;
    String::from_utf8(bytes[at + 33..at + 33 + n].to_vec()).unwrap()
}

/// A program with a cargo-auditable `.dep-v0` section: cargo-auditable is
/// not installable offline, so its section (zlib-compressed JSON, the
/// format it writes) is added to a copy of /bin/true with objcopy.
fn auditable_binary(dir: &Path, json: &str) -> PathBuf {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(json.as_bytes()).unwrap();
    let section = dir.join("dep-v0.bin");
    std::fs::write(&section, z.finish().unwrap()).unwrap();
    let out = dir.join("auditable");
    let st = Command::new(require_tool("objcopy"))
        .arg("--add-section")
        .arg(format!(".dep-v0={}", section.display()))
        .arg("/bin/true")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::remove_file(section).unwrap();
    out
}

fn statement_file(p: &Path) -> Value {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", p.display());
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// `-o type=local|tar` with --provenance/--sbom write the statements next
/// to each platform's filesystem (BuildKit's file names, the output's files
/// as subjects); the SBOM names npm packages in node_modules, a Go binary's
/// modules (Debian's docker-registry) and a cargo-auditable binary's crates;
/// `-o type=oci` of one platform holds the index with its attestation
/// manifest; `-o type=docker` is refused before anything is built.
#[test]
fn local_tar_oci_outputs_carry_attestations() {
    if !privileged("local_tar_oci_outputs_carry_attestations") {
        return;
    }
    let s = TestStore::new();
    let ctx = write_context(
        &s.path("ctx"),
        &[
            (
                "Dockerfile",
                "FROM scratch\nCOPY app /app/\nCOPY docker-registry /usr/bin/registry\n\
COPY auditable /usr/bin/auditable\n",
            ),
            ("app/node_modules/left-pad/package.json", r#"{"name":"left-pad","version":"1.3.0","license":"WTFPL"}"#),
            ("app/node_modules/@types/node/package.json", r#"{"name":"@types/node","version":"20.1.0"}"#),
            ("app/node_modules/left-pad/lib/package.json", r#"{"name":"not-a-package","version":"9"}"#),
            ("app/package.json", r#"{"name":"the-app","version":"0.0.1"}"#),
        ],
    );
    std::fs::copy(require_tool("docker-registry"), ctx.join("docker-registry")).unwrap();
    auditable_binary(
        &ctx,
        r#"{"packages":[{"name":"tool","version":"0.3.0","source":"local","root":true,"dependencies":[1]},
            {"name":"serde","version":"1.0.190","source":"crates.io"},
            {"name":"cc","version":"1.0.83","source":"crates.io","kind":"build"}]}"#,
    );
    let go = go_toolchain_of(&ctx.join("docker-registry"));
    let (local, tar) = (s.path("local"), s.path("fs.tar"));
    s.ok([
        "build",
        "-q",
        "--platform",
        "linux/amd64,linux/arm64",
        "--provenance=mode=min",
        "--sbom=true",
        "-t",
        "fs:1",
        "-o",
        &format!("type=local,dest={}", local.display()),
        "-o",
        &format!("type=tar,dest={}", tar.display()),
        ctx.to_str().unwrap(),
    ]);
    for plat in ["linux_amd64", "linux_arm64"] {
        let dir = local.join(plat);
        let sbom = statement_file(&dir.join("sbom.spdx.json"));
        let prov = statement_file(&dir.join("provenance.json"));
        assert_eq!(sbom["predicateType"], "https://spdx.dev/Document");
        assert_eq!(prov["predicateType"], "https://slsa.dev/provenance/v0.2");
        assert_eq!(prov["predicate"]["buildType"], "https://mobyproject.org/buildkit@v1");
        // The subjects: every file of the output, by path and digest.
        let subjects = sbom["subject"].as_array().unwrap();
        let names: Vec<&str> = subjects.iter().map(|x| x["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"usr/bin/registry") && names.contains(&"app/package.json"), "{names:?}");
        assert!(!names.iter().any(|n| n.ends_with(".json") && !n.contains('/')), "no statement is its own subject");
        let pkg_json = subjects.iter().find(|x| x["name"] == "app/package.json").unwrap();
        let want = ring::digest::digest(&ring::digest::SHA256, &std::fs::read(dir.join("app/package.json")).unwrap());
        assert_eq!(pkg_json["digest"]["sha256"].as_str().unwrap(), hex_of(want.as_ref()));
        assert_eq!(prov["subject"], sbom["subject"]);
        let pkgs = sbom_packages(&sbom["predicate"]);
        let has = |n: &str, purl: &str| pkgs.iter().any(|p| p.0 == n && p.2 == purl);
        assert!(has("left-pad", "pkg:npm/left-pad@1.3.0"), "{pkgs:?}");
        assert!(has("@types/node", "pkg:npm/%40types/node@20.1.0"), "{pkgs:?}");
        assert!(!pkgs.iter().any(|p| p.0 == "not-a-package" || p.0 == "the-app"), "only node_modules: {pkgs:?}");
        let stdlib = format!("pkg:golang/stdlib@{}", go.trim_start_matches("go"));
        assert!(pkgs.iter().any(|p| p.0 == "stdlib" && p.1 == go && p.2 == stdlib), "{go}: {pkgs:?}");
        assert!(has("serde", "pkg:cargo/serde@1.0.190") && has("tool", "pkg:cargo/tool@0.3.0"), "{pkgs:?}");
        assert!(!pkgs.iter().any(|p| p.0 == "cc"), "build dependencies are not in the binary: {pkgs:?}");
        let go_pkg = sbom["predicate"]["packages"].as_array().unwrap().iter().find(|p| p["name"] == "stdlib").unwrap();
        assert_eq!(go_pkg["sourceInfo"], "acquired package info from /usr/bin/registry");
    }
    // The tar: the same tree, names without `./`.
    let list = Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    for want in ["linux_amd64/sbom.spdx.json", "linux_arm64/provenance.json", "linux_arm64/usr/bin/auditable"] {
        assert!(list.lines().any(|l| l == want), "{want} not in the tar: {list}");
    }
    assert!(!list.contains("./"), "{list}");

    // One platform to an OCI archive: its index with the attestation manifest.
    let oci = s.path("one.oci.tar");
    s.ok(["build", "-q", "--sbom=true", "-t", "fs:2", "-o", &format!("type=oci,dest={}", oci.display())]
        .into_iter()
        .chain([ctx.to_str().unwrap()]));
    let idx = Command::new("tar").arg("-xOf").arg(&oci).arg("index.json").output().unwrap();
    let idx: Value = serde_json::from_slice(&idx.stdout).unwrap();
    assert_eq!(idx["manifests"][0]["mediaType"], "application/vnd.oci.image.index.v1+json", "{idx}");
    let top = idx["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let inner = Command::new("tar").arg("-xOf").arg(&oci).arg(format!("blobs/sha256/{top}")).output().unwrap();
    let inner: Value = serde_json::from_slice(&inner.stdout).unwrap();
    let kinds: Vec<&str> = inner["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["annotations"][ATT_TYPE].as_str().unwrap_or("image"))
        .collect();
    assert_eq!(kinds, ["image", "attestation-manifest"], "{inner}");

    // A docker archive cannot hold them: refused first, as buildx does.
    let docker = s.path("d.tar");
    let e = s.fails(
        ["build", "-q", "--sbom=true", "-t", "fs:3", "-o"]
            .into_iter()
            .chain([format!("type=docker,dest={}", docker.display()).as_str(), ctx.to_str().unwrap()]),
    );
    assert!(e.contains("type=oci"), "{e}");
    assert!(!docker.exists());
    assert!(s.fails(["inspect", "fs:3"]).contains("fs:3"), "nothing was built");
    assert_no_leaks(&s);
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
