//! COPY and ADD: sources (paths or heredoc bodies), a destination, flags.

use std::collections::VecDeque;

use super::flags::{Flags, Kind};
use super::{take_heredoc, values};
use crate::error::Problem;
use crate::parser::{Args, Heredoc, Node};

/// A COPY or ADD. `from` is COPY only; `checksum` and `keep_git_dir` ADD only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// Source paths, globs or (ADD) URLs, as written.
    pub sources: Vec<String>,
    /// Inline files: `COPY <<EOF /dest`; each is named after its delimiter.
    pub heredocs: Vec<Heredoc>,
    pub dest: String,
    /// A stage (name or index) or an image to copy from.
    pub from: Option<String>,
    pub chown: Option<String>,
    /// Octal, as written; `mode()` gives its value.
    pub chmod: Option<String>,
    pub link: bool,
    /// `COPY --parents`: sources keep their parent directories.
    pub parents: bool,
    pub checksum: Option<String>,
    pub keep_git_dir: bool,
    /// JSON form, where paths may hold spaces.
    pub exec_form: bool,
}

impl Copy {
    /// The `--chmod` value, once it holds no variables.
    pub fn mode(&self) -> Option<u32> {
        self.chmod.as_deref().and_then(|m| values::chmod(m).ok().flatten())
    }
}

const COPY_FLAGS: &[(&str, Kind)] = &[
    ("from", Kind::Value),
    ("chown", Kind::Value),
    ("chmod", Kind::Value),
    ("link", Kind::Bool),
    ("parents", Kind::Bool),
];
const ADD_FLAGS: &[(&str, Kind)] = &[
    ("chown", Kind::Value),
    ("chmod", Kind::Value),
    ("link", Kind::Bool),
    ("checksum", Kind::Value),
    ("keep-git-dir", Kind::Bool),
];

pub(crate) fn parse(node: &Node, add: bool) -> Result<Copy, Problem> {
    let name = if add { "add" } else { "copy" };
    let flags = Flags::parse(name, &node.flags, if add { ADD_FLAGS } else { COPY_FLAGS })?;
    let (words, exec_form) = match &node.args {
        Args::Words(w) => (w.as_slice(), false),
        Args::Exec(w) => (w.as_slice(), true),
        _ => (&[][..], false),
    };
    let Some((dest, rest)) = words.split_last().filter(|(_, rest)| !rest.is_empty()) else {
        return Err(Problem::args(name, "at least two arguments: one or more sources, then a destination"));
    };
    let mut docs: VecDeque<Heredoc> = node.heredocs.iter().cloned().collect();
    let mut sources = Vec::new();
    let mut heredocs = Vec::new();
    for word in rest {
        match take_heredoc(&mut docs, word) {
            Some(doc) => heredocs.push(doc),
            None => sources.push(word.clone()),
        }
    }
    let copy = Copy {
        sources,
        heredocs,
        dest: dest.clone(),
        from: flags.value("from"),
        chown: flags.value("chown"),
        chmod: flags.value("chmod"),
        link: flags.bool("link")?,
        parents: flags.bool("parents")?,
        checksum: flags.value("checksum"),
        keep_git_dir: flags.bool("keep-git-dir")?,
        exec_form,
    };
    check(&copy)?;
    Ok(copy)
}

/// Checks run on parsing and again after expansion.
pub(crate) fn check(copy: &Copy) -> Result<(), Problem> {
    if let Some(mode) = &copy.chmod {
        values::chmod(mode)?;
    }
    if let Some(from) = &copy.from {
        if from.is_empty() {
            return Err(Problem::value("--from", from, "names no stage or image"));
        }
    }
    let Some(sum) = copy.checksum.as_deref().filter(|s| !s.contains('$')) else { return Ok(()) };
    let (algo, hex) = sum.split_once(':').unwrap_or(("", sum));
    let want = match algo {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(Problem::value("--checksum", sum, "expected sha256:, sha384: or sha512: and a hex digest")),
    };
    if hex.len() != want || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Problem::value("--checksum", sum, format!("a {algo} digest is {want} hex digits")));
    }
    let remote = |s: &String| s.starts_with("http://") || s.starts_with("https://") || s.contains('$');
    if !copy.sources.iter().all(remote) {
        return Err(Problem::value("--checksum", sum, "only URL sources (http:// or https://) can be checked"));
    }
    Ok(())
}
