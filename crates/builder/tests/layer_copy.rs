//! copy_to_tar: Docker's COPY/ADD rules, one test each.

mod layer_common;

use layer_common::*;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use wharf_builder::layer::{copy_to_tar, hash_sources, CopyPlan, CopySource, LayerError, TarOptions};
use wharf_builder::DockerIgnore;

/// A build context in a temp dir.
struct Ctx {
    dir: tempfile::TempDir,
}

impl Ctx {
    fn new() -> Self {
        Ctx { dir: tempfile::Builder::new().prefix("wharf-layer-copy").tempdir().unwrap() }
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("ctx")
    }
    fn file(&self, rel: &str, content: &str) -> &Self {
        write(&self.root().join(rel), content);
        self
    }
    fn plan(&self, sources: &[&str], dest: &str) -> CopyPlan<'static> {
        std::fs::create_dir_all(self.root()).unwrap();
        CopyPlan {
            sources: sources.iter().map(|s| CopySource { root: self.root(), path: s.to_string() }).collect(),
            dest: dest.to_string(),
            workdir: "/".to_string(),
            context_root: Some(self.root()),
            ..Default::default()
        }
    }
}

fn run(plan: &CopyPlan) -> Vec<Entry> {
    let mut out = Vec::new();
    copy_to_tar(plan, &mut out, &TarOptions::default()).unwrap();
    read_tar(&out)
}

fn fails(plan: &CopyPlan) -> String {
    let mut out = Vec::new();
    copy_to_tar(plan, &mut out, &TarOptions::default()).unwrap_err().to_string()
}

#[test]
fn a_directory_source_copies_its_contents() {
    let c = Ctx::new();
    c.file("src/a", "a").file("src/sub/b", "b");
    let e = run(&c.plan(&["src"], "/app"));
    assert_eq!(paths(&e), ["app/", "app/a", "app/sub/", "app/sub/b"]);
    assert_eq!(find(&e, "app/sub/b").data, b"b");
}

#[test]
fn a_trailing_slash_makes_the_destination_a_directory() {
    let c = Ctx::new();
    c.file("f.txt", "x");
    assert_eq!(paths(&run(&c.plan(&["f.txt"], "/dest/"))), ["dest/", "dest/f.txt"]);
    assert_eq!(paths(&run(&c.plan(&["f.txt"], "/dest"))), ["dest"]);
    assert_eq!(paths(&run(&c.plan(&["f.txt"], "/dest/."))), ["dest/", "dest/f.txt"]);
}

#[test]
fn several_sources_need_a_directory_destination() {
    let c = Ctx::new();
    c.file("a", "1").file("b", "2").file("d/c", "3");
    assert_eq!(paths(&run(&c.plan(&["a", "b", "d"], "/to/"))), ["to/", "to/a", "to/b", "to/c"]);
    let err = fails(&c.plan(&["a", "b"], "/to"));
    assert!(err.contains("must be a directory and end with a '/'"), "{err}");
}

#[test]
fn later_sources_overwrite_earlier_ones() {
    let c = Ctx::new();
    c.file("one/x", "first").file("two/x", "second");
    let e = run(&c.plan(&["one", "two"], "/d/"));
    assert_eq!(paths(&e), ["d/", "d/x"]);
    assert_eq!(find(&e, "d/x").data, b"second");
}

#[test]
fn globs_match_within_one_directory_level() {
    let c = Ctx::new();
    c.file("a.txt", "a")
        .file("b.txt", "b")
        .file("c.md", "c")
        .file("sub/d.txt", "d")
        .file("s1/f", "1")
        .file("s2/f", "2");
    assert_eq!(paths(&run(&c.plan(&["*.txt"], "/d/"))), ["d/", "d/a.txt", "d/b.txt"]);
    assert_eq!(paths(&run(&c.plan(&["?.md", "[ab].txt"], "/d/"))), ["d/", "d/a.txt", "d/b.txt", "d/c.md"]);
    // Several matches make the destination a directory even without '/' (BuildKit).
    assert_eq!(paths(&run(&c.plan(&["s*/f"], "/d"))), ["d/", "d/f"]);
    // One match to a destination without '/': the file itself.
    assert_eq!(paths(&run(&c.plan(&["c.*"], "/d"))), ["d"]);
    let err = fails(&c.plan(&["*.rs"], "/d/"));
    assert!(err.contains("\"*.rs\"") && err.contains("no source files"), "{err}");
}

#[test]
fn an_existing_directory_in_the_rootfs_receives_the_file() {
    let c = Ctx::new();
    c.file("f", "x");
    let rootfs = c.dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("existing")).unwrap();
    std::fs::create_dir_all(rootfs.join("usr/bin")).unwrap();
    symlink("usr/bin", rootfs.join("bin")).unwrap();
    let mut plan = c.plan(&["f"], "/existing");
    plan.dest_rootfs = Some(rootfs.clone());
    assert_eq!(paths(&run(&plan)), ["existing/", "existing/f"]);
    // A symlinked destination parent stays a symlink: the entries go where it points.
    let mut plan = c.plan(&["f"], "/bin/");
    plan.dest_rootfs = Some(rootfs);
    assert_eq!(paths(&run(&plan)), ["usr/", "usr/bin/", "usr/bin/f"]);
}

#[test]
fn a_relative_destination_is_under_the_workdir() {
    let c = Ctx::new();
    c.file("f", "x");
    let mut plan = c.plan(&["f"], "rel/");
    plan.workdir = "/work/dir".into();
    let e = run(&plan);
    assert_eq!(paths(&e), ["work/", "work/dir/", "work/dir/rel/", "work/dir/rel/f"]);
    for d in ["work/", "work/dir/", "work/dir/rel/"] {
        let d = find(&e, d);
        assert_eq!((d.mode, d.uid, d.gid), (0o755, 0, 0), "{}", d.path);
    }
    let mut plan = c.plan(&["f"], ".");
    plan.workdir = "/w".into();
    assert_eq!(paths(&run(&plan)), ["w/", "w/f"]);
}

#[test]
fn chown_and_chmod_apply_to_everything_copied() {
    let c = Ctx::new();
    c.file("src/f", "x").file("src/d/g", "y");
    symlink("f", c.root().join("src/l")).unwrap();
    let mut plan = c.plan(&["src"], "/a/b");
    plan.chown = Some((1000, 1001));
    plan.chmod = Some(0o640);
    let e = run(&plan);
    assert_eq!(paths(&e), ["a/", "a/b/", "a/b/d/", "a/b/d/g", "a/b/f", "a/b/l"]);
    assert!(e.iter().all(|x| (x.uid, x.gid) == (1000, 1001)), "{e:?}");
    assert_eq!(find(&e, "a/").mode, 0o755, "created parents are 0755");
    for p in ["a/b/", "a/b/d/", "a/b/f", "a/b/d/g"] {
        assert_eq!(find(&e, p).mode, 0o640, "{p}");
    }
    assert_eq!(find(&e, "a/b/l").kind, 'l');
    assert_eq!(find(&e, "a/b/l").link.as_deref(), Some("f"));
}

#[test]
fn context_files_belong_to_root_and_other_roots_keep_owners() {
    if !privileged("context_files_belong_to_root_and_other_roots_keep_owners") {
        return;
    }
    let c = Ctx::new();
    c.file("f", "x");
    std::os::unix::fs::chown(c.root().join("f"), Some(1234), Some(1234)).unwrap();
    let e = run(&c.plan(&["f"], "/f"));
    assert_eq!((find(&e, "f").uid, find(&e, "f").gid), (0, 0));
    let mut plan = c.plan(&["f"], "/f");
    plan.context_root = None; // as if from another stage
    let e = run(&plan);
    assert_eq!((find(&e, "f").uid, find(&e, "f").gid), (1234, 1234));
}

#[test]
fn dockerignore_with_exceptions_filters_the_context() {
    let c = Ctx::new();
    c.file("a.log", "no").file("keep.log", "yes").file("secret/key", "no").file("src/x.log", "yes").file("src/y", "y");
    let ig = DockerIgnore::parse("*.log\n!keep.log\nsecret\n").unwrap();
    let mut plan = c.plan(&["."], "/d/");
    plan.ignore = Some(&ig);
    let e = run(&plan);
    assert_eq!(paths(&e), ["d/", "d/keep.log", "d/src/", "d/src/x.log", "d/src/y"]);
    let mut plan = c.plan(&["secret/key"], "/d/");
    plan.ignore = Some(&ig);
    let err = fails(&plan);
    assert!(err.contains("secret/key") && err.contains(".dockerignore"), "{err}");
    // Ignored files are not part of the cache key either.
    let mut plan = c.plan(&["."], "/d/");
    plan.ignore = Some(&ig);
    let before = hash_sources(&plan).unwrap();
    c.file("a.log", "changed").file("secret/key", "changed");
    assert_eq!(hash_sources(&plan).unwrap(), before);
    c.file("keep.log", "changed");
    assert_ne!(hash_sources(&plan).unwrap(), before);
}

#[test]
fn symlinks_in_a_source_path_resolve_inside_the_context() {
    let c = Ctx::new();
    c.file("inside/target", "inside");
    write(&c.dir.path().join("outside/target"), "OUTSIDE");
    // Relative and absolute links that would leave the context land in it.
    symlink("../outside", c.root().join("up")).unwrap();
    symlink("/inside", c.root().join("abs")).unwrap();
    symlink("../../../../inside/target", c.root().join("deep")).unwrap();
    let err = fails(&c.plan(&["up/target"], "/t"));
    assert!(err.contains("no such file"), "{err}");
    assert_eq!(find(&run(&c.plan(&["abs/target"], "/t")), "t").data, b"inside");
    // The source itself is followed (Docker), and keeps the name it was given.
    let e = run(&c.plan(&["deep"], "/d/"));
    assert_eq!(paths(&e), ["d/", "d/deep"]);
    assert_eq!(find(&e, "d/deep").data, b"inside");
}

#[test]
fn symlinks_met_while_copying_stay_symlinks() {
    let c = Ctx::new();
    c.file("dir/f", "x");
    symlink("/etc/passwd", c.root().join("dir/abs")).unwrap();
    let e = run(&c.plan(&["dir"], "/d"));
    assert_eq!(find(&e, "d/abs").kind, 'l');
    assert_eq!(find(&e, "d/abs").link.as_deref(), Some("/etc/passwd"));
    assert!(find(&e, "d/abs").data.is_empty());
}

#[test]
fn dot_dot_may_not_leave_the_root() {
    let c = Ctx::new();
    c.file("a.txt", "a");
    write(&c.dir.path().join("secret"), "s");
    for src in ["../secret", "sub/../../secret", "/../secret"] {
        let err = fails(&c.plan(&[src], "/x"));
        assert!(err.contains(src) && err.contains("'..'"), "{err}");
    }
    assert_eq!(find(&run(&c.plan(&["sub/../a.txt"], "/x")), "x").data, b"a");
}

#[test]
fn a_missing_source_is_a_clear_error() {
    let c = Ctx::new();
    c.file("a", "a");
    let mut out = Vec::new();
    let err = copy_to_tar(&c.plan(&["a", "nope.txt"], "/d/"), &mut out, &TarOptions::default()).unwrap_err();
    assert!(matches!(err, LayerError::Source { ref pattern, .. } if pattern == "nope.txt"), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("nope.txt") && msg.contains("no such file or directory in the build context"), "{msg}");
    assert!(out.is_empty(), "nothing written before the error");
}

fn make_tar(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_mtime(1);
        h.set_uid(0);
        h.set_gid(0);
        // Raw name: the tar crate refuses to write "..", hostile archives do not.
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, data.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn add_unpacks_local_archives() {
    let c = Ctx::new();
    let tar = make_tar(&[("top/f", "from tar"), ("g", "g")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    std::fs::create_dir_all(c.root()).unwrap();
    std::fs::write(c.root().join("a.tar.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(c.root().join("a.tar.zst"), zstd::encode_all(&tar[..], 3).unwrap()).unwrap();
    let mut xz = Vec::new();
    lzma_rs::xz_compress(&mut &tar[..], &mut xz).unwrap();
    std::fs::write(c.root().join("a.tar.xz"), xz).unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    std::io::Write::write_all(&mut bz, &tar).unwrap();
    std::fs::write(c.root().join("a.tar.bz2"), bz.finish().unwrap()).unwrap();
    std::fs::write(c.root().join("a.tar"), &tar).unwrap();
    for name in ["a.tar.gz", "a.tar.zst", "a.tar.xz", "a.tar.bz2", "a.tar"] {
        let mut plan = c.plan(&[name], "/x");
        plan.extract_archives = true;
        let e = run(&plan);
        assert_eq!(paths(&e), ["x/", "x/g", "x/top/", "x/top/f"], "{name}");
        assert_eq!(find(&e, "x/top/f").data, b"from tar", "{name}");
        // COPY never unpacks.
        plan.extract_archives = false;
        assert_eq!(paths(&run(&plan)), ["x"], "{name}");
    }
}

#[test]
fn add_copies_a_compressed_file_that_is_not_a_tar() {
    let c = Ctx::new();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, b"just text, not a tar").unwrap();
    std::fs::create_dir_all(c.root()).unwrap();
    std::fs::write(c.root().join("notes.gz"), gz.finish().unwrap()).unwrap();
    let mut plan = c.plan(&["notes.gz"], "/n.gz");
    plan.extract_archives = true;
    let e = run(&plan);
    assert_eq!(paths(&e), ["n.gz"]);
    assert_eq!(find(&e, "n.gz").data, std::fs::read(c.root().join("notes.gz")).unwrap());
}

#[test]
fn add_refuses_an_archive_that_escapes() {
    let c = Ctx::new();
    // The hardened unpacker keeps "../" inside the temp dir; nothing lands outside.
    let tar = make_tar(&[("../../escaped", "bad")]);
    std::fs::create_dir_all(c.root()).unwrap();
    std::fs::write(c.root().join("evil.tar"), tar).unwrap();
    let mut plan = c.plan(&["evil.tar"], "/x/");
    plan.extract_archives = true;
    let e = run(&plan);
    assert_eq!(paths(&e), ["x/", "x/escaped"]);
    assert!(!c.dir.path().join("escaped").exists() && !Path::new("/tmp/escaped").exists());
}

#[test]
fn a_file_named_like_a_whiteout_is_refused() {
    // Copied as is, it would delete "/d/secret" from the lower layers on apply.
    let c = Ctx::new();
    c.file(".wh.secret", "");
    let err = fails(&c.plan(&[".wh.secret"], "/d/"));
    assert!(err.contains(".wh.") && err.contains("whiteout"), "{err}");
}

#[test]
fn directories_copied_onto_rootfs_symlinks_follow_them() {
    // A merged-/usr rootfs: /bin is a symlink. `COPY root/ /` must add to
    // /usr/bin, not replace /bin with a directory that hides it.
    let c = Ctx::new();
    c.file("root/bin/tool", "t").file("root/etc/conf", "c");
    let rootfs = c.dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("usr/bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    symlink("usr/bin", rootfs.join("bin")).unwrap();
    // A link that would leave the rootfs resolves inside it.
    symlink("../../../../../etc", rootfs.join("escape")).unwrap();
    c.file("root/escape/x", "x");
    let mut plan = c.plan(&["root"], "/");
    plan.dest_rootfs = Some(rootfs);
    let e = run(&plan);
    assert_eq!(paths(&e), ["etc/", "etc/conf", "etc/x", "usr/bin/", "usr/bin/tool"]);
}

#[test]
fn parents_keep_the_source_directories() {
    // `COPY --parents` was refused as an unknown flag; BuildKit keeps the paths.
    let c = Ctx::new();
    c.file("x/a.txt", "a").file("y/z/b.txt", "b").file("src/pkg/m.go", "m").file("d/e/f", "f");
    let plan = CopyPlan { parents: true, ..c.plan(&["x/a.txt", "y/z/*.txt", "./src/./pkg/m.go", "d/e"], "/out/") };
    let e = run(&plan);
    assert_eq!(
        paths(&e),
        [
            "out/",
            "out/d/",
            "out/d/e/",
            "out/d/e/f",
            "out/pkg/",
            "out/pkg/m.go",
            "out/x/",
            "out/x/a.txt",
            "out/y/",
            "out/y/z/",
            "out/y/z/b.txt"
        ]
    );
    assert_eq!(find(&e, "out/y/z/b.txt").data, b"b");
    // Without --parents, the same sources land flat.
    let flat = run(&c.plan(&["x/a.txt", "y/z/*.txt"], "/out/"));
    assert_eq!(paths(&flat), ["out/", "out/a.txt", "out/b.txt"]);
}
