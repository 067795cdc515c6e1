//! A closed stdout ends every command quietly, as it ends docker and runc:
//! killed by SIGPIPE, nothing on stderr — no panic, no backtrace.
//! (`wharf images --format json | head -c 100` used to panic with
//! "failed printing to stdout: Broken pipe".)

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use wharf_tests::{bin, privileged, RawTar, TestStore};

/// Runs `cmd` with a stdout whose reader is already closed: its first write
/// fails with EPIPE, every time (no race with a `head` that exits).
fn with_closed_stdout(cmd: &mut Command) -> Output {
    let (reader, writer) = rustix::pipe::pipe().expect("pipe");
    drop(reader);
    cmd.stdout(Stdio::from(writer)).stderr(Stdio::piped()).output().expect("spawn")
}

fn assert_quiet(what: &str, out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "{what}: stderr should be empty on a closed stdout:\n{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{what}: {:?}", out.status);
}

// Broke: every println! in wharf panicked on EPIPE (exit 101, a backtrace).
#[test]
fn wharf_commands_end_quietly_on_a_closed_stdout() {
    let s = TestStore::new();
    for args in [
        &["images"][..],
        &["images", "--format", "json"],
        &["system", "check"],
        &["system", "check", "--format", "json"],
        &["completion", "bash"],
        &["completion", "zsh"],
    ] {
        assert_quiet(&format!("wharf {args:?}"), &with_closed_stdout(s.cmd().args(args)));
    }
}

// Broke: `inspect`, `images -q` panicked; `save` to a closed pipe printed "Broken pipe".
#[test]
fn wharf_image_commands_end_quietly_on_a_closed_stdout() {
    if !privileged("wharf_image_commands_end_quietly_on_a_closed_stdout") {
        return;
    }
    let s = TestStore::new();
    let tar = s.path("rootfs.tar");
    std::fs::write(&tar, RawTar::default().file("hello", &[b'x'; 300_000]).finish()).unwrap();
    s.ok(["import".as_ref(), tar.as_os_str(), "pipe:1".as_ref()]);
    for args in [&["inspect", "pipe:1"][..], &["images", "-q"], &["save", "pipe:1"]] {
        assert_quiet(&format!("wharf {args:?}"), &with_closed_stdout(s.cmd().args(args)));
    }
    // The aborted save left nothing behind.
    s.assert_consistent();
    assert_eq!(std::fs::read_dir(s.root.join("ingest")).map(|d| d.count()).unwrap_or(0), 0, "save left temp files");
}

// Broke: wharf-runtime's print_json/println! panicked on EPIPE.
#[test]
fn runtime_commands_end_quietly_on_a_closed_stdout() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["features"][..], &["list"], &["list", "--format", "json"], &["--help"], &["--version"]] {
        let mut cmd = Command::new(bin("wharf-runtime"));
        cmd.arg("--root").arg(dir.path().join("state")).args(args);
        assert_quiet(&format!("wharf-runtime {args:?}"), &with_closed_stdout(&mut cmd));
    }
}

/// The pipelines of the issue, through a shell and `head`, with more output
/// than a pipe holds: quiet, and the first byte still arrives.
#[test]
fn pipelines_into_head_are_quiet() {
    let s = TestStore::new();
    let wharf = s.cmd();
    let prefix: Vec<String> = std::iter::once(wharf.get_program())
        .chain(wharf.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    for tail in ["completion bash", "completion fish"] {
        let line = format!("{} {tail} | head -c 1", prefix.join(" "));
        let out = Command::new("sh").arg("-c").arg(&line).env("DOCKER_CONFIG", s.docker_config()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && out.stdout.len() == 1 && stderr.is_empty(), "{line}: {out:?}");
    }
}
