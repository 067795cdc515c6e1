//! What is generated from the `wharf` clap definition: docs/cli.md (kept up
//! to date by this test), the man pages and the shell completion scripts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use wharf_tests::{bin, require_tool};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn wharf(args: &[&str]) -> String {
    let out = Command::new(bin("wharf")).args(args).env_remove("WHARF_ROOT").output().expect("spawn wharf");
    assert!(out.status.success(), "wharf {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The `### \`wharf …\`` headings of the generated reference.
fn commands_in(md: &str) -> BTreeSet<String> {
    md.lines().filter_map(|l| l.strip_prefix("### `")?.strip_suffix('`')).map(String::from).collect()
}

// Guards against drift: a flag or command added without regenerating docs/cli.md.
#[test]
fn cli_md_matches_the_cli() {
    let committed = std::fs::read_to_string(repo().join("docs/cli.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("cli.md");
    std::fs::write(&copy, &committed).unwrap();
    wharf(&["man", "--markdown", copy.to_str().unwrap()]);
    let fresh = std::fs::read_to_string(&copy).unwrap();
    assert!(
        fresh == committed,
        "docs/cli.md is out of date with the CLI: run `cargo run -p wharf -- man --markdown docs/cli.md` and commit it"
    );
    for c in ["wharf", "wharf images", "wharf image ls", "wharf system check", "wharf completion"] {
        assert!(commands_in(&fresh).contains(c), "docs/cli.md has no section for {c}");
    }
}

#[test]
fn man_pages_cover_every_command_and_render_cleanly() {
    let groff = require_tool("groff");
    let dir = tempfile::tempdir().unwrap();
    wharf(&["man", dir.path().to_str().unwrap()]);
    let pages: BTreeSet<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    let committed = std::fs::read_to_string(repo().join("docs/cli.md")).unwrap();
    let want: BTreeSet<String> = commands_in(&committed).iter().map(|c| format!("{}.1", c.replace(' ', "-"))).collect();
    assert_eq!(pages, want, "one man page per command of docs/cli.md");
    for p in &pages {
        // -ww: every warning; -z: format, print nothing.
        let out = Command::new(&groff).args(["-man", "-Tutf8", "-ww", "-z"]).arg(dir.path().join(p)).output().unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "{p}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = Command::new(require_tool("man"))
        .arg("-l")
        .arg(dir.path().join("wharf-image-ls.1"))
        .env("MANWIDTH", "80")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("wharf-image-ls - List images") && text.contains("WHARF_ROOT"), "{text}");
}

fn script(shell: &str, dir: &Path) -> PathBuf {
    let p = dir.join(format!("wharf.{shell}"));
    std::fs::write(&p, wharf(&["completion", shell])).unwrap();
    p
}

#[test]
fn bash_completion_parses_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let s = script("bash", dir.path());
    let check = Command::new(require_tool("bash")).arg("-n").arg(&s).status().unwrap();
    assert!(check.success(), "bash -n {}", s.display());
    let line = format!(
        "source {}; COMP_WORDS=(wharf ima); COMP_CWORD=1; _wharf wharf ima wharf; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        s.display()
    );
    let out = Command::new("bash").arg("-c").arg(line).output().unwrap();
    let words = String::from_utf8_lossy(&out.stdout);
    assert_eq!(words.lines().collect::<BTreeSet<_>>(), BTreeSet::from(["image", "images"]), "{out:?}");
}

#[test]
fn zsh_completion_parses() {
    let dir = tempfile::tempdir().unwrap();
    let s = script("zsh", dir.path());
    let out = Command::new(require_tool("zsh")).arg("-n").arg(&s).output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "zsh -n: {out:?}");
}

#[test]
fn fish_completion_parses_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let s = script("fish", dir.path());
    let out = Command::new(require_tool("fish")).arg("--no-execute").arg(&s).output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "fish --no-execute: {out:?}");
    let line = format!("source {}; complete -C 'wharf system '", s.display());
    let out = Command::new("fish").arg("-c").arg(line).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l.starts_with("check\t")), "{text}");
}

// Guards against drift of the hand-kept wharf-runtime part of docs/cli.md:
// every verb and global flag `wharf-runtime --help` names is documented.
#[test]
fn cli_md_covers_every_runtime_command_and_global_flag() {
    let out = Command::new(bin("wharf-runtime")).arg("--help").output().expect("spawn wharf-runtime");
    let usage = String::from_utf8(out.stdout).unwrap();
    let md = std::fs::read_to_string(repo().join("docs/cli.md")).unwrap();
    let part = &md[md.find("## `wharf-runtime`").expect("docs/cli.md has a wharf-runtime section")..];
    let verbs = usage.lines().find_map(|l| l.strip_prefix("commands: ")).expect("--help lists the commands");
    for v in verbs.split_whitespace() {
        assert!(part.contains(&format!("`{v}`")) || part.contains(&format!("`{v} ")), "docs/cli.md: no `{v}`");
    }
    for flag in usage.split(['[', ']', ' ']).filter(|w| w.starts_with("--")) {
        assert!(part.contains(&format!("`{flag}")), "docs/cli.md: no {flag}");
    }
}

// Guards against drift of the hand-kept docs/man/wharf-runtime.8.
#[test]
fn runtime_man_page_renders_cleanly_and_covers_the_help() {
    let page = repo().join("docs/man/wharf-runtime.8");
    let out = Command::new(require_tool("groff")).args(["-man", "-Tutf8", "-ww", "-z"]).arg(&page).output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "groff: {}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(require_tool("man")).arg("-l").arg(&page).env("MANWIDTH", "400").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let out = Command::new(bin("wharf-runtime")).arg("--help").output().expect("spawn wharf-runtime");
    let usage = String::from_utf8(out.stdout).unwrap();
    let verbs = usage.lines().find_map(|l| l.strip_prefix("commands: ")).expect("--help lists the commands");
    for v in verbs.split_whitespace() {
        let entry = |l: &str| {
            let l = l.trim();
            l == v || l.starts_with(&format!("{v} ")) || l.contains(&format!(", {v} "))
        };
        assert!(text.lines().any(entry), "wharf-runtime.8: no entry for {v}");
    }
    for flag in usage.split(['[', ']', ' ']).filter(|w| w.starts_with("--")) {
        assert!(text.contains(flag), "wharf-runtime.8: no {flag}");
    }
}
