//! Docker's `.dockerignore` behaviours, one assertion per rule.

use super::DockerIgnore;

fn ignore(text: &str) -> DockerIgnore {
    DockerIgnore::parse(text).unwrap()
}

#[test]
fn patterns_match_from_the_root() {
    let d = ignore("*.md\n");
    assert!(d.matches("README.md"));
    assert!(!d.matches("docs/README.md"));
    let d = ignore("*/*.md\n");
    assert!(d.matches("docs/a.md"));
    assert!(!d.matches("a.md"));
    assert!(!d.matches("docs/x/a.md"));
}

#[test]
fn double_star_spans_directories() {
    let d = ignore("**/*.go\n");
    assert!(d.matches("a.go"));
    assert!(d.matches("x/y/z.go"));
    assert!(!d.matches("a.golang"));
    let d = ignore("a/**/b\n");
    assert!(d.matches("a/b"));
    assert!(d.matches("a/x/y/b"));
    assert!(!d.matches("a/xb"));
    let d = ignore("**\n");
    assert!(d.matches("anything/at/all"));
    let d = ignore("logs**\n");
    assert!(d.matches("logs/today/x.log"));
    assert!(d.matches("logsfoo"));
}

#[test]
fn directory_patterns_exclude_contents() {
    let d = ignore("node_modules\n");
    assert!(d.matches("node_modules"));
    assert!(d.matches("node_modules/a/b.js"));
    assert!(!d.matches("src/node_modules"));
}

#[test]
fn question_mark_and_classes() {
    let d = ignore("file?.txt\n[a-c]x\n[^0-9]y\n");
    assert!(d.matches("file1.txt"));
    assert!(!d.matches("file10.txt"));
    assert!(!d.matches("file/.txt"));
    assert!(d.matches("bx"));
    assert!(!d.matches("dx"));
    assert!(d.matches("ay"));
    assert!(!d.matches("5y"));
}

#[test]
fn exceptions_last_match_wins() {
    let d = ignore("*.md\n!README.md\n");
    assert!(d.matches("CHANGES.md"));
    assert!(!d.matches("README.md"));
    let d = ignore("!README.md\n*.md\n");
    assert!(d.matches("README.md"));
    let d = ignore("docs\n!docs/keep\n");
    assert!(d.matches("docs/drop.txt"));
    assert!(!d.matches("docs/keep"));
    assert!(!d.matches("docs/keep/inner.txt"));
    assert!(d.has_exceptions());
}

#[test]
fn exception_patterns_do_not_reach_deeper_than_written() {
    // `*/sub1*` re-includes subdir/sub1.txt but not subdir/deeper/sub1.txt.
    let d = ignore("subdir\n!*/sub1*\n");
    assert!(!d.matches("subdir/sub1.txt"));
    assert!(d.matches("subdir/sub2.txt"));
    assert!(d.matches("subdir/deeper/sub1.txt"));
    assert!(!d.matches("subdir/sub1dir/inside.txt"));
}

#[test]
fn walker_descends_only_where_exceptions_reach() {
    let d = ignore("docs\n!docs/keep\n");
    assert!(d.may_include_under("docs"));
    assert!(!d.may_include_under("other"));
    let d = ignore("*\n!**/*.rs\n");
    assert!(d.may_include_under("any/dir"));
    let d = ignore("build\n");
    assert!(!d.may_include_under("build"));
}

#[test]
fn cleaning_of_patterns_and_paths() {
    let d = ignore("/secret\n./tmp/\nlogs//old/../new\n");
    assert!(d.matches("secret"));
    assert!(d.matches("tmp/x"));
    assert!(d.matches("logs/new"));
    assert!(!d.matches("logs/old"));
    assert!(d.matches("./secret"));
    assert!(d.matches("/tmp"));
}

#[test]
fn the_root_is_never_excluded() {
    let d = ignore("*\n.\n/\n");
    assert!(!d.matches("."));
    assert!(!d.matches(""));
    assert!(d.matches("anything"));
}

#[test]
fn comments_and_blank_lines() {
    let d = ignore("# a comment\n\n   \n #not-a-comment\n\\#hash\n");
    assert!(!d.matches("# a comment"));
    assert!(d.matches("#not-a-comment"));
    assert!(d.matches("#hash"));
    assert!(!d.has_exceptions());
}

#[test]
fn escapes_make_wildcards_literal() {
    let d = ignore("a\\*b\n");
    assert!(d.matches("a*b"));
    assert!(!d.matches("axb"));
}

#[test]
fn invalid_patterns_are_errors() {
    for (text, line) in [("ok\n[abc\n", 2), ("!\n", 1), ("x\\", 1), ("[]\n", 1), ("[z-a]\n", 1)] {
        let err = DockerIgnore::parse(text).unwrap_err();
        assert!(err.to_string().contains(&format!("line {line}")), "{text:?}: {err}");
    }
}

#[test]
fn many_wildcards_stay_fast() {
    // Without memoisation this backtracks exponentially.
    let d = ignore(&format!("{}b\n", "**a".repeat(12)));
    let path = "a".repeat(200);
    assert!(!d.matches(&path));
    assert!(d.matches(&format!("{path}b")));
}
