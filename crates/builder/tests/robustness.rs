//! Dockerfiles and .dockerignore files are untrusted input: whatever the
//! bytes, parsing returns an error or a result, never a panic or a stack
//! overflow.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use wharf_builder::{parse_dockerfile, DockerIgnore};

/// xorshift: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "\\",
    "`",
    "\n",
    "\r\n",
    "\"",
    "'",
    "$",
    "${",
    "}",
    ":-",
    "<<",
    "<<-",
    "EOF",
    "[",
    "]",
    ",",
    "=",
    "--",
    " ",
    "\t",
    "#",
    "# escape=`\n",
    "RUN ",
    "COPY ",
    "FROM ",
    "ONBUILD ",
    "--mount=",
    "type=cache,",
    "é",
    "\u{feff}",
];

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(chars.len() + 1);
        match rng.below(3) {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            _ => {
                let piece = PIECES[rng.below(PIECES.len())];
                chars.splice(at..at, piece.chars());
            }
        }
    }
    chars.into_iter().collect()
}

fn exercise(text: &str) {
    let Ok(df) = parse_dockerfile(text) else { return };
    let env: HashMap<String, String> = HashMap::new();
    for step in df.global_args.iter().chain(df.stages.iter().flat_map(|s| s.steps.iter())) {
        let _ = step.expand(&df.lexer(), &env);
    }
}

#[test]
fn mutated_dockerfiles_never_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seeds = Vec::new();
    for dir in ["testdata", "testdata-negative"] {
        for entry in fs::read_dir(root.join(dir)).unwrap() {
            if let Ok(text) = fs::read_to_string(entry.unwrap().path().join("Dockerfile")) {
                seeds.push(text);
            }
        }
    }
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for round in 0..40 {
        for seed in &seeds {
            let text = mutate(&mut rng, seed);
            let result = std::panic::catch_unwind(|| exercise(&text));
            assert!(result.is_ok(), "round {round}: panicked on {text:?}");
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let chain = format!("FROM a\n{}RUN true\n", "ONBUILD ".repeat(100_000));
    assert!(parse_dockerfile(&chain).is_err());
    let nested = format!("FROM a\nENV A=\"{}x{}\"\n", "${B:-".repeat(10_000), "}".repeat(10_000));
    let df = parse_dockerfile(&nested).unwrap();
    let env: HashMap<String, String> = HashMap::new();
    assert!(df.stages[0].steps[0].expand(&df.lexer(), &env).is_err());
    let json = format!("FROM a\nCMD {}\n", "[".repeat(100_000));
    let _ = parse_dockerfile(&json);
}

#[test]
fn hostile_dockerignore_patterns() {
    let long = "*a".repeat(2000);
    let d = DockerIgnore::parse(&format!("{long}\n")).unwrap();
    assert!(!d.matches(&"a".repeat(1999)));
    assert!(d.matches(&"a".repeat(3000)));
    assert!(DockerIgnore::parse(&"x".repeat(5000)).is_err());
    let mut rng = Rng(42);
    for _ in 0..2000 {
        let text: String = (0..rng.below(12))
            .map(|_| ["*", "**", "?", "[", "]", "^", "\\", "/", "a", "!", "-", "."][rng.below(12)])
            .collect();
        if let Ok(d) = DockerIgnore::parse(&text) {
            let _ = d.matches("a/b.c/d");
            let _ = d.may_include_under("a");
        }
    }
}
