//! `wharf build --progress`: BuildKit-style plain lines, the live terminal
//! view (under `script`, which gives the build a real pty), and quiet.

use std::process::Command;
use wharf_tests::{privileged, require_tool, TestStore};

const DOCKERFILE: &str = "FROM scratch AS base\nCOPY busybox /bin/busybox\n\
    RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
    FROM base\nRUN echo out-line; echo err-line >&2; cat; echo stdin-was-empty\nENV A=b\n";

fn context(s: &TestStore, dockerfile: &str) -> std::path::PathBuf {
    let ctx = s.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy("/bin/busybox", ctx.join("busybox")).unwrap();
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    ctx
}

fn build(s: &TestStore, extra: &[&str]) -> (bool, String) {
    let mut c = s.cmd();
    c.args(["build", "-t", "progress"]).args(extra).arg(s.path("ctx"));
    let out = c.output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn plain_lines_number_steps_and_carry_run_output() {
    if !privileged("plain_lines_number_steps_and_carry_run_output") {
        return;
    }
    let s = TestStore::new();
    context(&s, DOCKERFILE);
    let (ok, text) = build(&s, &["--progress", "plain"]);
    assert!(ok, "{text}");
    // The RUN step's number prefixes its output lines, stdout and stderr,
    // with the seconds since it started; stdin is empty, as in Docker.
    let run = text.lines().find(|l| l.contains("RUN echo out-line")).expect(&text);
    let id = run.split(' ').next().unwrap();
    assert!(run.starts_with('#') && run.contains("[stage-1 1/2] RUN echo out-line"), "{run}");
    for want in ["out-line", "err-line", "stdin-was-empty"] {
        // `#N <seconds> <line>`
        let timed = |l: &&str| l.split(' ').nth(1).is_some_and(|t| t.parse::<f64>().is_ok());
        let found = text.lines().filter(timed).any(|l| l.starts_with(&format!("{id} ")) && l.ends_with(want));
        assert!(found, "{want}: {text}");
    }
    assert!(text.lines().any(|l| l.starts_with(&format!("{id} DONE "))), "{text}");
    // Rebuilt: every step cached, no RUN output.
    let (ok, text) = build(&s, &["--progress", "plain"]);
    assert!(ok, "{text}");
    assert!(text.lines().filter(|l| l.ends_with(" CACHED")).count() >= 3, "{text}");
    assert!(!text.contains("out-line\n"), "{text}");
}

#[test]
fn quiet_prints_only_the_image_id() {
    if !privileged("quiet_prints_only_the_image_id") {
        return;
    }
    let s = TestStore::new();
    context(&s, DOCKERFILE);
    let (ok, text) = build(&s, &["-q"]);
    assert!(ok, "{text}");
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    assert!(text.trim().starts_with("sha256:"), "{text}");
}

/// Runs `wharf build` on a pty; returns what the terminal received.
fn on_a_pty(s: &TestStore, extra: &str) -> (bool, String) {
    let cmd = s.cmd();
    let mut line = format!("'{}'", cmd.get_program().to_string_lossy());
    for a in cmd.get_args() {
        line.push_str(&format!(" '{}'", a.to_string_lossy()));
    }
    line.push_str(&format!(" build {extra} '{}'", s.path("ctx").display()));
    let mut c = Command::new(require_tool("script"));
    c.args(["-qfec", &line, "/dev/null"]);
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    let out = c.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn tty_view_shows_steps_and_the_failing_steps_output() {
    if !privileged("tty_view_shows_steps_and_the_failing_steps_output") {
        return;
    }
    let s = TestStore::new();
    context(&s, DOCKERFILE);
    let (ok, text) = on_a_pty(&s, "--progress tty -t progress");
    assert!(ok, "{text}");
    assert!(text.contains("=> [stage-1 1/2] RUN echo out-line"), "finished steps scroll above: {text}");
    assert!(text.contains("[+] Building") && text.contains("(4/4) FINISHED"), "{text}");
    // A failing RUN: marked ERROR, and its output printed in full afterwards.
    context(&s, "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo first; echo second >&2; exit 3\"]\n");
    let (ok, text) = on_a_pty(&s, "--progress tty");
    assert!(!ok, "{text}");
    assert!(text.contains("=> ERROR [2/2] RUN"), "{text}");
    let tail = &text[text.find("------").expect(&text)..];
    assert!(tail.contains("first") && tail.contains("second") && tail.contains("FAILED"), "{tail}");
    assert!(text.contains("non-zero code: 3"), "{text}");
}
