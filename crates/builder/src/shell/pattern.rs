//! The shell patterns of `${VAR#pat}`, `${VAR%pat}` and `${VAR/pat/repl}`:
//! `*`, `?` and `\` escapes, no bracket expressions (as in BuildKit).

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Lit(char),
    One,
    Star,
}

#[derive(Debug)]
pub(crate) struct Pattern(Vec<Token>);

impl Pattern {
    /// Parses a pattern whose escape characters were kept by the lexer.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut tokens = Vec::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' => Token::Star,
                '?' => Token::One,
                // `\}` and `\/` only protect the substitution's syntax;
                // `\*`, `\?` and `\\` make pattern characters literal.
                '\\' => match chars.next() {
                    Some(n @ ('}' | '/' | '*' | '?' | '\\')) => Token::Lit(n),
                    Some(n) => return Err(format!("invalid pattern ({text}) in substitution: invalid escape '\\{n}'")),
                    None => return Err(format!("invalid pattern ({text}) in substitution: trailing escape")),
                },
                _ => Token::Lit(c),
            });
        }
        Ok(Pattern(tokens))
    }

    /// `reach[e]`: the pattern matches `s[start..e]`. Linear per token.
    fn ends(&self, s: &[char], start: usize) -> Vec<bool> {
        let n = s.len();
        let mut reach = vec![false; n + 1];
        reach[start] = true;
        for token in &self.0 {
            let mut next = vec![false; n + 1];
            match token {
                Token::Lit(c) => (start..n).filter(|&i| reach[i] && s[i] == *c).for_each(|i| next[i + 1] = true),
                Token::One => (start..n).filter(|&i| reach[i]).for_each(|i| next[i + 1] = true),
                Token::Star => {
                    let mut on = false;
                    for i in start..=n {
                        on |= reach[i];
                        next[i] = on;
                    }
                }
            }
            reach = next;
        }
        reach
    }

    pub fn trim_prefix(&self, value: &str, longest: bool) -> String {
        let s: Vec<char> = value.chars().collect();
        let reach = self.ends(&s, 0);
        let cut = if longest { reach.iter().rposition(|r| *r) } else { reach.iter().position(|r| *r) };
        cut.map_or_else(|| value.to_string(), |c| s[c..].iter().collect())
    }

    pub fn trim_suffix(&self, value: &str, longest: bool) -> String {
        let s: Vec<char> = value.chars().collect();
        let n = s.len();
        let matches_to_end = |start: &usize| self.ends(&s, *start)[n];
        let cut = if longest { (0..=n).find(matches_to_end) } else { (0..=n).rev().find(matches_to_end) };
        cut.map_or_else(|| value.to_string(), |c| s[..c].iter().collect())
    }

    /// Leftmost match at or after `from`, the longest one there.
    fn find(&self, s: &[char], from: usize) -> Option<(usize, usize)> {
        (from..=s.len()).find_map(|start| self.ends(s, start).iter().rposition(|r| *r).map(|end| (start, end)))
    }

    pub fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let s: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut at = 0;
        while let Some((start, end)) = self.find(&s, at) {
            out.extend(&s[at..start]);
            out.push_str(replacement);
            at = end;
            if !all {
                break;
            }
            // After an empty match, step over one character (as Go's regexp).
            if end == start {
                match s.get(start) {
                    Some(c) => out.push(*c),
                    None => return out,
                }
                at = start + 1;
            }
        }
        out.extend(&s[at.min(s.len())..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    fn p(text: &str) -> Pattern {
        Pattern::parse(text).unwrap()
    }

    #[test]
    fn trims() {
        assert_eq!(p("*/").trim_prefix("a/b/c", false), "b/c");
        assert_eq!(p("*/").trim_prefix("a/b/c", true), "c");
        assert_eq!(p(".*").trim_suffix("f.tar.gz", false), "f.tar");
        assert_eq!(p(".*").trim_suffix("f.tar.gz", true), "f");
        assert_eq!(p("x").trim_prefix("abc", false), "abc");
        assert_eq!(p("?").trim_prefix("abc", false), "bc");
        assert_eq!(p(r"\*").trim_prefix("*a", false), "a");
    }

    #[test]
    fn replaces() {
        assert_eq!(p("o").replace("foo boo", "0", false), "f0o boo");
        assert_eq!(p("o").replace("foo boo", "0", true), "f00 b00");
        assert_eq!(p("b*o").replace("abooc", "X", false), "aXc");
        assert_eq!(p("z").replace("abc", "X", true), "abc");
        assert_eq!(p("").replace("ab", "-", true), "-a-b-");
    }

    #[test]
    fn bad_escapes() {
        assert!(Pattern::parse(r"\a").is_err());
        assert!(Pattern::parse("a\\").is_err());
    }
}
