//! The scanner behind `Lexer`: one pass over the characters, building both
//! the joined result (`expand_word`) and the split words (`expand_words`).

use super::pattern::Pattern;
use super::Env;

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    /// Keep quote characters in the output (heredoc-word detection needs them).
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Leave `$UNSET` as written instead of expanding it to nothing.
    pub skip_unset: bool,
    /// Quotes are ordinary characters (BuildKit's `SkipProcessQuotes`, used
    /// for the bodies of COPY/ADD heredocs).
    pub heredoc: bool,
}

struct Scanner<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    env: &'a dyn Env,
    opts: Options,
    /// How many `${...:-...}` words enclose the current position.
    depth: usize,
}

/// Deeper nesting than any real Dockerfile uses; the limit keeps a hostile
/// line from exhausting the stack.
const MAX_DEPTH: usize = 64;

/// Words being split on unquoted whitespace while the result is built.
#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

pub(crate) fn process(word: &str, escape: char, env: &dyn Env, opts: Options) -> Result<(String, Vec<String>), String> {
    let mut sc = Scanner { chars: word.chars().collect(), pos: 0, escape, env, opts, depth: 0 };
    sc.process_until(None)
}

impl Scanner<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek();
        if ch.is_some() {
            self.pos += 1;
        }
        ch
    }

    /// Scans until `stop` (consumed) or the end of input.
    fn process_until(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            let quoted = !self.opts.heredoc && (ch == '\'' || ch == '"');
            if quoted || ch == '$' {
                let piece = match ch {
                    '\'' => self.single_quoted()?,
                    '"' => self.double_quoted()?,
                    _ => self.dollar()?,
                };
                result.push_str(&piece);
                if ch == '$' {
                    // An unquoted expansion is split into words, as in sh.
                    words.add_string(&piece);
                } else {
                    words.add_raw_string(&piece);
                }
                continue;
            }
            self.pos += 1;
            if ch != self.escape {
                words.add_char(ch);
                result.push(ch);
                continue;
            }
            if self.opts.raw_escapes {
                words.add_raw_char(ch);
                result.push(ch);
            }
            // A trailing escape character is dropped.
            let Some(escaped) = self.next() else { break };
            words.add_raw_char(escaped);
            result.push(escaped);
        }
        match stop {
            Some(stop) => Err(format!("unexpected end of statement while looking for matching {stop}")),
            None => Ok((result, words.finish())),
        }
    }

    fn single_quoted(&mut self) -> Result<String, String> {
        // Nothing can be escaped between single quotes, not even a quote.
        self.pos += 1;
        let mut out = String::new();
        if self.opts.raw_quotes {
            out.push('\'');
        }
        loop {
            match self.next() {
                None => return Err("unexpected end of statement while looking for matching single-quote".into()),
                Some('\'') => break,
                Some(c) => out.push(c),
            }
        }
        if self.opts.raw_quotes {
            out.push('\'');
        }
        Ok(out)
    }

    fn double_quoted(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        if self.opts.raw_quotes {
            out.push('"');
        }
        loop {
            match self.peek() {
                None => return Err("unexpected end of statement while looking for matching double-quote".into()),
                Some('"') => {
                    self.pos += 1;
                    break;
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) => {
                    self.pos += 1;
                    if c == self.escape {
                        out.push_str(&self.escaped_in_quotes());
                    } else {
                        out.push(c);
                    }
                }
            }
        }
        if self.opts.raw_quotes {
            out.push('"');
        }
        Ok(out)
    }

    /// After an escape character inside double quotes: only `"`, `$` and the
    /// escape character itself are escapable, the escape stays otherwise (sh).
    fn escaped_in_quotes(&mut self) -> String {
        let escapable = |c: char| c == '"' || c == '$' || c == self.escape;
        match self.peek() {
            None => String::new(),
            Some(c) if escapable(c) => {
                self.pos += 1;
                if self.opts.raw_escapes {
                    format!("{}{c}", self.escape)
                } else {
                    c.to_string()
                }
            }
            Some(_) => self.escape.to_string(),
        }
    }

    fn dollar(&mut self) -> Result<String, String> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(self.value(&name, &format!("${name}")));
        }
        self.pos += 1;
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            _ => {}
        }
        let name = self.name();
        let start = self.pos;
        let op = self.next().ok_or("syntax error: missing '}'")?;
        let colon = op == ':';
        let op = if colon { self.next().ok_or("syntax error: missing '}'")? } else { op };
        let result = match op {
            '}' if !colon => return Ok(self.value(&name, &format!("${{{name}}}"))),
            '-' | '+' | '?' => self.default_or_check(&name, op, colon),
            '#' | '%' if !colon => self.trim(&name, op),
            '/' if !colon => self.replace(&name),
            _ => {
                let written = if colon { format!(":{op}") } else { op.to_string() };
                return Err(format!("unsupported modifier ({written}) in substitution"));
            }
        };
        if self.opts.skip_unset && self.env.lookup(&name).is_none() {
            // Keep the whole substitution as written (heredoc-word detection).
            let text: String = self.chars[start..self.pos].iter().collect();
            return Ok(format!("${{{name}{text}"));
        }
        result
    }

    /// The word inside `${name...}` up to `stop`; `raw_escapes` keeps escape
    /// characters, which pattern operators need to see.
    fn nested(&mut self, stop: char, raw_escapes: bool) -> Result<String, String> {
        if self.depth >= MAX_DEPTH {
            return Err(format!("substitutions nested more than {MAX_DEPTH} deep"));
        }
        let saved = self.opts.raw_escapes;
        self.opts.raw_escapes = raw_escapes;
        self.depth += 1;
        let inner = self.process_until(Some(stop));
        self.depth -= 1;
        self.opts.raw_escapes = saved;
        inner.map(|(word, _)| word).map_err(|e| match self.peek() {
            None if stop == '}' => "syntax error: missing '}'".to_string(),
            None => format!("syntax error: missing '{stop}' in ${{}}"),
            Some(_) => e,
        })
    }

    /// `${name:-word}`, `${name+word}`, `${name:?message}`...; with `colon`,
    /// an empty value counts as unset.
    fn default_or_check(&mut self, name: &str, op: char, colon: bool) -> Result<String, String> {
        let word = self.nested('}', false)?;
        let value = self.env.lookup(name);
        let set = value.is_some_and(|v| !colon || !v.is_empty());
        match op {
            '-' if set => Ok(value.unwrap_or_default().to_string()),
            '-' => Ok(word),
            '+' if set => Ok(word),
            '+' => Ok(String::new()),
            _ if set => Ok(value.unwrap_or_default().to_string()),
            _ if !word.is_empty() => Err(format!("{name}: {word}")),
            _ if value.is_none() => Err(format!("{name}: is not allowed to be unset")),
            _ => Err(format!("{name}: is not allowed to be empty")),
        }
    }

    /// `${name#pattern}` / `##` (prefix) and `${name%pattern}` / `%%` (suffix).
    fn trim(&mut self, name: &str, op: char) -> Result<String, String> {
        let greedy = self.peek() == Some(op);
        if greedy {
            self.pos += 1;
        }
        let pattern = Pattern::parse(&self.nested('}', true)?)?;
        let value = self.env.lookup(name).unwrap_or_default();
        Ok(if op == '#' { pattern.trim_prefix(value, greedy) } else { pattern.trim_suffix(value, greedy) })
    }

    /// `${name/pattern/replacement}`, and `//` to replace every match.
    fn replace(&mut self, name: &str) -> Result<String, String> {
        let all = self.peek() == Some('/');
        if all {
            self.pos += 1;
        }
        let pattern = Pattern::parse(&self.nested('/', true)?)?;
        let replacement = self.nested('}', true)?;
        let value = self.env.lookup(name).unwrap_or_default();
        Ok(pattern.replace(value, &replacement, all))
    }

    fn value(&self, name: &str, as_written: &str) -> String {
        match self.env.lookup(name) {
            Some(v) => v.to_string(),
            None if self.opts.skip_unset => as_written.to_string(),
            None => String::new(),
        }
    }

    /// A variable name: letters, digits and `_`; or a run of digits
    /// (positional); or one special parameter character.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                    name.push(c);
                    self.pos += 1;
                }
                return name;
            }
            Some(c @ ('@' | '*' | '#' | '?' | '-' | '$' | '!')) => {
                self.pos += 1;
                return c.to_string();
            }
            _ => {}
        }
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            name.push(c);
            self.pos += 1;
        }
        name
    }
}
