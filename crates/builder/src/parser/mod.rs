//! Stage 1: Dockerfile text → `Node`s. Handles comments, parser directives,
//! line continuations, heredoc bodies and the JSON/shell argument forms;
//! knows nothing of what instructions mean.

mod directives;
mod heredoc;
pub(crate) mod line;

use crate::error::{Error, LineRange, Problem};
use directives::{Directives, Found};

pub use heredoc::Heredoc;

/// Something accepted but worth telling the user about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub lines: LineRange,
    /// The BuildKit check this is (`JSONArgsRecommended`, …), when it is one.
    pub rule: Option<&'static str>,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.rule {
            Some(r) => write!(f, "{r}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl Warning {
    pub(crate) fn new(lines: LineRange, rule: Option<&'static str>, message: impl Into<String>) -> Self {
        Warning { lines, rule, message: message.into() }
    }
}

/// One instruction as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// Lowercase instruction name.
    pub keyword: String,
    /// The logical line, continuations joined, as the image history shows it.
    pub original: String,
    /// `--name[=value]` words, quotes removed.
    pub flags: Vec<String>,
    pub args: Args,
    pub heredocs: Vec<Heredoc>,
    pub lines: LineRange,
}

/// An instruction's arguments, in the form its keyword uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Args {
    Empty,
    /// JSON exec form.
    Exec(Vec<String>),
    /// The rest of the line (shell form, or a single string).
    Text(String),
    /// Whitespace-separated words (quotes kept for the lexer where they matter).
    Words(Vec<String>),
    /// ENV/LABEL name/value pairs, values unprocessed.
    Pairs(Vec<(String, String)>),
    /// HEALTHCHECK's type word and its command.
    Health {
        kind: String,
        command: Box<Args>,
    },
    /// ONBUILD's trigger instruction.
    Sub(Box<Node>),
}

pub(crate) struct Parsed {
    pub nodes: Vec<Node>,
    pub escape: char,
    pub check: Option<String>,
    pub warnings: Vec<Warning>,
}

/// Physical lines, numbered from 1, newline kept.
struct Lines<'a> {
    iter: std::iter::Enumerate<std::str::SplitInclusive<'a, char>>,
    last: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = (usize, &'a str);
    fn next(&mut self) -> Option<(usize, &'a str)> {
        let (i, l) = self.iter.next()?;
        self.last = i + 1;
        Some((i + 1, l))
    }
}

fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

pub(crate) fn parse(src: &str) -> Result<Parsed, Error> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut lines = Lines { iter: src.split_inclusive('\n').enumerate(), last: 0 };
    let mut d = Directives::new();
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    while let Some((no, raw)) = lines.next() {
        let text = trim_newline(raw).trim_start();
        match d.check(text).map_err(|p| Error::at(LineRange::new(no, no), p))? {
            Found::Ignored { name, value } => warnings.push(Warning::new(
                LineRange::new(no, no),
                None,
                format!("parser directive {name}={value} is accepted and ignored: wharf has one built-in frontend"),
            )),
            Found::Nothing => {}
        }
        if is_comment(text) {
            continue;
        }
        let Some(node) = instruction(text, no, &mut lines, &d, &mut warnings)? else { continue };
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(Error::at(LineRange::new(lines.last.max(1), lines.last.max(1)), Problem::NoInstructions));
    }
    Ok(Parsed { nodes, escape: d.escape, check: d.check.clone(), warnings })
}

/// Reads one instruction starting at line `start`: continuation lines, then
/// the bodies of the heredocs it opens.
fn instruction(
    first: &str,
    start: usize,
    lines: &mut Lines<'_>,
    d: &Directives,
    warnings: &mut Vec<Warning>,
) -> Result<Option<Node>, Error> {
    let (mut line, mut done) = trim_continuation(first, d.escape);
    if done && line.trim().is_empty() {
        return Ok(None);
    }

    let mut empty_continuation = false;
    while !done {
        // A continuation on the last line ends the instruction, as in BuildKit.
        let Some((_, raw)) = lines.next() else { break };
        let text = trim_newline(raw);
        // Comments inside a continued instruction are dropped, as in Docker.
        if is_comment(text) {
            continue;
        }
        if text.trim().is_empty() {
            empty_continuation = true;
            continue;
        }
        let (more, end) = trim_continuation(text, d.escape);
        line.push_str(&more);
        done = end;
    }
    let mut lines_range = LineRange::new(start, lines.last);
    if line.trim().is_empty() {
        // Only continuations and blanks up to the end of the file.
        return Ok(None);
    }
    if empty_continuation {
        warnings.push(Warning::new(lines_range, Some("NoEmptyContinuation"), "Empty continuation line"));
    }
    let mut notes = Vec::new();
    let mut node = line::node_from_line(&line, d.escape, &mut notes).map_err(|p| Error::at(lines_range, p))?;
    warnings.extend(notes.into_iter().map(|n| Warning::new(lines_range, None, n)));
    read_heredocs(&mut node, &line, start, lines)?;
    lines_range = LineRange::new(start, lines.last);
    set_lines(&mut node, lines_range);
    Ok(Some(node))
}

fn set_lines(node: &mut Node, lines: LineRange) {
    node.lines = lines;
    if let Args::Sub(inner) = &mut node.args {
        set_lines(inner, lines);
    }
}

/// Heredocs belong to RUN, COPY and ADD in shell form, also under ONBUILD;
/// the bodies attach to the node that uses them.
fn read_heredocs(node: &mut Node, line: &str, start: usize, lines: &mut Lines<'_>) -> Result<(), Error> {
    let target = match &mut node.args {
        Args::Sub(inner) => inner.as_mut(),
        _ => node,
    };
    if !matches!(target.keyword.as_str(), "run" | "copy" | "add") || matches!(target.args, Args::Exec(_)) {
        return Ok(());
    }
    for mut doc in heredoc::heredocs_in_line(line) {
        let mut terminated = false;
        for (_, raw) in lines.by_ref() {
            if doc.is_terminator(trim_newline(raw)) {
                terminated = true;
                break;
            }
            doc.content.push_str(trim_newline(raw));
            doc.content.push('\n');
        }
        if !terminated {
            return Err(Error::at(LineRange::new(start, lines.last), Problem::UnterminatedHeredoc(doc.name)));
        }
        target.heredocs.push(doc);
    }
    Ok(())
}

/// Removes a trailing escape character (plus blanks after it) and says
/// whether the instruction ends on this line. An escaped escape (`\\`) at
/// the end does not continue the line.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    let Some(before) = body.strip_suffix(escape) else {
        return (line.to_string(), true);
    };
    if before.ends_with(escape) {
        return (line.to_string(), true);
    }
    (before.to_string(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_rules() {
        assert_eq!(trim_continuation("RUN a \\", '\\'), ("RUN a ".into(), false));
        assert_eq!(trim_continuation("RUN a \\  \t", '\\'), ("RUN a ".into(), false));
        assert_eq!(trim_continuation("RUN a \\\\", '\\'), ("RUN a \\\\".into(), true));
        assert_eq!(trim_continuation("RUN a `", '`'), ("RUN a ".into(), false));
        assert_eq!(trim_continuation("RUN a \\", '`'), ("RUN a \\".into(), true));
        assert_eq!(trim_continuation("\\", '\\'), ("".into(), false));
    }

    #[test]
    fn lines_of_each_node() {
        let p = parse("FROM a\n\nRUN x \\\n  y\n# c\nCMD z\n").unwrap();
        let r: Vec<_> = p.nodes.iter().map(|n| (n.lines.start, n.lines.end)).collect();
        assert_eq!(r, vec![(1, 1), (3, 4), (6, 6)]);
    }

    #[test]
    fn continuation_at_eof_ends_the_instruction() {
        // Was an error; BuildKit ends the instruction at the end of the file.
        let p = parse("FROM a\nRUN echo a \\\n  b \\\n").unwrap();
        assert_eq!(p.nodes[1].original, "RUN echo a   b");
        assert_eq!((p.nodes[1].lines.start, p.nodes[1].lines.end), (2, 3));
        let p = parse("FROM a\nRUN true \\").unwrap();
        assert_eq!(p.nodes.len(), 2);
        // A lone continuation at the end adds no instruction.
        let p = parse("FROM a\n\\\n").unwrap();
        assert_eq!(p.nodes.len(), 1);
    }

    #[test]
    fn crlf_and_bom() {
        let p = parse("\u{feff}FROM a\r\nRUN b \\\r\n c\r\n").unwrap();
        assert_eq!(p.nodes[1].original, "RUN b  c");
    }
}
