//! One logical line → a `Node`: the keyword, its `--flags` and its
//! arguments in the form the keyword uses (BuildKit's line parsers).

use super::{Args, Node};
use crate::error::{LineRange, Problem};

/// Builds the node for a joined logical line; lines and heredocs are filled
/// in by the caller. What is accepted but looks wrong goes to `notes`.
pub(crate) fn node_from_line(line: &str, escape: char, notes: &mut Vec<String>) -> Result<Node, Problem> {
    let trimmed = line.trim();
    let (word, rest) = match trimmed.find(char::is_whitespace) {
        Some(i) => (&trimmed[..i], trimmed[i..].trim_start()),
        None => (trimmed, ""),
    };
    let keyword = word.to_ascii_lowercase();
    let (flags, rest) = extract_flags(rest);
    let rest = rest.trim();
    let name = keyword.to_ascii_uppercase();
    let args = match keyword.as_str() {
        "add" | "copy" | "volume" => maybe_json(rest, &name, notes)?.unwrap_or_else(|| whitespace_list(rest)),
        "arg" => words_or_empty(parse_words(rest, escape)),
        "cmd" | "entrypoint" | "run" | "shell" => maybe_json(rest, &name, notes)?.unwrap_or_else(|| text(rest)),
        "env" | "label" => name_values(rest, &name, escape)?,
        "expose" | "from" => whitespace_list(rest),
        "healthcheck" => health(rest, &name, notes)?,
        "maintainer" | "stopsignal" | "user" | "workdir" => text(rest),
        "onbuild" if rest.is_empty() => Args::Empty,
        // Checked before recursing: `ONBUILD ONBUILD ...` is refused anyway,
        // and a long chain of them must not exhaust the stack.
        "onbuild" if rest.split_whitespace().next().is_some_and(|w| w.eq_ignore_ascii_case("onbuild")) => {
            return Err(Problem::BadOnbuild("ONBUILD".into()))
        }
        "onbuild" => Args::Sub(Box::new(node_from_line(rest, escape, notes)?)),
        _ => return Err(Problem::UnknownInstruction(word.to_string())),
    };
    Ok(Node { keyword, original: trimmed.to_string(), flags, args, heredocs: Vec::new(), lines: LineRange::new(0, 0) })
}

/// Leading `--name[=value]` words; `--` alone ends them. Quotes and `\` in a
/// flag word are removed here, as BuildKit's `extractBuilderFlags` does.
pub(crate) fn extract_flags(line: &str) -> (Vec<String>, String) {
    let chars: Vec<char> = line.chars().collect();
    let mut pos = 0;
    let mut flags = Vec::new();
    loop {
        while chars.get(pos).is_some_and(|c| c.is_whitespace()) {
            pos += 1;
        }
        if chars.get(pos) != Some(&'-') || chars.get(pos + 1) != Some(&'-') {
            return (flags, chars[pos..].iter().collect());
        }
        let mut word = String::new();
        while let Some(&c) = chars.get(pos).filter(|c| !c.is_whitespace()) {
            pos += 1;
            match c {
                '\'' | '"' => {
                    while let Some(&q) = chars.get(pos) {
                        pos += 1;
                        if q == c {
                            break;
                        }
                        if q == '\\' && pos < chars.len() {
                            word.push(chars[pos]);
                            pos += 1;
                        } else {
                            word.push(q);
                        }
                    }
                }
                '\\' if pos < chars.len() => {
                    word.push(chars[pos]);
                    pos += 1;
                }
                '\\' => {}
                _ => word.push(c),
            }
        }
        if word == "--" {
            return (flags, chars[pos..].iter().collect());
        }
        flags.push(word);
    }
}

fn text(rest: &str) -> Args {
    if rest.is_empty() {
        Args::Empty
    } else {
        Args::Text(rest.to_string())
    }
}

fn words_or_empty(words: Vec<String>) -> Args {
    if words.is_empty() {
        Args::Empty
    } else {
        Args::Words(words)
    }
}

fn whitespace_list(rest: &str) -> Args {
    words_or_empty(rest.split_whitespace().map(String::from).collect())
}

/// The JSON exec form when `rest` is one. Anything that is not valid JSON
/// is the shell form (or a word list), as in BuildKit's `parseMaybeJSON`;
/// text starting with `["` was meant as JSON, so that case gets a note.
/// Valid JSON holding something other than strings is an error, as there.
fn maybe_json(rest: &str, instruction: &str, notes: &mut Vec<String>) -> Result<Option<Args>, Problem> {
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let value = match serde_json::from_str::<serde_json::Value>(rest) {
        Ok(v) => v,
        Err(e) => {
            if rest.starts_with("[\"") {
                // serde's "at line 1" would be read as the Dockerfile's line.
                let msg = e.to_string();
                let reason = match msg.rfind(" at line ") {
                    Some(i) => format!("{} at column {}", &msg[..i], e.column()),
                    None => msg,
                };
                notes.push(format!(
                    "{instruction}: not valid JSON ({reason}): the text is used as the shell form, as BuildKit does"
                ));
            }
            return Ok(None);
        }
    };
    let serde_json::Value::Array(items) = value else { return Ok(None) };
    let strings: Option<Vec<String>> = items.into_iter().map(|v| v.as_str().map(String::from)).collect();
    match strings {
        Some(list) => Ok(Some(Args::Exec(list))),
        None => Err(Problem::JsonNotStrings(instruction.to_string())),
    }
}

/// `HEALTHCHECK [flags] NONE | CMD command`: the type word, then a command.
fn health(rest: &str, instruction: &str, notes: &mut Vec<String>) -> Result<Args, Problem> {
    let (kind, command) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim_start()),
        None => (rest, ""),
    };
    if kind.is_empty() {
        return Ok(Args::Empty);
    }
    let command = maybe_json(command, instruction, notes)?.unwrap_or_else(|| text(command));
    Ok(Args::Health { kind: kind.to_string(), command: Box::new(command) })
}

/// ENV and LABEL: `name=value ...` pairs, or the legacy `name value` form
/// (chosen when the first word has no `=`). Quotes stay for the lexer.
fn name_values(rest: &str, instruction: &str, escape: char) -> Result<Args, Problem> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else { return Ok(Args::Empty) };
    if !first.contains('=') {
        return match rest.split_once(char::is_whitespace) {
            Some((k, v)) => Ok(Args::Pairs(vec![(k.to_string(), v.trim_start().to_string())])),
            None => Err(Problem::args(instruction, "a value: use name=value (or the legacy form name value)")),
        };
    }
    let mut pairs = Vec::new();
    for word in &words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(Problem::Syntax(format!(
                "{instruction}: no '=' in {word:?}: pairs must be of the form name=value"
            )));
        };
        pairs.push((k.to_string(), v.to_string()));
    }
    Ok(Args::Pairs(pairs))
}

/// Splits on whitespace outside quotes, keeping quotes and escapes in the
/// words (they are removed when the word is expanded).
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        if quote.is_none() && ch.is_whitespace() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        // The escape character keeps the next one, except in single quotes.
        if ch == escape && quote != Some('\'') {
            if i == chars.len() {
                continue;
            }
            word.push(ch);
            word.push(chars[i]);
            i += 1;
            continue;
        }
        match quote {
            Some(q) if ch == q => quote = None,
            None if ch == '\'' || ch == '"' => quote = Some(ch),
            _ => {}
        }
        word.push(ch);
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_leading_double_dash_words() {
        let (flags, rest) = extract_flags("--from=build --chown=\"a b\" src dst");
        assert_eq!(flags, vec!["--from=build", "--chown=a b"]);
        assert_eq!(rest, "src dst");
        let (flags, rest) = extract_flags("-- --not-a-flag x");
        assert!(flags.is_empty());
        assert_eq!(rest.trim(), "--not-a-flag x");
        let (flags, rest) = extract_flags("-x y");
        assert!(flags.is_empty());
        assert_eq!(rest, "-x y");
    }

    #[test]
    fn words_keep_quotes() {
        assert_eq!(parse_words(r#"a="b c" d='e f' g\ h"#, '\\'), vec![r#"a="b c""#, "d='e f'", r"g\ h"]);
        assert_eq!(parse_words("x `\"y", '`'), vec!["x", "`\"y"]);
    }

    #[test]
    fn json_and_fallback() {
        let mut notes = Vec::new();
        let n = &mut notes;
        assert_eq!(maybe_json(r#"["a", "b"]"#, "RUN", n).unwrap(), Some(Args::Exec(vec!["a".into(), "b".into()])));
        assert_eq!(maybe_json("[ -f /x ] && y", "RUN", n).unwrap(), None);
        assert_eq!(maybe_json("[ \"a\" \"b\" ]", "RUN", n).unwrap(), None);
        assert!(notes.is_empty());
        // Was an error; BuildKit runs it as a shell command (and so do we, with a note).
        assert_eq!(maybe_json(r#"["echo", "unterminated"#, "CMD", &mut notes).unwrap(), None);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(matches!(maybe_json(r#"["a", 1]"#, "RUN", &mut notes), Err(Problem::JsonNotStrings(_))));
    }

    #[test]
    fn legacy_env_form() {
        let args = name_values("PATH /a b", "ENV", '\\').unwrap();
        assert_eq!(args, Args::Pairs(vec![("PATH".into(), "/a b".into())]));
        assert!(name_values("PATH", "ENV", '\\').is_err());
        assert!(name_values("a=b c", "ENV", '\\').is_err());
    }
}
