//! Golden files: `testdata/<case>/Dockerfile` must dump to `expected`;
//! `testdata-negative/<case>/Dockerfile` must fail with `expected-error`.
//! `WHARF_UPDATE_GOLDEN=1 cargo test -p wharf-builder --test golden`
//! rewrites them; review every changed file before committing it.
//!
//! Expansion is shown too (`=>` lines): a small model of Docker's ARG/ENV
//! scoping drives `Step::expand`, with the optional `build-args` file of a
//! case standing in for `--build-arg`.

mod dump;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use wharf_builder::{parse_dockerfile, Dockerfile, Error, Instruction, Step};

type Vars = BTreeMap<String, String>;

fn cases(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut cases: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Dockerfile").is_file())
        .collect();
    cases.sort();
    cases
}

fn update() -> bool {
    std::env::var_os("WHARF_UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

fn build_args(case: &Path) -> Vars {
    let text = fs::read_to_string(case.join("build-args")).unwrap_or_default();
    text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The platform args Docker defines without any ARG, fixed for stable files.
fn predefined() -> Vars {
    [
        ("BUILDPLATFORM", "linux/amd64"),
        ("BUILDOS", "linux"),
        ("BUILDARCH", "amd64"),
        ("TARGETPLATFORM", "linux/amd64"),
        ("TARGETOS", "linux"),
        ("TARGETARCH", "amd64"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Walks the file as a builder would, recording each step's expansion.
fn expand_all(df: &Dockerfile, args: &Vars) -> Result<BTreeMap<(usize, usize), Step>, Error> {
    let lexer = df.lexer();
    let mut out = BTreeMap::new();
    let mut global = predefined();
    for step in &df.global_args {
        let x = step.expand(&lexer, &global)?;
        declare(&x.instruction, args, &mut global, &Vars::new());
        out.insert((step.lines.start, step.lines.end), x);
    }
    let mut stage_env: Vec<Vars> = Vec::new();
    for stage in &df.stages {
        let from =
            Step { lines: stage.lines, original: String::new(), instruction: Instruction::From(stage.from.clone()) };
        let from = from.expand(&lexer, &global)?;
        out.insert((stage.lines.start, stage.lines.end), from.clone());
        // A stage built on an earlier one inherits its ENV, as the image config carries it.
        let Instruction::From(base) = &from.instruction else { unreachable!() };
        let mut env = df
            .stage_ref(&base.image)
            .filter(|s| s.index < stage.index)
            .map_or_else(Vars::new, |s| stage_env[s.index].clone());
        let mut stage_args = Vars::new();
        for step in &stage.steps {
            let mut vars = stage_args.clone();
            vars.extend(env.clone());
            let x = step.expand(&lexer, &vars)?;
            match &x.instruction {
                Instruction::Arg(_) => declare(&x.instruction, args, &mut stage_args, &global),
                Instruction::Env(kv) => env.extend(kv.iter().map(|kv| (kv.key.clone(), kv.value.clone()))),
                _ => {}
            }
            out.insert((step.lines.start, step.lines.end), x);
        }
        stage_env.push(env);
    }
    Ok(out)
}

/// ARG: a `--build-arg` wins, then the default, then (inside a stage) the
/// global value of the same name.
fn declare(arg: &Instruction, build_args: &Vars, scope: &mut Vars, global: &Vars) {
    let Instruction::Arg(decls) = arg else { return };
    for d in decls {
        let value = build_args.get(&d.name).cloned().or(d.default.clone()).or_else(|| global.get(&d.name).cloned());
        if let Some(v) = value {
            scope.insert(d.name.clone(), v);
        }
    }
}

fn render(case: &Path) -> Result<String, Error> {
    let text = fs::read_to_string(case.join("Dockerfile")).unwrap();
    let df = parse_dockerfile(&text)?;
    let expanded = expand_all(&df, &build_args(case))?;
    Ok(dump::dump(&df, &|step| expanded.get(&(step.lines.start, step.lines.end)).cloned()))
}

fn check(case: &Path, file: &str, got: &str, failures: &mut Vec<String>) {
    let path = case.join(file);
    if update() {
        fs::write(&path, got).unwrap();
        return;
    }
    let want = fs::read_to_string(&path).unwrap_or_default();
    if want != got {
        failures.push(format!("--- {}\n--- want:\n{want}--- got:\n{got}", path.display()));
    }
}

#[test]
fn positive_cases() {
    let mut failures = Vec::new();
    let all = cases("testdata");
    for case in &all {
        match render(case) {
            Ok(dump) => check(case, "expected", &dump, &mut failures),
            Err(e) => failures.push(format!("{}: unexpected error: {e}", case.display())),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), all.len(), failures.join("\n"));
    assert!(all.len() >= 30, "only {} positive cases", all.len());
}

#[test]
fn negative_cases() {
    let mut failures = Vec::new();
    let all = cases("testdata-negative");
    for case in &all {
        match render(case) {
            Ok(dump) => failures.push(format!("{}: parsed, but should fail:\n{dump}", case.display())),
            Err(e) => {
                assert!(e.lines().is_some(), "{}: error without lines: {e}", case.display());
                check(case, "expected-error", &format!("{e}\n"), &mut failures);
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), all.len(), failures.join("\n"));
    assert!(all.len() >= 15, "only {} negative cases", all.len());
}
