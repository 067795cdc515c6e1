//! Platforms (`os/arch[/variant]`), normalised as containerd's `platforms`
//! package does (`aarch64` → `arm64`, `x86_64` → `amd64`, `arm64/v8` →
//! `arm64`, `arm` → `arm/v7`), and the choice of one in an index.

use crate::error::{Error, Result};
use serde_json::Value;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    /// Empty when the architecture has none.
    pub variant: String,
}

impl Platform {
    /// `linux/arm64`, `linux/arm/v7`, `arm64` (linux implied), case-insensitive.
    pub fn parse(s: &str) -> Result<Platform> {
        let bad = |why: &str| Error::InvalidInput(format!("platform {s:?}: {why} (use os/arch[/variant])"));
        let lower = s.trim().to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        let (os, arch, variant) = match parts.as_slice() {
            [a] if !a.is_empty() && *a != "linux" => ("linux", *a, ""),
            [o, a] => (*o, *a, ""),
            [o, a, v] => (*o, *a, *v),
            _ => return Err(bad("malformed")),
        };
        if os.is_empty() || arch.is_empty() || [os, arch, variant].iter().any(|p| !p.bytes().all(is_word)) {
            return Err(bad("malformed"));
        }
        Ok(Platform::normalized(os, arch, variant))
    }

    /// A list of platforms separated by commas.
    pub fn parse_list(s: &str) -> Result<Vec<Platform>> {
        let mut out: Vec<Platform> = Vec::new();
        for p in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let p = Platform::parse(p)?;
            if !out.contains(&p) {
                out.push(p);
            }
        }
        if out.is_empty() {
            return Err(Error::InvalidInput(format!("platform list {s:?} is empty")));
        }
        Ok(out)
    }

    pub fn normalized(os: &str, arch: &str, variant: &str) -> Platform {
        let (arch, variant) = match (arch, variant) {
            ("x86_64" | "x86-64", v) => ("amd64", v),
            ("aarch64" | "arm64", "v8") | ("aarch64", "") => ("arm64", ""),
            ("aarch64", v) => ("arm64", v),
            ("armhf", "") => ("arm", "v7"),
            ("armel", "") => ("arm", "v6"),
            ("arm", "") => ("arm", "v7"),
            ("arm", v) if v.len() == 1 => ("arm", if v == "7" { "v7" } else { "v6" }),
            ("i386" | "i686", v) => ("386", v),
            (a, v) => (a, v),
        };
        Platform { os: os.to_string(), arch: arch.to_string(), variant: variant.to_string() }
    }

    /// The platform this process runs on.
    pub fn host() -> Platform {
        let variant = if crate::host_arch() == "arm" { "v7" } else { "" };
        Platform::normalized("linux", crate::host_arch(), variant)
    }

    pub fn is_host(&self) -> bool {
        *self == Platform::host()
    }

    /// From an index entry's or config's `os`/`architecture`/`variant` JSON.
    pub fn from_json(v: &Value) -> Option<Platform> {
        let f = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
        (!f("os").is_empty() && !f("architecture").is_empty())
            .then(|| Platform::normalized(f("os"), f("architecture"), f("variant")))
    }

    /// The index entry's `platform` object.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::json!({"architecture": self.arch, "os": self.os});
        if !self.variant.is_empty() {
            v["variant"] = Value::String(self.variant.clone());
        }
        v
    }

    /// Whether an image of platform `have` serves this one: same OS and
    /// architecture, and the same variant when both name one.
    pub fn accepts(&self, have: &Platform) -> bool {
        self.os == have.os
            && self.arch == have.arch
            && (self.variant.is_empty() || have.variant.is_empty() || self.variant == have.variant)
    }

    /// The BuildKit ARG names' values: `<P>PLATFORM`, `<P>OS`, `<P>ARCH`, `<P>VARIANT`.
    pub fn args(&self, prefix: &str) -> [(String, String); 4] {
        [
            (format!("{prefix}PLATFORM"), self.to_string()),
            (format!("{prefix}OS"), self.os.clone()),
            (format!("{prefix}ARCH"), self.arch.clone()),
            (format!("{prefix}VARIANT"), self.variant.clone()),
        ]
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// The entry of an index's `manifests` for `want`: an exact variant match
/// first, then one that leaves the variant open. Attestation manifests
/// (`unknown/unknown`) never match.
pub fn select<'a>(manifests: &'a [Value], want: &Platform) -> Option<&'a Value> {
    let plat = |m: &Value| m.get("platform").and_then(Platform::from_json);
    manifests
        .iter()
        .find(|m| plat(m).is_some_and(|p| p == *want))
        .or_else(|| manifests.iter().find(|m| plat(m).is_some_and(|p| want.accepts(&p))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_normalise() {
        assert_eq!(Platform::parse("linux/amd64").unwrap().to_string(), "linux/amd64");
        assert_eq!(Platform::parse("linux/aarch64").unwrap().to_string(), "linux/arm64");
        assert_eq!(Platform::parse("linux/arm64/v8").unwrap().to_string(), "linux/arm64");
        assert_eq!(Platform::parse("linux/arm").unwrap().to_string(), "linux/arm/v7");
        assert_eq!(Platform::parse("arm64").unwrap().to_string(), "linux/arm64");
        assert!(Platform::parse("linux/").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
        assert_eq!(Platform::parse_list("linux/amd64, linux/arm64,linux/amd64").unwrap().len(), 2);
        let m = vec![
            serde_json::json!({"digest": "a", "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}}),
            serde_json::json!({"digest": "b", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}}),
        ];
        assert_eq!(select(&m, &Platform::parse("linux/arm/v7").unwrap()).unwrap()["digest"], "b");
        assert!(select(&m, &Platform::parse("linux/arm64").unwrap()).is_none());
    }
}
