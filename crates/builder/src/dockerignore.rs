//! `.dockerignore`: Docker's pattern rules. Patterns are matched against the
//! whole path from the context root (`*.go` matches `a.go`, not `x/a.go`),
//! a pattern matching a directory excludes what is under it, `**` spans
//! directories, and `!` re-includes; the last matching pattern wins.

use crate::error::Error;

const MAX_PATTERN: usize = 4096;

/// The compiled patterns of one `.dockerignore` file.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    exception: bool,
    /// The cleaned pattern, without `!`.
    text: String,
    glob: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Lit(char),
    /// `?`: one character other than `/`.
    One,
    /// `*`: any run of characters other than `/`.
    Star,
    /// `**` not followed by `/`: anything, `/` included.
    Any,
    /// `**/`: nothing, or any path ending in `/`.
    Dirs,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl DockerIgnore {
    /// Reads a `.dockerignore`: one pattern a line; `#` at the start of a
    /// line makes a comment; blank lines are skipped.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            let line_no = i + 1;
            let bad =
                |reason: &str| Error::IgnorePattern { line: line_no, pattern: line.to_string(), reason: reason.into() };
            let mut pattern = line.trim();
            if pattern.is_empty() {
                continue;
            }
            let exception = pattern.starts_with('!');
            if exception {
                pattern = pattern[1..].trim();
                if pattern.is_empty() {
                    return Err(bad("\"!\" needs a pattern after it"));
                }
            }
            // No path is longer than PATH_MAX; the limit also bounds matching.
            if pattern.len() > MAX_PATTERN {
                return Err(bad("longer than 4096 bytes"));
            }
            let text = clean(pattern);
            let glob = compile(&text).map_err(|r| bad(&r))?;
            patterns.push(Pattern { exception, text, glob });
        }
        Ok(DockerIgnore { patterns })
    }

    /// Whether `path` (relative to the context root, `/`-separated) is
    /// excluded from the build context.
    pub fn matches(&self, path: &str) -> bool {
        let path = clean(path);
        // The context root itself is never excluded, whatever `*` or `.` say.
        if path == "." {
            return false;
        }
        let parents: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
        let mut excluded = false;
        for p in &self.patterns {
            // Only a pattern that could change the answer is worth matching.
            if p.exception != excluded {
                continue;
            }
            let hit = glob_match(&p.glob, &path) || parents.iter().any(|dir| glob_match(&p.glob, dir));
            if hit {
                excluded = !p.exception;
            }
        }
        excluded
    }

    /// Whether a walker must still enter the excluded directory `dir`,
    /// because an `!` pattern may re-include something below it.
    pub fn may_include_under(&self, dir: &str) -> bool {
        let dir = clean(dir);
        let dir_parts: Vec<&str> = dir.split('/').collect();
        self.patterns.iter().filter(|p| p.exception).any(|p| {
            let parts: Vec<&str> = p.text.split('/').collect();
            for (i, d) in dir_parts.iter().enumerate() {
                let Some(part) = parts.get(i) else { return false };
                if part.contains("**") {
                    return true;
                }
                if !compile(part).is_ok_and(|g| glob_match(&g, d)) {
                    return false;
                }
            }
            parts.len() > dir_parts.len()
        })
    }

    /// Whether any pattern is an `!` exception.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }
}

/// Lexical cleaning as Go's `filepath.Clean`, then no leading `/`: `./a//b/`
/// and `/a/b` both become `a/b`.
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let rooted = path.starts_with('/');
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            _ => parts.push(part),
        }
    }
    if parts.is_empty() {
        return ".".into();
    }
    parts.join("/")
}

fn compile(pattern: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                    tokens.push(Token::Dirs);
                } else {
                    tokens.push(Token::Any);
                }
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::One),
            '\\' => match chars.get(i) {
                Some(&n) => {
                    tokens.push(Token::Lit(n));
                    i += 1;
                }
                None => return Err("a trailing \\ escapes nothing".into()),
            },
            '[' => {
                let (class, next) = class(&chars, i)?;
                tokens.push(class);
                i = next;
            }
            _ => tokens.push(Token::Lit(c)),
        }
    }
    Ok(tokens)
}

/// A `[...]` class starting after the `[` at `i`; returns it and the index
/// after the closing `]`.
fn class(chars: &[char], mut i: usize) -> Result<(Token, usize), String> {
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let char_at = |i: &mut usize| -> Result<char, String> {
        let c = *chars.get(*i).ok_or("unterminated [ character class")?;
        *i += 1;
        if c == '\\' {
            let e = *chars.get(*i).ok_or("unterminated [ character class")?;
            *i += 1;
            return Ok(e);
        }
        Ok(c)
    };
    loop {
        match chars.get(i) {
            None => return Err("unterminated [ character class".into()),
            Some(']') if !ranges.is_empty() => return Ok((Token::Class { negated, ranges }, i + 1)),
            Some(']') => return Err("empty [] character class".into()),
            _ => {}
        }
        let low = char_at(&mut i)?;
        let high = if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
            i += 1;
            char_at(&mut i)?
        } else {
            low
        };
        if high < low {
            return Err(format!("bad range {low}-{high} in character class"));
        }
        ranges.push((low, high));
    }
}

/// Dynamic programming over (token, position), from the end of both:
/// O(tokens × length) time, no recursion, so no pattern can make matching
/// slow or exhaust the stack.
fn glob_match(tokens: &[Token], path: &str) -> bool {
    let s: Vec<char> = path.chars().collect();
    let n = s.len();
    // next[i]: tokens[t + 1..] match s[i..]; starts as "no tokens left".
    let mut next: Vec<bool> = (0..=n).map(|i| i == n).collect();
    let mut cur = vec![false; n + 1];
    for token in tokens.iter().rev() {
        // For `**/`: some `/` at or after i is followed by a match.
        let mut slash_then_match = false;
        for i in (0..=n).rev() {
            let c = s.get(i);
            cur[i] = match token {
                Token::Lit(l) => c == Some(l) && next[i + 1],
                Token::One => c.is_some_and(|c| *c != '/') && next[i + 1],
                Token::Class { negated, ranges } => {
                    c.is_some_and(|c| *c != '/' && ranges.iter().any(|(l, h)| (*l..=*h).contains(c)) != *negated)
                        && next[i + 1]
                }
                Token::Star => next[i] || (c.is_some_and(|c| *c != '/') && cur[i + 1]),
                Token::Any => next[i] || (i < n && cur[i + 1]),
                Token::Dirs => {
                    if c == Some(&'/') && next[i + 1] {
                        slash_then_match = true;
                    }
                    next[i] || slash_then_match
                }
            };
        }
        std::mem::swap(&mut next, &mut cur);
    }
    next[0]
}

#[cfg(test)]
mod tests;
