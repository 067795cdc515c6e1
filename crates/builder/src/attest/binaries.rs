//! What a compiled program says of the modules it was built from, read
//! from its ELF sections without running it: Go's build info
//! (`.go.buildinfo`: the toolchain, the main module and every dependency
//! with its version, as `go version -m` prints them) and cargo-auditable's
//! `.dep-v0` (zlib-compressed JSON of the crates linked in). Go binaries
//! older than 1.18 keep their build info behind pointers: not read.

use super::packages::Package;
use std::io::Read;

/// The sections wanted, from an ELF file's section headers.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Sections {
    pub go_buildinfo: Option<Vec<u8>>,
    pub dep_v0: Option<Vec<u8>>,
}

const MAX_SECTION: u64 = 16 << 20;

fn read_at(f: &std::fs::File, off: u64, len: u64) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    if len > MAX_SECTION {
        return None;
    }
    let mut buf = vec![0u8; len as usize];
    f.read_exact_at(&mut buf, off).ok()?;
    Some(buf)
}

/// An ELF file's fields, in its class (32/64 bits) and byte order.
struct Elf {
    wide: bool,
    big: bool,
}

impl Elf {
    fn u(&self, b: &[u8], off: usize, len: usize) -> Option<u64> {
        let s = b.get(off..off + len)?;
        let mut v = 0u64;
        for i in 0..len {
            let byte = if self.big { s[i] } else { s[len - 1 - i] };
            v = (v << 8) | u64::from(byte);
        }
        Some(v)
    }

    /// `(name offset, file offset, size)` of section header `h`.
    fn section(&self, h: &[u8]) -> Option<(u64, u64, u64)> {
        if self.wide {
            Some((self.u(h, 0, 4)?, self.u(h, 24, 8)?, self.u(h, 32, 8)?))
        } else {
            Some((self.u(h, 0, 4)?, self.u(h, 16, 4)?, self.u(h, 20, 4)?))
        }
    }
}

/// The `.go.buildinfo` and `.dep-v0` sections of the ELF file `f` (None:
/// not an ELF file, or one without section headers).
pub(crate) fn elf_sections(f: &std::fs::File) -> Option<Sections> {
    let ident = read_at(f, 0, 64)?;
    if &ident[..4] != b"\x7fELF" {
        return None;
    }
    let elf = Elf { wide: ident[4] == 2, big: ident[5] == 2 };
    let (shoff, shentsize, shnum, shstrndx) = if elf.wide {
        (elf.u(&ident, 0x28, 8)?, elf.u(&ident, 0x3a, 2)?, elf.u(&ident, 0x3c, 2)?, elf.u(&ident, 0x3e, 2)?)
    } else {
        (elf.u(&ident, 0x20, 4)?, elf.u(&ident, 0x2e, 2)?, elf.u(&ident, 0x30, 2)?, elf.u(&ident, 0x32, 2)?)
    };
    let min_entry = if elf.wide { 64 } else { 40 };
    if shoff == 0 || shnum == 0 || shstrndx >= shnum || shentsize < min_entry {
        return None;
    }
    let table = read_at(f, shoff, shnum * shentsize)?;
    let header = |i: u64| table.get((i * shentsize) as usize..((i + 1) * shentsize) as usize);
    let (_, str_off, str_size) = elf.section(header(shstrndx)?)?;
    let names = read_at(f, str_off, str_size.min(1 << 20))?;
    let mut out = Sections::default();
    for i in 0..shnum {
        let Some((name, off, size)) = header(i).and_then(|h| elf.section(h)) else { continue };
        let n = names.get(name as usize..).map(|s| s.split(|b| *b == 0).next().unwrap_or_default());
        match n {
            Some(b".go.buildinfo") => out.go_buildinfo = read_at(f, off, size),
            Some(b".dep-v0") => out.dep_v0 = read_at(f, off, size),
            _ => {}
        }
    }
    Some(out)
}

/// What a Go binary's build info says.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct GoInfo {
    /// `go1.19.8`.
    pub toolchain: String,
    /// The main package's path (`path` line).
    pub path: String,
    /// The main module and its version (`mod` line; `(devel)` when built from a checkout).
    pub main: Option<(String, String)>,
    /// The dependencies (`dep` lines, with their `=>` replacements applied).
    pub deps: Vec<(String, String)>,
}

fn uvarint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn varint_string(b: &[u8], pos: &mut usize) -> Option<String> {
    let n = uvarint(b, pos)? as usize;
    let s = b.get(*pos..pos.checked_add(n)?)?;
    *pos += n;
    Some(String::from_utf8_lossy(s).into_owned())
}

/// Parses the `.go.buildinfo` section (Go 1.18+: the strings inline after
/// the 32-byte header, each with a varint length).
pub(crate) fn parse_go_buildinfo(data: &[u8]) -> Option<GoInfo> {
    const MAGIC: &[u8] = b"\xff Go buildinf:";
    const INLINE: u8 = 0x2;
    if !data.starts_with(MAGIC) || data.len() < 32 || data[15] & INLINE == 0 {
        return None;
    }
    let mut pos = 32;
    let toolchain = varint_string(data, &mut pos)?;
    let modinfo = varint_string(data, &mut pos).unwrap_or_default();
    // The module info sits between two 16-byte sentinels.
    let m = modinfo.as_bytes();
    let modinfo = if m.len() >= 33 && m[m.len() - 17] == b'\n' {
        String::from_utf8_lossy(&m[16..m.len() - 16]).into_owned()
    } else {
        modinfo
    };
    let mut info = GoInfo { toolchain, ..Default::default() };
    let mut last_dep = false;
    for line in modinfo.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["path", p, ..] => info.path = p.to_string(),
            ["mod", p, v, ..] => {
                info.main = Some((p.to_string(), v.to_string()));
                last_dep = false;
            }
            ["dep", p, v, ..] => {
                info.deps.push((p.to_string(), v.to_string()));
                last_dep = true;
            }
            // A replacement of the dependency above: what was linked in.
            ["=>", p, v, ..] if last_dep => {
                if let Some(d) = info.deps.last_mut() {
                    *d = (p.to_string(), if v.is_empty() { d.1.clone() } else { v.to_string() });
                }
            }
            _ => {}
        }
    }
    Some(info)
}

/// The packages of a Go binary at `path`: its dependencies, its main
/// module, and the standard library of its toolchain (as syft lists them).
pub(crate) fn go_packages(info: &GoInfo, path: &str) -> Vec<Package> {
    let pkg = |name: &str, version: &str| Package::bare("golang", name, version, path);
    let mut out: Vec<Package> = info.main.iter().map(|(p, v)| pkg(p, v)).collect();
    out.extend(info.deps.iter().map(|(p, v)| pkg(p, v)));
    if !info.toolchain.is_empty() {
        out.push(pkg("stdlib", &info.toolchain));
    }
    out
}

/// The crates cargo-auditable recorded in `.dep-v0` (zlib-compressed
/// JSON), build-time-only ones left out: they are not in the binary.
pub(crate) fn cargo_packages(section: &[u8], path: &str) -> Option<Vec<Package>> {
    let mut text = Vec::new();
    flate2::read::ZlibDecoder::new(section).take(MAX_SECTION).read_to_end(&mut text).ok()?;
    let doc: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let mut out = Vec::new();
    for p in doc["packages"].as_array()? {
        if p["kind"].as_str() == Some("build") {
            continue;
        }
        let (Some(name), Some(version)) = (p["name"].as_str(), p["version"].as_str()) else { continue };
        out.push(Package::bare("cargo", name, version, path));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut n = s.len();
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
        out.extend_from_slice(s.as_bytes());
        out
    }

    /// A `.go.buildinfo` section as Go 1.18+ writes it.
    fn section(version: &str, modinfo: &str) -> Vec<u8> {
        let mut d = b"\xff Go buildinf:".to_vec();
        d.extend([8, 2]);
        d.resize(32, 0);
        d.extend(varint(version));
        // Between two 16-byte sentinels (their content does not matter here).
        let mut m = vec![b'S'; 16];
        m.extend_from_slice(modinfo.as_bytes());
        m.extend(vec![b'E'; 16]);
        d.extend(varint(&String::from_utf8(m).unwrap()));
        d
    }

    #[test]
    fn go_build_info_with_deps_and_replacements() {
        let mi = "path\texample.com/cmd/app\nmod\texample.com\tv1.4.0\th1:abc=\n\
dep\tgithub.com/pkg/errors\tv0.9.1\th1:x=\ndep\tgolang.org/x/sys\tv0.1.0\th1:y=\n\
=>\tgolang.org/x/sys\tv0.2.0\th1:z=\nbuild\t-compiler=gc\n";
        let info = parse_go_buildinfo(&section("go1.21.3", mi)).unwrap();
        assert_eq!(info.toolchain, "go1.21.3");
        assert_eq!(info.path, "example.com/cmd/app");
        assert_eq!(info.main, Some(("example.com".into(), "v1.4.0".into())));
        assert_eq!(
            info.deps,
            [("github.com/pkg/errors".into(), "v0.9.1".into()), ("golang.org/x/sys".into(), "v0.2.0".into())]
        );
        let pkgs = go_packages(&info, "/usr/bin/app");
        assert_eq!(pkgs.len(), 4);
        assert!(pkgs.iter().all(|p| p.kind == "golang" && p.found_in == "/usr/bin/app"));
        assert_eq!(pkgs[3].name, "stdlib");
        // Pre-1.18 (pointer) format, or not build info at all: nothing.
        let mut old = section("go1.16", mi);
        old[15] = 0;
        assert!(parse_go_buildinfo(&old).is_none());
        assert!(parse_go_buildinfo(b"nope").is_none());
    }

    #[test]
    fn cargo_auditable_section() {
        use std::io::Write;
        let json = r#"{"packages":[{"name":"app","version":"0.1.0","source":"local","root":true,"dependencies":[1,2]},
            {"name":"serde","version":"1.0.190","source":"crates.io"},
            {"name":"cc","version":"1.0.83","source":"crates.io","kind":"build"}]}"#;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(json.as_bytes()).unwrap();
        let pkgs = cargo_packages(&z.finish().unwrap(), "/app").unwrap();
        let got: Vec<(&str, &str)> = pkgs.iter().map(|p| (p.name.as_str(), p.version.as_str())).collect();
        assert_eq!(got, [("app", "0.1.0"), ("serde", "1.0.190")], "build dependencies are not in the binary");
        assert!(cargo_packages(b"not zlib", "/x").is_none());
    }
}
