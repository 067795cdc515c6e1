//! Cases in the spirit of BuildKit's `envVarTest` and `wordsTest` tables:
//! (input, expected) with `error` meaning the lexer must refuse the input.

use std::collections::HashMap;

use super::Lexer;

fn env() -> HashMap<String, String> {
    [("HOME", "/root"), ("SHELL", "bash"), ("LANG_NAME", "한국어"), ("EMPTY", ""), ("SPACED", "a  b c")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn word(lexer: Lexer, input: &str) -> String {
    lexer.expand_word(input, &env()).unwrap_or_else(|_| "error".into())
}

#[test]
fn quotes_and_escapes() {
    let l = Lexer::default();
    let cases = [
        ("plain", "plain"),
        ("pl'ai'n", "plain"),
        ("pl'ain", "error"),
        (r"pl\'ain", "pl'ain"),
        (r"pl\\'ain", "error"),
        (r"tab\tchar", "tabtchar"),
        (r#""tab\tchar""#, r"tab\tchar"),
        (r#""tab\\tchar""#, r"tab\tchar"),
        (r"'tab\tchar'", r"tab\tchar"),
        (r"trailing\", "trailing"),
        (r"trailing\\", r"trailing\"),
        (r#""open"#, "error"),
        (r#""open\""#, "error"),
        (r#""it's""#, "it's"),
        ("'open", "error"),
        (r"'back\'", r"back\"),
        (r#"'say "hi"'"#, r#"say "hi""#),
        (r#""say \"hi\"""#, r#"say "hi""#),
        (r#""\$HOME""#, "$HOME"),
        (r"\$HOME", "$HOME"),
        ("''", ""),
        (r#""""#, ""),
        ("a b  c", "a b  c"),
    ];
    for (input, want) in cases {
        assert_eq!(word(l, input), want, "input {input:?}");
    }
}

#[test]
fn variables() {
    let l = Lexer::default();
    let cases = [
        ("$HOME", "/root"),
        ("${HOME}", "/root"),
        ("$HOME/x", "/root/x"),
        ("${HOME}x", "/rootx"),
        ("$HOMEx", ""),
        ("'$HOME'", "$HOME"),
        ("\"$HOME\"", "/root"),
        ("\"${HOME}\"", "/root"),
        ("$LANG_NAME", "한국어"),
        ("$", "$"),
        ("a$", "a$"),
        ("$/x", "$/x"),
        ("${", "error"),
        ("${}", "error"),
        ("${:x}", "error"),
        ("${HOME", "error"),
        ("${HOME:-x", "error"),
        ("${HOME:%x}", "error"),
        ("${HOME:#x}", "error"),
        ("${HOME^x}", "error"),
        ("${HOME:=x}", "error"),
        ("$1", ""),
        ("$@x", "x"),
    ];
    for (input, want) in cases {
        assert_eq!(word(l, input), want, "input {input:?}");
    }
}

#[test]
fn modifiers() {
    let l = Lexer::default();
    let cases = [
        ("${HOME:-x}", "/root"),
        ("${NOPE:-x}", "x"),
        ("${EMPTY:-x}", "x"),
        ("${EMPTY-x}", ""),
        ("${NOPE-x}", "x"),
        ("${HOME:+x}", "x"),
        ("${NOPE:+x}", ""),
        ("${EMPTY:+x}", ""),
        ("${EMPTY+x}", "x"),
        ("${NOPE+x}", ""),
        ("${NOPE:-$HOME}", "/root"),
        ("${NOPE:-${SHELL:-sh}}", "bash"),
        ("${NOPE:-'a b'}", "a b"),
        ("${NOPE:-\"}\"}", "}"),
        ("${HOME:?}", "/root"),
        ("${NOPE:?}", "error"),
        ("${NOPE:?must be set}", "error"),
        ("${EMPTY?x}", ""),
        ("${EMPTY:?x}", "error"),
        ("${NOPE:-}", ""),
        ("pre${NOPE:-mid}post", "premidpost"),
    ];
    for (input, want) in cases {
        assert_eq!(word(l, input), want, "input {input:?}");
    }
    let err = |w: &str| l.expand_word(w, &env()).unwrap_err().to_string();
    assert!(err("${NOPE:?must be set}").contains("NOPE: must be set"));
    assert!(err("${NOPE?}").contains("NOPE: is not allowed to be unset"));
    assert!(err("${EMPTY:?}").contains("EMPTY: is not allowed to be empty"));
}

#[test]
fn pattern_operators() {
    let l = Lexer::default();
    let env: HashMap<String, String> = [("P", "/usr/local/bin"), ("F", "app.tar.gz"), ("V", "1.2.3")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let cases = [
        ("${P#*/}", "usr/local/bin"),
        ("${P##*/}", "bin"),
        ("${F%.*}", "app.tar"),
        ("${F%%.*}", "app"),
        ("${V/./-}", "1-2.3"),
        ("${V//./-}", "1-2-3"),
        ("${V//[0-9]/x}", "1.2.3"),
        ("${NOPE#x}", ""),
        ("${P/\\/usr/}", "/local/bin"),
        // Only `*`, `?`, `\` (and `}` `/`) may be escaped, as in BuildKit.
        ("${F%\\.gz}", "error"),
        ("${F%\\*}", "app.tar.gz"),
        ("${V/./}", "12.3"),
        ("${V//", "error"),
        ("${V/x", "error"),
    ];
    for (input, want) in cases {
        let got = l.expand_word(input, &env).unwrap_or_else(|_| "error".into());
        assert_eq!(got, want, "input {input:?}");
    }
}

#[test]
fn backtick_escape() {
    let l = Lexer::new('`');
    assert_eq!(word(l, r"C:\path\to"), r"C:\path\to");
    assert_eq!(word(l, "a`$HOME"), "a$HOME");
    assert_eq!(word(l, "\"a`\"b\""), "a\"b");
    assert_eq!(word(l, "it``s"), "it`s");
}

#[test]
fn words_split_after_expansion() {
    let l = Lexer::default();
    let words = |s: &str| l.expand_words(s, &env()).unwrap_or_else(|_| vec!["error".into()]);
    assert_eq!(words("a b   c"), vec!["a", "b", "c"]);
    assert_eq!(words("a 'b c' d"), vec!["a", "b c", "d"]);
    assert_eq!(words("a\\ b c"), vec!["a b", "c"]);
    assert_eq!(words("$SPACED"), vec!["a", "b", "c"]);
    assert_eq!(words("\"$SPACED\""), vec!["a  b c"]);
    assert_eq!(words("x$SPACED"), vec!["xa", "b", "c"]);
    assert_eq!(words("${NOPE:-'1 2'} 3"), vec!["1", "2", "3"]);
    assert_eq!(words("\"\" a"), vec!["a"]);
    assert_eq!(words("'a"), vec!["error"]);
    assert!(words("").is_empty());
}

#[test]
fn heredoc_bodies_keep_quotes() {
    // BuildKit's SkipProcessQuotes: quotes stay, `$` expands, `\` escapes.
    let l = Lexer::new('`');
    let body = "home=$HOME\n'quoted $SHELL'\n\\$HOME and \\n\n\"unbalanced ${NOPE:-x}\n";
    assert_eq!(l.expand_heredoc(body, &env()).unwrap(), "home=/root\n'quoted bash'\n$HOME and n\n\"unbalanced x\n");
}
