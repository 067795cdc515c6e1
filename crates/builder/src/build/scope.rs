//! ARG and ENV as Docker scopes them: global ARGs (before the first FROM)
//! serve FROM lines and the stages that redeclare them; `--build-arg`
//! overrides declared ARGs (and the predefined proxy ARGs, declared or
//! not); ENV wins over ARG; RUN sees both as environment variables, but
//! only ENV is stored in the image.

use crate::{ArgDecl, Env};
use std::collections::BTreeMap;

/// ARGs usable without a declaration when passed with --build-arg.
const PREDEFINED: [&str; 8] =
    ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy"];

#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    build_args: BTreeMap<String, String>,
    /// Global ARGs with their values (None: declared without one).
    global: BTreeMap<String, Option<String>>,
    /// The platform ARGs (TARGETPLATFORM, ...), known in the global scope.
    platform: BTreeMap<String, String>,
    /// ARGs declared in the current stage, with their values.
    args: BTreeMap<String, Option<String>>,
    /// The stage's ENV (from the base image and ENV instructions).
    env: BTreeMap<String, String>,
}

/// The view a lexer expands words against.
pub(crate) struct View(BTreeMap<String, String>);

impl Env for View {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl Scope {
    pub(crate) fn new(build_args: BTreeMap<String, String>, platform: BTreeMap<String, String>) -> Self {
        Scope { build_args, platform, ..Default::default() }
    }

    /// Declares a global ARG (before the first FROM).
    pub(crate) fn declare_global(&mut self, d: &ArgDecl) {
        let v = self.build_args.get(&d.name).cloned().or_else(|| d.default.clone());
        self.global.insert(d.name.clone(), v);
    }

    /// What FROM lines expand against.
    pub(crate) fn global_view(&self) -> View {
        let mut m = self.platform.clone();
        m.extend(self.global.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))));
        View(m)
    }

    /// A fresh stage scope whose ENV is the base image's.
    pub(crate) fn for_stage(&self, base_env: &[String]) -> Scope {
        let env =
            base_env.iter().filter_map(|e| e.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Scope { args: BTreeMap::new(), env, ..self.clone() }
    }

    /// `ARG name[=default]` inside a stage: a --build-arg wins, then the
    /// default, then a global ARG of that name, then the platform ARGs.
    pub(crate) fn declare(&mut self, d: &ArgDecl) {
        let v = self
            .build_args
            .get(&d.name)
            .cloned()
            .or_else(|| d.default.clone())
            .or_else(|| self.global.get(&d.name).cloned().flatten())
            .or_else(|| self.platform.get(&d.name).cloned());
        self.args.insert(d.name.clone(), v);
    }

    pub(crate) fn set_env(&mut self, key: &str, value: &str) {
        self.env.insert(key.to_string(), value.to_string());
    }

    /// What instructions of the stage expand against: ARGs, then ENV over them.
    pub(crate) fn view(&self) -> View {
        View(self.run_vars())
    }

    fn run_vars(&self) -> BTreeMap<String, String> {
        let mut m: BTreeMap<String, String> = BTreeMap::new();
        for p in PREDEFINED {
            if let Some(v) = self.build_args.get(p) {
                m.insert(p.to_string(), v.clone());
            }
        }
        m.extend(self.args.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))));
        m.extend(self.env.clone());
        m
    }

    /// The environment of a RUN: ENV plus ARG values (not stored in the image).
    pub(crate) fn run_env(&self) -> Vec<String> {
        self.run_vars().into_iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    /// ARG values in effect, for the cache key (a RUN's result depends on them).
    pub(crate) fn arg_fingerprint(&self) -> String {
        let mut out = String::new();
        for (k, v) in self.run_vars().iter().filter(|(k, _)| !self.env.contains_key(*k)) {
            out.push_str(&format!("{k}={v}\n"));
        }
        out
    }

    /// --build-args no ARG in the Dockerfile declared (Docker warns about them).
    pub(crate) fn unused(&self, declared: &[String]) -> Vec<String> {
        self.build_args.keys().filter(|k| !declared.contains(k) && !PREDEFINED.contains(&k.as_str())).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(n: &str, d: Option<&str>) -> ArgDecl {
        ArgDecl { name: n.into(), default: d.map(str::to_string) }
    }

    #[test]
    fn docker_scoping() {
        let mut ba = BTreeMap::new();
        ba.insert("V".to_string(), "from-cli".to_string());
        let mut s = Scope::new(ba, BTreeMap::new());
        s.declare_global(&decl("BASE", Some("alpine")));
        s.declare_global(&decl("V", Some("global")));
        assert_eq!(s.global_view().lookup("BASE"), Some("alpine"));
        assert_eq!(s.global_view().lookup("V"), Some("from-cli"));
        let mut st = s.for_stage(&["PATH=/bin".into()]);
        assert_eq!(st.view().lookup("BASE"), None, "a global ARG is not visible until redeclared");
        st.declare(&decl("BASE", None));
        assert_eq!(st.view().lookup("BASE"), Some("alpine"));
        st.declare(&decl("X", Some("1")));
        st.set_env("X", "env-wins");
        assert_eq!(st.view().lookup("X"), Some("env-wins"));
        assert!(st.run_env().contains(&"BASE=alpine".to_string()));
    }
}
