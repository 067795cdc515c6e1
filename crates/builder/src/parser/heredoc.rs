//! Heredocs: `RUN <<EOF`, `<<-EOF` (leading tabs stripped), `<<"EOF"` (no
//! expansion), several on one line; their bodies follow the instruction.

use crate::shell::{Lexer, NoEnv, Options};

/// One heredoc attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, quotes removed (`EOF` for `<<"EOF"`).
    pub name: String,
    /// The file descriptor written before `<<` (`3<<EOF`), if any.
    pub fd: Option<u32>,
    /// False when any part of the delimiter was quoted: the body is literal.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body and the delimiter line.
    pub chomp: bool,
    /// The body as written, every line ending in `\n`.
    pub content: String,
}

impl Heredoc {
    /// The body as the command or file receives it (tabs stripped for `<<-`).
    pub fn body(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content.split_inclusive('\n').map(|l| l.trim_start_matches('\t')).collect()
    }

    /// Whether `line` (without its newline) ends this heredoc.
    pub(crate) fn is_terminator(&self, line: &str) -> bool {
        let line = if self.chomp { line.trim_start_matches('\t') } else { line };
        line == self.name
    }
}

/// The heredocs an instruction line opens, in order, with empty bodies.
pub(crate) fn heredocs_in_line(line: &str) -> Vec<Heredoc> {
    // The words are split keeping quotes and escapes, so that `"<<EOF"`
    // (a quoted string) is not taken for a heredoc; BuildKit does the same.
    let lexer = Lexer::new('\\');
    let raw = Options { raw_quotes: true, raw_escapes: true, skip_unset: true, heredoc: false };
    let Ok((_, words)) = lexer.run(line, &NoEnv, raw) else {
        return Vec::new();
    };
    words.iter().filter_map(|w| heredoc_from_word(w)).collect()
}

/// Matches `[digits]<<[-]word` where word holds no `<`.
fn heredoc_from_word(word: &str) -> Option<Heredoc> {
    let digits = word.find(|c: char| !c.is_ascii_digit()).unwrap_or(word.len());
    let rest = word[digits..].strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let lexer = Lexer::new('\\');
    let plain = Options { skip_unset: true, ..Options::default() };
    let (_, words) = lexer.run(rest, &NoEnv, plain).ok()?;
    let [name] = words.as_slice() else { return None };
    let (_, raw_words) = lexer.run(rest, &NoEnv, Options { raw_quotes: true, ..plain }).ok()?;
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    // Quote characters that disappear on quote removal were quoting.
    let expand = raw_words.first().map(|r| quotes(r)) == Some(quotes(name));
    Some(Heredoc { name: name.clone(), fd: word[..digits].parse().ok(), expand, chomp, content: String::new() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(line: &str) -> Vec<(String, bool, bool)> {
        heredocs_in_line(line).into_iter().map(|h| (h.name, h.expand, h.chomp)).collect()
    }

    #[test]
    fn detects_heredoc_words() {
        assert_eq!(names("RUN <<EOF"), vec![("EOF".into(), true, false)]);
        assert_eq!(names("RUN cat <<-END > /f"), vec![("END".into(), true, true)]);
        assert_eq!(names(r#"RUN <<"EOF""#), vec![("EOF".into(), false, false)]);
        assert_eq!(names("RUN <<'A' <<B"), vec![("A".into(), false, false), ("B".into(), true, false)]);
        assert_eq!(names(r#"RUN echo "<<EOF""#), vec![]);
        assert_eq!(names("RUN echo a<<EOF"), vec![]);
        assert_eq!(names("RUN echo <<"), vec![]);
    }

    #[test]
    fn file_descriptor_prefix() {
        let h = heredocs_in_line("RUN cat 3<<EOF");
        assert_eq!(h[0].fd, Some(3));
    }

    #[test]
    fn chomp_strips_leading_tabs_only() {
        let h = Heredoc { name: "E".into(), fd: None, expand: true, chomp: true, content: "\t\ta\n \tb\n".into() };
        assert_eq!(h.body(), "a\n \tb\n");
        assert!(h.is_terminator("\t\tE"));
        assert!(!h.is_terminator(" E"));
    }
}
