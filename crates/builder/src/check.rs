//! `wharf build --check`: BuildKit's Dockerfile checks (its `linter` rules,
//! same names and messages) run over a parsed Dockerfile, without building.
//! Rules that need the base image's environment (UndefinedVar) get it from
//! the caller; a stage whose base is unknown is not checked for it.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::error::{Error, LineRange};
use crate::instructions::{Command, Instruction, Stage, Step};
use crate::parser::{line, Warning};
use crate::shell::{Env, Lexer};
use crate::Dockerfile;

/// The result of a check: the warnings, in line order, and whether the
/// Dockerfile's `# check=error=true` asks for them to fail the check.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub warnings: Vec<Warning>,
    pub fail_on_warnings: bool,
}

/// A rule's one-line description and its documentation page, as BuildKit has them.
pub fn rule_info(rule: &str) -> Option<(&'static str, &'static str)> {
    RULES.iter().find(|(n, _, _)| *n == rule).map(|(_, d, u)| (*d, *u))
}

const RULES: &[(&str, &str, &str)] = &[
    ("StageNameCasing", "Stage names should be lowercase", "stage-name-casing"),
    ("FromAsCasing", "The 'as' keyword should match the case of the 'from' keyword", "from-as-casing"),
    ("NoEmptyContinuation", "Empty continuation lines will become errors in a future release", "no-empty-continuation"),
    (
        "ConsistentInstructionCasing",
        "All commands within the Dockerfile should use the same casing (either upper or lower)",
        "consistent-instruction-casing",
    ),
    ("DuplicateStageName", "Stage names should be unique", "duplicate-stage-name"),
    ("ReservedStageName", "Reserved words should not be used as stage names", "reserved-stage-name"),
    (
        "JSONArgsRecommended",
        "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals",
        "json-args-recommended",
    ),
    (
        "MaintainerDeprecated",
        "The MAINTAINER instruction is deprecated, use a label instead to define an image author",
        "maintainer-deprecated",
    ),
    ("UndefinedArgInFrom", "FROM command must use declared ARGs", "undefined-arg-in-from"),
    (
        "WorkdirRelativePath",
        "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes",
        "workdir-relative-path",
    ),
    ("UndefinedVar", "Variables should be defined before their use", "undefined-var"),
    (
        "MultipleInstructionsDisallowed",
        "Multiple instructions of the same type should not be used in the same stage",
        "multiple-instructions-disallowed",
    ),
    (
        "LegacyKeyValueFormat",
        "Legacy key/value format with whitespace separator should not be used",
        "legacy-key-value-format",
    ),
    (
        "RedundantTargetPlatform",
        "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior",
        "redundant-target-platform",
    ),
    ("SecretsUsedInArgOrEnv", "Sensitive data should not be used in the ARG or ENV commands", "secrets-used-in-arg-or-env"),
    (
        "FromPlatformFlagConstDisallowed",
        "FROM --platform flag should not use a constant value",
        "from-platform-flag-const-disallowed",
    ),
];

/// The URL BuildKit links each rule to.
pub fn rule_url(rule: &str) -> Option<String> {
    RULES
        .iter()
        .find(|(n, _, _)| *n == rule)
        .map(|(_, _, slug)| format!("https://docs.docker.com/go/dockerfile/rule/{slug}/"))
}

/// The platform ARGs every FROM line may use without declaring them.
const PLATFORM_ARGS: &[&str] = &[
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "TARGETSTAGE",
];

/// Checks `text`. `base_env` gives a base image's Env (`K=V` strings), or
/// `None` when the image is not known here.
pub fn check(text: &str, base_env: &dyn Fn(&str) -> Option<Vec<String>>) -> Result<CheckReport, Error> {
    let df = crate::parse_dockerfile(text)?;
    let mut out = df.warnings.clone();
    casing(&df, &mut out);
    stage_names(&df, &mut out);
    let global = global_args(&df, &mut out);
    let mut ends: Vec<StageEnd> = Vec::new();
    for stage in &df.stages {
        let end = check_stage(&df, stage, &global, &ends, base_env, &mut out);
        ends.push(end);
    }
    let (skip, all, error) = directive(df.check.as_deref());
    out.retain(|w| !all && w.rule.is_none_or(|r| !skip.iter().any(|s| s == r)));
    out.sort_by_key(|w| (w.lines.start, w.lines.end));
    Ok(CheckReport { warnings: out, fail_on_warnings: error })
}

/// `skip=A,B;error=true` (or `skip=all`).
fn directive(value: Option<&str>) -> (Vec<String>, bool, bool) {
    let (mut skip, mut all, mut error) = (Vec::new(), false, false);
    for part in value.unwrap_or_default().split(';') {
        match part.trim().split_once('=') {
            Some(("skip", v)) if v.trim() == "all" => all = true,
            Some(("skip", v)) => skip.extend(v.split(',').map(|s| s.trim().to_string())),
            Some(("error", v)) => error = v.trim() == "true",
            _ => {}
        }
    }
    (skip, all, error)
}

fn warn(out: &mut Vec<Warning>, lines: LineRange, rule: &'static str, message: String) {
    out.push(Warning::new(lines, Some(rule), message));
}

fn first_word(original: &str) -> &str {
    original.split_whitespace().next().unwrap_or_default()
}

fn self_consistent(s: &str) -> bool {
    s == s.to_lowercase() || s == s.to_uppercase()
}

/// ConsistentInstructionCasing: every keyword against the file's majority.
fn casing(df: &Dockerfile, out: &mut Vec<Warning>) {
    let words: Vec<(&str, LineRange)> = df
        .stages
        .iter()
        .flat_map(|s| {
            std::iter::once((first_word(&s.original), s.lines))
                .chain(s.steps.iter().map(|st| (first_word(&st.original), st.lines)))
        })
        .collect();
    let (mut lower, mut upper) = (0, 0);
    for (w, _) in &words {
        if self_consistent(w) {
            if *w == w.to_lowercase() {
                lower += 1
            } else {
                upper += 1
            }
        }
    }
    let majority_lower = lower > upper;
    for (w, lines) in words {
        let want = if majority_lower && w != w.to_lowercase() {
            "lowercase"
        } else if !majority_lower && w != w.to_uppercase() {
            "uppercase"
        } else {
            continue;
        };
        warn(
            out,
            lines,
            "ConsistentInstructionCasing",
            format!("Command '{w}' should match the case of the command majority ({want})"),
        );
    }
}

/// StageNameCasing, FromAsCasing, ReservedStageName (DuplicateStageName comes from parsing).
fn stage_names(df: &Dockerfile, out: &mut Vec<Warning>) {
    for s in &df.stages {
        let words: Vec<&str> = s.original.split_whitespace().filter(|w| !w.starts_with("--")).collect();
        if let [from, _, as_, name] = words.as_slice() {
            if *name != name.to_lowercase() {
                warn(out, s.lines, "StageNameCasing", format!("Stage name '{name}' should be lowercase"));
            }
            let from_lower = *from == from.to_lowercase();
            let from_upper = *from == from.to_uppercase();
            let bad =
                (from_lower && *as_ != as_.to_lowercase()) || (from_upper && !from_lower && *as_ != as_.to_uppercase());
            if bad {
                warn(out, s.lines, "FromAsCasing", format!("'{as_}' and '{from}' keywords' casing do not match"));
            }
        }
        let Some(name) = &s.name else { continue };
        if name == "scratch" || name == "context" {
            warn(
                out,
                s.lines,
                "ReservedStageName",
                format!("Stage name should not use the same name as reserved stage {name:?}"),
            );
        }
    }
}

/// An environment that remembers the names it was asked for and did not have.
struct Recording<'a> {
    vars: &'a HashMap<String, String>,
    missing: RefCell<BTreeSet<String>>,
}

impl Env for Recording<'_> {
    fn lookup(&self, name: &str) -> Option<&str> {
        let v = self.vars.get(name).map(String::as_str);
        if v.is_none() {
            self.missing.borrow_mut().insert(name.to_string());
        }
        v
    }
}

/// Expands `step` in `vars`; the names it used that are not set.
fn unset_names(lexer: &Lexer, step: &Step, vars: &HashMap<String, String>) -> BTreeSet<String> {
    let env = Recording { vars, missing: RefCell::new(BTreeSet::new()) };
    let _ = step.expand(lexer, &env);
    env.missing.into_inner()
}

/// BuildKit's suggestion: the closest name at a Levenshtein distance under 3.
fn suggest<'a>(name: &str, options: impl Iterator<Item = &'a String>) -> Option<String> {
    let mut best: Option<(usize, &String)> = None;
    for o in options {
        if o == name {
            return None;
        }
        let d = levenshtein(name, o);
        if d < best.map_or(3, |(b, _)| b) {
            best = Some((d, o));
        }
    }
    best.map(|(_, o)| o.clone())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// SecretsUsedInArgOrEnv: a name with a secret-like word (BuildKit's list) as
/// a whole `_`-separated part, and none of the allowed words.
fn is_secret_name(key: &str) -> bool {
    const DENY: &[&str] =
        &["apikey", "auth", "credential", "credentials", "key", "password", "pword", "passwd", "secret", "token"];
    const ALLOW: &[&str] = &["public", "file", "version"];
    let lower = key.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('_').collect();
    let edge = |list: &[&str]| {
        list.iter().any(|w| {
            lower == *w || parts.first() == Some(w) || parts.last() == Some(w) || lower.contains(&format!("_{w}_"))
        })
    };
    edge(DENY) && !edge(ALLOW)
}

/// Global ARGs: their values for FROM lines, and their own checks.
fn global_args(df: &Dockerfile, out: &mut Vec<Warning>) -> HashMap<String, String> {
    let lexer = df.lexer();
    let mut vars: HashMap<String, String> = PLATFORM_ARGS.iter().map(|a| (a.to_string(), String::new())).collect();
    for step in &df.global_args {
        secrets_in(step, out);
        if let Instruction::Arg(decls) = &step.instruction {
            for d in decls {
                let v = d.default.as_deref().map(|v| lexer.expand_word(v, &vars).unwrap_or_default());
                vars.insert(d.name.clone(), v.unwrap_or_default());
            }
        }
    }
    vars
}

fn secrets_in(step: &Step, out: &mut Vec<Warning>) {
    let (kind, keys): (&str, Vec<&str>) = match &step.instruction {
        Instruction::Arg(d) => ("ARG", d.iter().map(|d| d.name.as_str()).collect()),
        Instruction::Env(kv) => ("ENV", kv.iter().map(|kv| kv.key.as_str()).collect()),
        _ => return,
    };
    for k in keys.into_iter().filter(|k| is_secret_name(k)) {
        warn(
            out,
            step.lines,
            "SecretsUsedInArgOrEnv",
            format!("Do not use ARG or ENV instructions for sensitive data ({kind} {k:?})"),
        );
    }
}

/// What a later stage built on this one starts from.
#[derive(Clone, Default)]
struct StageEnd {
    /// None: the base image's environment is not known.
    vars: Option<HashMap<String, String>>,
    shell_set: bool,
    workdir_set: bool,
}

fn check_from(stage: &Stage, global: &HashMap<String, String>, lexer: &Lexer, out: &mut Vec<Warning>) {
    let declared: Vec<String> = global.keys().cloned().collect();
    let mut missing = BTreeSet::new();
    for w in std::iter::once(&stage.from.image).chain(stage.from.platform.as_ref()) {
        let env = Recording { vars: global, missing: RefCell::new(BTreeSet::new()) };
        let _ = lexer.expand_word(w, &env);
        missing.extend(env.missing.into_inner());
    }
    for m in missing {
        let mut msg = format!("FROM argument '{m}' is not declared");
        if let Some(s) = suggest(&m, declared.iter()) {
            msg.push_str(&format!(" (did you mean {s}?)"));
        }
        warn(out, stage.lines, "UndefinedArgInFrom", msg);
    }
    let Some(p) = &stage.from.platform else { return };
    if p == "$TARGETPLATFORM" || p == "${TARGETPLATFORM}" {
        warn(
            out,
            stage.lines,
            "RedundantTargetPlatform",
            format!("Setting platform to predefined {p} in FROM is redundant as this is the default behavior"),
        );
    } else if !p.contains('$') {
        let mut parts = p.split('/');
        let (os, arch) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        let name = stage.name.as_deref().unwrap_or_default();
        if !(name.contains(os) || (!arch.is_empty() && name.contains(arch))) {
            warn(
                out,
                stage.lines,
                "FromPlatformFlagConstDisallowed",
                format!("FROM --platform flag should not use constant value {p:?}"),
            );
        }
    }
}

fn check_stage(
    df: &Dockerfile,
    stage: &Stage,
    global: &HashMap<String, String>,
    ends: &[StageEnd],
    base_env: &dyn Fn(&str) -> Option<Vec<String>>,
    out: &mut Vec<Warning>,
) -> StageEnd {
    let lexer = df.lexer();
    check_from(stage, global, &lexer, out);
    let image = lexer.expand_word(&stage.from.image, global).unwrap_or_else(|_| stage.from.image.clone());
    let mut end =
        match df.stage_ref(&image).filter(|s| s.index < stage.index && !image.chars().all(|c| c.is_ascii_digit())) {
            Some(s) => ends[s.index].clone(),
            None if image == "scratch" => StageEnd { vars: Some(HashMap::new()), ..StageEnd::default() },
            None => StageEnd {
                vars: base_env(&image).map(|env| {
                    env.iter().filter_map(|e| e.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
                }),
                ..StageEnd::default()
            },
        };
    if let Some(vars) = &mut end.vars {
        let path = wharf_runtime::spec::DEFAULT_PATH_ENV.trim_start_matches("PATH=");
        vars.entry("PATH".into()).or_insert_with(|| path.to_string());
    }
    let mut once: BTreeMap<&'static str, LineRange> = BTreeMap::new();
    for step in &stage.steps {
        secrets_in(step, out);
        legacy_pairs(step, out);
        if let Some(vars) = &end.vars {
            for m in unset_names(&lexer, step, vars) {
                let mut msg = format!("Usage of undefined variable '${m}'");
                if let Some(s) = suggest(&m, vars.keys()) {
                    msg.push_str(&format!(" (did you mean ${s}?)"));
                }
                warn(out, step.lines, "UndefinedVar", msg);
            }
        }
        let expanded = end.vars.as_ref().and_then(|v| step.expand(&lexer, v).ok());
        match &step.instruction {
            Instruction::Arg(decls) => {
                for d in decls {
                    let v = d.default.as_deref().map(|v| match &end.vars {
                        Some(vars) => lexer.expand_word(v, vars).unwrap_or_default(),
                        None => String::new(),
                    });
                    let v = v.or_else(|| global.get(&d.name).cloned()).unwrap_or_default();
                    if let Some(vars) = &mut end.vars {
                        vars.entry(d.name.clone()).or_insert(v);
                    }
                }
            }
            Instruction::Env(_) => {
                if let (Some(Step { instruction: Instruction::Env(kvs), .. }), Some(vars)) = (&expanded, &mut end.vars)
                {
                    kvs.iter().for_each(|kv| _ = vars.insert(kv.key.clone(), kv.value.clone()));
                }
            }
            Instruction::Shell(_) => end.shell_set = true,
            Instruction::Workdir(w) => {
                let w = match &expanded {
                    Some(Step { instruction: Instruction::Workdir(e), .. }) => e.clone(),
                    _ => w.clone(),
                };
                if !end.workdir_set && !w.is_empty() && !w.starts_with('/') && !w.starts_with('$') {
                    warn(
                        out,
                        step.lines,
                        "WorkdirRelativePath",
                        format!("Relative workdir {w:?} can have unexpected results if the base image changes"),
                    );
                }
                end.workdir_set = true;
            }
            Instruction::Cmd(c) | Instruction::Entrypoint(c) => {
                let kw = step.instruction.keyword();
                if matches!(c, Command::Shell(_)) && !end.shell_set {
                    warn(
                        out,
                        step.lines,
                        "JSONArgsRecommended",
                        format!(
                            "JSON arguments recommended for {kw} to prevent unintended behavior related to OS signals"
                        ),
                    );
                }
                used_once(kw, step.lines, &mut once, out);
            }
            Instruction::Healthcheck(_) => used_once("HEALTHCHECK", step.lines, &mut once, out),
            _ => {}
        }
    }
    end
}

/// MultipleInstructionsDisallowed, reported at the earlier (ignored) one.
fn used_once(kw: &'static str, lines: LineRange, once: &mut BTreeMap<&'static str, LineRange>, out: &mut Vec<Warning>) {
    if let Some(prev) = once.insert(kw, lines) {
        warn(
            out,
            prev,
            "MultipleInstructionsDisallowed",
            format!("Multiple {kw} instructions should not be used in the same stage because only the last one will be used"),
        );
    }
}

/// LegacyKeyValueFormat: `ENV key value` instead of `ENV key=value`.
fn legacy_pairs(step: &Step, out: &mut Vec<Warning>) {
    let kw = match &step.instruction {
        Instruction::Env(_) => "ENV",
        Instruction::Label(_) => "LABEL",
        _ => return,
    };
    let rest = step.original.trim_start().split_once(char::is_whitespace).map_or("", |(_, r)| r);
    let words = line::parse_words(rest, '\\');
    if words.first().is_some_and(|w| !w.contains('=')) {
        warn(
            out,
            step.lines,
            "LegacyKeyValueFormat",
            format!("\"{kw} key=value\" should be used instead of legacy \"{kw} key value\" format"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<(usize, String)> {
        let env = |_: &str| Some(vec!["PATH=/usr/bin".to_string(), "HOME=/root".to_string()]);
        check(text, &env).unwrap().warnings.into_iter().map(|w| (w.lines.start, w.to_string())).collect()
    }

    #[test]
    fn buildkit_rules_with_their_messages() {
        let got = rules(
            "FROM debian AS Build\nfrom debian as b2\nFROM b2 as c\nCMD echo hi\nCMD [\"x\"]\nWORKDIR app\nENV API_TOKEN=x\nENV A b\nARG DB_PASSWORD\nCOPY $SRCDIR /x\nMAINTAINER me\n",
        );
        let want = [
            (1, "StageNameCasing: Stage name 'Build' should be lowercase"),
            (2, "ConsistentInstructionCasing: Command 'from' should match the case of the command majority (uppercase)"),
            (3, "FromAsCasing: 'as' and 'FROM' keywords' casing do not match"),
            (4, "JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals"),
            (4, "MultipleInstructionsDisallowed: Multiple CMD instructions should not be used in the same stage because only the last one will be used"),
            (6, "WorkdirRelativePath: Relative workdir \"app\" can have unexpected results if the base image changes"),
            (7, "SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ENV \"API_TOKEN\")"),
            (8, "LegacyKeyValueFormat: \"ENV key=value\" should be used instead of legacy \"ENV key value\" format"),
            (9, "SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ARG \"DB_PASSWORD\")"),
            (10, "UndefinedVar: Usage of undefined variable '$SRCDIR'"),
            (11, "MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label"),
        ];
        let got: Vec<(usize, &str)> = got.iter().map(|(l, m)| (*l, m.as_str())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn undefined_vars_and_suggestions() {
        let got = rules(
            "ARG VERSION=1\nFROM debian:$VERSON\nARG VERSION\nENV APP_HOME=/app\nWORKDIR $APP_HOM\nCOPY $HOME /h\n",
        );
        assert_eq!(
            got,
            vec![
                (2, "UndefinedArgInFrom: FROM argument 'VERSON' is not declared (did you mean VERSION?)".to_string()),
                (5, "UndefinedVar: Usage of undefined variable '$APP_HOM' (did you mean $APP_HOME?)".to_string()),
            ]
        );
        // Unknown base image: its environment is unknown, so no UndefinedVar.
        let r = check("FROM x\nCOPY $FOO /\n", &|_| None).unwrap();
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn check_directive_skips_and_fails() {
        let r = check("# check=skip=JSONArgsRecommended;error=true\nFROM scratch\nCMD x\nfrom scratch\n", &|_| None)
            .unwrap();
        assert!(r.fail_on_warnings);
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert_eq!(r.warnings[0].rule, Some("ConsistentInstructionCasing"));
    }

    #[test]
    fn secret_names() {
        for k in ["API_KEY", "password", "GITHUB_TOKEN", "secret_MESSAGE", "AUTH", "my_auth_header"] {
            assert!(is_secret_name(k), "{k}");
        }
        for k in ["PUBLIC_KEY", "KEY_FILE", "TOKENIZER", "MONKEY", "NODE_VERSION", "auth_version"] {
            assert!(!is_secret_name(k), "{k}");
        }
    }
}
