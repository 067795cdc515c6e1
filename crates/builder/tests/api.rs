//! The public API as the executor will use it: parse, walk stages, expand
//! with an environment map, filter the context.

use std::collections::HashMap;

use wharf_builder::{
    parse_dockerfile, Command, DockerIgnore, Env, Error, Healthcheck, Instruction, MountType, Network, Problem,
};

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn stages_targets_and_references() {
    let df =
        parse_dockerfile("ARG V=1\nFROM a AS build\nRUN x\nFROM build AS Test\nFROM scratch\nCOPY --from=test /a /a\n")
            .unwrap();
    assert_eq!(df.global_args.len(), 1);
    assert_eq!(df.stages.len(), 3);
    assert_eq!(df.stage_ref("build").map(|s| s.index), Some(0));
    assert_eq!(df.stage_ref("TEST").map(|s| s.index), Some(1));
    assert_eq!(df.stage_ref("2").map(|s| s.index), Some(2));
    assert!(df.stage_ref("alpine").is_none());
    assert_eq!(df.target(Some("test")).map(|s| s.index), Some(1));
    assert_eq!(df.target(None).map(|s| s.index), Some(2));
}

#[test]
fn expansion_follows_the_executor_env() {
    let df = parse_dockerfile(
        "FROM a\nCOPY --chown=$U --chmod=$M <<EOF $DEST\nv=$V\nEOF\nRUN --mount=type=cache,target=$C,sharing=$S ls\n",
    )
    .unwrap();
    let lexer = df.lexer();
    let env = vars(&[("U", "app"), ("M", "0600"), ("DEST", "/etc/x"), ("V", "2"), ("C", "/c"), ("S", "locked")]);
    let copy = df.stages[0].steps[0].expand(&lexer, &env).unwrap();
    let Instruction::Copy(c) = &copy.instruction else { panic!() };
    assert_eq!((c.chown.as_deref(), c.mode(), c.dest.as_str()), (Some("app"), Some(0o600), "/etc/x"));
    assert_eq!(c.heredocs[0].content, "v=2\n");
    let run = df.stages[0].steps[1].expand(&lexer, &env).unwrap();
    let Instruction::Run(r) = &run.instruction else { panic!() };
    assert_eq!(r.mounts[0].kind, MountType::Cache);
    assert_eq!(r.mounts[0].target.as_deref(), Some("/c"));
    assert_eq!(r.network, Network::Default);
    assert_eq!(r.command, Command::Shell("ls".into()));
}

#[test]
fn expansion_errors_carry_lines() {
    let df = parse_dockerfile("FROM a\n\nCOPY --chmod=$M a b\n").unwrap();
    let err = df.stages[0].steps[0].expand(&df.lexer(), &vars(&[("M", "rwx")])).unwrap_err();
    assert_eq!(err.lines().map(|l| (l.start, l.end)), Some((3, 3)));
    assert_eq!(err.problem(), Some(&Problem::BadChmod("rwx".into())));
}

#[test]
fn non_expanding_instructions_are_left_alone() {
    let df = parse_dockerfile("FROM a\nCMD echo $HOME\nHEALTHCHECK CMD test $X\nONBUILD ENV A=$B\n").unwrap();
    let env = vars(&[("HOME", "/root"), ("X", "1"), ("B", "2")]);
    for step in &df.stages[0].steps {
        assert!(!step.instruction.expands());
        assert_eq!(step.expand(&df.lexer(), &env).unwrap(), *step);
    }
    assert!(matches!(df.stages[0].steps[1].instruction, Instruction::Healthcheck(Healthcheck::Check(_))));
}

#[test]
fn lexer_with_custom_env() {
    struct Fixed;
    impl Env for Fixed {
        fn lookup(&self, name: &str) -> Option<&str> {
            (name == "ARCH").then_some("arm64")
        }
    }
    let lexer = wharf_builder::Lexer::default();
    assert_eq!(lexer.expand_word("bin-${ARCH}-${OS:-linux}", &Fixed).unwrap(), "bin-arm64-linux");
    assert!(matches!(lexer.expand_word("${", &Fixed), Err(Error::Expand { .. })));
}

#[test]
fn errors_say_where_and_what() {
    let err = parse_dockerfile("FROM a\nRUN <<EOF\nno end\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "dockerfile lines 2-3: unterminated heredoc: no line \"EOF\" before the end of the file"
    );
    assert!(matches!(err.problem(), Some(Problem::UnterminatedHeredoc(name)) if name == "EOF"));
}

#[test]
fn dockerignore_while_walking() {
    let ignore = DockerIgnore::parse("# build output\ntarget\n**/*.log\n!keep.log\n.git\n").unwrap();
    let walked = ["src/main.rs", "target/debug/x", "a/b/c.log", "keep.log", ".git/HEAD", "Dockerfile"];
    let kept: Vec<&str> = walked.into_iter().filter(|p| !ignore.matches(p)).collect();
    assert_eq!(kept, vec!["src/main.rs", "keep.log", "Dockerfile"]);
    assert!(!ignore.may_include_under("target"));
}
