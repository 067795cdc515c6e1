//! Source patterns as Go's `filepath.Match` reads them, one path level at a
//! time: `*` and `?` never match '/', `[...]` classes with `^`/`!` and
//! ranges, `\` escapes.

/// Whether a path component holds glob syntax.
pub(crate) fn has_meta(comp: &[u8]) -> bool {
    comp.iter().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// Whether `name` matches `pattern`; a malformed pattern is an error.
pub(crate) fn matches(pattern: &[u8], name: &[u8]) -> Result<bool, String> {
    check(pattern)?;
    Ok(match_from(pattern, name))
}

fn check(p: &[u8]) -> Result<(), String> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'\\' if i + 1 == p.len() => return Err("pattern ends with a lone '\\'".into()),
            b'\\' => i += 2,
            b'[' => i = class_end(p, i).ok_or("unterminated '[' class")?,
            _ => i += 1,
        }
    }
    Ok(())
}

/// Index just past the `]` closing the class that opens at `start`.
fn class_end(p: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if i < p.len() && (p[i] == b'^' || p[i] == b'!') {
        i += 1;
    }
    let first = i;
    while i < p.len() {
        match p[i] {
            b']' if i > first => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    None
}

fn match_from(p: &[u8], s: &[u8]) -> bool {
    // Backtracking on the last star only: linear enough for one component.
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                b'?' if s[si] != b'/' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                b'[' => {
                    let end = class_end(p, pi).unwrap_or(p.len());
                    if s[si] != b'/' && class_matches(&p[pi + 1..end - 1], s[si]) {
                        pi = end;
                        si += 1;
                        continue;
                    }
                }
                b'\\' if pi + 1 < p.len() && p[pi + 1] == s[si] => {
                    pi += 2;
                    si += 1;
                    continue;
                }
                c if c != b'\\' && c != b'?' && c == s[si] => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, ss)) if s[ss] != b'/' => {
                star = Some((sp, ss + 1));
                pi = sp + 1;
                si = ss + 1;
            }
            _ => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

fn class_matches(class: &[u8], c: u8) -> bool {
    let (negated, mut body) = match class.first() {
        Some(b'^') | Some(b'!') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut hit = false;
    while !body.is_empty() {
        let (lo, rest) = unescape(body);
        let (hi, rest) = if rest.len() >= 2 && rest[0] == b'-' { unescape(&rest[1..]) } else { (lo, rest) };
        if lo <= c && c <= hi {
            hit = true;
        }
        body = rest;
    }
    hit != negated
}

fn unescape(b: &[u8]) -> (u8, &[u8]) {
    if b[0] == b'\\' && b.len() > 1 {
        (b[1], &b[2..])
    } else {
        (b[0], &b[1..])
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn go_filepath_match_cases() {
        let m = |p: &str, s: &str| matches(p.as_bytes(), s.as_bytes()).unwrap();
        assert!(m("*.txt", "a.txt"));
        assert!(m("*.txt", ".txt"));
        assert!(!m("*.txt", "a.txt.bak"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[^a-c]x", "bx"));
        assert!(m("[!a-c]x", "dx"));
        assert!(m("a\\*", "a*"));
        assert!(!m("a\\*", "ab"));
        assert!(m("*a*b", "xxaxxb"));
        assert!(m("*", ""));
        assert!(matches(b"[abc", b"a").is_err());
        assert!(matches(b"a\\", b"a").is_err());
    }
}
