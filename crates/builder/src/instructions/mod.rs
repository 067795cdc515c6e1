//! Stage 2: `Node`s → typed instructions with their flags checked, grouped
//! into build stages. Words stay unexpanded here (the values of ARG and ENV
//! are only known while building); `Step::expand` applies Docker's
//! expansion rules once the executor has the environment.

mod copy;
mod deps;
mod expand;
mod flags;
mod health;
mod run;
mod stage;
mod values;

use std::time::Duration;

use crate::error::Problem;
use crate::parser::{Args, Heredoc, Node};
use flags::{Flags, Kind};

pub use copy::Copy;
pub use run::{Mount, MountType, Network, Run, Sharing};
pub(crate) use stage::group;
pub use stage::{Dockerfile, Stage, Step};

/// A command in shell form (run through SHELL) or exec form (JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Shell(String),
    Exec(Vec<String>),
}

/// `FROM [--platform=p] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// An image reference, `scratch`, or an earlier stage's name.
    pub image: String,
    pub platform: Option<String>,
    /// The stage name, lowercased as Docker does.
    pub name: Option<String>,
}

/// One `name[=default]` of an ARG instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

/// One ENV or LABEL pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any check inherited from the base image.
    Disable,
    Check(HealthCheck),
}

/// `HEALTHCHECK [options] CMD ...`; unset options keep Docker's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Exec form becomes `["CMD", ...]`, shell form `["CMD-SHELL", cmd]`.
    pub test: Command,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
}

/// `ONBUILD <instruction>`: stored in the image, run by images built on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onbuild {
    /// The trigger as written, as it goes into the image config.
    pub trigger: String,
    pub instruction: Box<Instruction>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    From(From),
    Arg(Vec<ArgDecl>),
    Env(Vec<KeyValue>),
    Label(Vec<KeyValue>),
    Workdir(String),
    User(String),
    Run(Run),
    Copy(Copy),
    Add(Copy),
    Cmd(Command),
    Entrypoint(Command),
    Expose(Vec<String>),
    Volume(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    Shell(Vec<String>),
    Onbuild(Onbuild),
    /// Deprecated by Docker; accepted and turned into a warning.
    Maintainer(String),
}

impl Instruction {
    /// The instruction's name as Docker spells it.
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::From(_) => "FROM",
            Instruction::Arg(_) => "ARG",
            Instruction::Env(_) => "ENV",
            Instruction::Label(_) => "LABEL",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::User(_) => "USER",
            Instruction::Run(_) => "RUN",
            Instruction::Copy(_) => "COPY",
            Instruction::Add(_) => "ADD",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Volume(_) => "VOLUME",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Shell(_) => "SHELL",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::Maintainer(_) => "MAINTAINER",
        }
    }
}

impl Onbuild {
    /// The trigger as the image config stores it: heredoc bodies follow the
    /// line, each closed by its delimiter, so a child build can parse it again.
    pub fn config_text(&self) -> String {
        let docs = match self.instruction.as_ref() {
            Instruction::Run(r) => &r.heredocs,
            Instruction::Copy(c) | Instruction::Add(c) => &c.heredocs,
            _ => return self.trigger.clone(),
        };
        let mut text = self.trigger.clone();
        for doc in docs {
            text.push('\n');
            text.push_str(&doc.content);
            text.push_str(&doc.name);
        }
        text
    }
}

const NO_FLAGS: &[(&str, Kind)] = &[];

/// Turns one parsed node into its typed instruction.
pub(crate) fn from_node(node: &Node) -> Result<Instruction, Problem> {
    let kw = node.keyword.as_str();
    if !matches!(kw, "from" | "run" | "copy" | "add" | "healthcheck") {
        Flags::parse(kw, &node.flags, NO_FLAGS)?;
    }
    Ok(match kw {
        "from" => Instruction::From(from(node)?),
        "arg" => Instruction::Arg(arg(&node.args)?),
        "env" => Instruction::Env(pairs(kw, &node.args)?),
        "label" => Instruction::Label(pairs(kw, &node.args)?),
        "workdir" => Instruction::Workdir(single(kw, &node.args)?),
        "user" => Instruction::User(single(kw, &node.args)?),
        "maintainer" => Instruction::Maintainer(single(kw, &node.args)?),
        "stopsignal" => Instruction::StopSignal(values::signal(single(kw, &node.args)?)?),
        "run" => Instruction::Run(run::parse(node)?),
        "copy" => Instruction::Copy(copy::parse(node, false)?),
        "add" => Instruction::Add(copy::parse(node, true)?),
        "cmd" | "entrypoint" => {
            let c = command(kw, &node.args)?;
            if kw == "cmd" {
                Instruction::Cmd(c)
            } else {
                Instruction::Entrypoint(c)
            }
        }
        "expose" => Instruction::Expose(list(kw, &node.args)?.into_iter().map(values::port).collect::<Result<_, _>>()?),
        "volume" => {
            Instruction::Volume(list(kw, &node.args)?.into_iter().map(values::volume).collect::<Result<_, _>>()?)
        }
        "healthcheck" => Instruction::Healthcheck(health::parse(node)?),
        "shell" => Instruction::Shell(shell(&node.args)?),
        "onbuild" => Instruction::Onbuild(onbuild(node)?),
        other => return Err(Problem::UnknownInstruction(other.to_string())),
    })
}

fn from(node: &Node) -> Result<From, Problem> {
    let flags = Flags::parse("from", &node.flags, &[("platform", Kind::Value)])?;
    let words = match &node.args {
        Args::Words(w) => w.as_slice(),
        _ => &[],
    };
    let name = match words {
        [_] => None,
        [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(values::stage_name(name)?),
        _ => return Err(Problem::args("from", "an image, optionally followed by AS and a stage name")),
    };
    Ok(From { image: words[0].clone(), platform: flags.value("platform"), name })
}

fn arg(args: &Args) -> Result<Vec<ArgDecl>, Problem> {
    let Args::Words(words) = args else { return Err(Problem::args("arg", "at least one name")) };
    words
        .iter()
        .map(|w| {
            let (name, default) = match w.split_once('=') {
                Some((n, d)) => (n, Some(d.to_string())),
                None => (w.as_str(), None),
            };
            if name.is_empty() {
                return Err(Problem::Syntax(format!("ARG: no name before '=' in {w:?}")));
            }
            Ok(ArgDecl { name: name.to_string(), default })
        })
        .collect()
}

fn pairs(kw: &str, args: &Args) -> Result<Vec<KeyValue>, Problem> {
    let Args::Pairs(pairs) = args else { return Err(Problem::args(kw, "at least one name=value pair")) };
    pairs
        .iter()
        .map(|(k, v)| {
            if k.is_empty() {
                return Err(Problem::Syntax(format!("{}: names can not be blank", kw.to_ascii_uppercase())));
            }
            Ok(KeyValue { key: k.clone(), value: v.clone() })
        })
        .collect()
}

fn single(kw: &str, args: &Args) -> Result<String, Problem> {
    match args {
        Args::Text(t) => Ok(t.clone()),
        _ => Err(Problem::args(kw, "exactly one argument")),
    }
}

fn list(kw: &str, args: &Args) -> Result<Vec<String>, Problem> {
    match args {
        Args::Words(w) | Args::Exec(w) if !w.is_empty() => Ok(w.clone()),
        _ => Err(Problem::args(kw, "at least one argument")),
    }
}

pub(crate) fn command(kw: &str, args: &Args) -> Result<Command, Problem> {
    match args {
        Args::Exec(list) => Ok(Command::Exec(list.clone())),
        Args::Text(t) => Ok(Command::Shell(t.clone())),
        _ => Err(Problem::args(kw, "at least one argument (a command in shell or JSON form)")),
    }
}

fn shell(args: &Args) -> Result<Vec<String>, Problem> {
    match args {
        Args::Exec(list) if !list.is_empty() => Ok(list.clone()),
        _ => Err(Problem::args("shell", "its arguments in JSON form, such as [\"/bin/sh\", \"-c\"]")),
    }
}

fn onbuild(node: &Node) -> Result<Onbuild, Problem> {
    let Args::Sub(inner) = &node.args else { return Err(Problem::args("onbuild", "an instruction to trigger")) };
    if matches!(inner.keyword.as_str(), "onbuild" | "from" | "maintainer") {
        return Err(Problem::BadOnbuild(inner.keyword.to_ascii_uppercase()));
    }
    Ok(Onbuild { trigger: inner.original.clone(), instruction: Box::new(from_node(inner)?) })
}

/// Heredocs are matched to the words that opened them, in order.
pub(crate) fn is_heredoc_word(word: &str) -> bool {
    word.trim_start_matches(|c: char| c.is_ascii_digit()).starts_with("<<")
}

pub(crate) fn take_heredoc(heredocs: &mut std::collections::VecDeque<Heredoc>, word: &str) -> Option<Heredoc> {
    if is_heredoc_word(word) {
        heredocs.pop_front()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::{parse_dockerfile, Instruction};

    #[test]
    fn a_stage_name_given_twice_means_the_later_stage() {
        // Was an error; BuildKit warns (DuplicateStageName) and the later stage wins.
        let df = parse_dockerfile("FROM a AS x\nFROM b AS X\nFROM x\nCOPY --from=x /f /f\n").unwrap();
        assert_eq!(df.warnings.len(), 1);
        assert_eq!(df.warnings[0].rule, Some("DuplicateStageName"));
        assert_eq!(df.stage_ref("x").map(|s| s.index), Some(1));
        assert_eq!(df.target(Some("x")).map(|s| s.index), Some(1));
    }

    #[test]
    fn onbuild_config_text_keeps_heredocs() {
        let df = parse_dockerfile("FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\nONBUILD RUN true\n").unwrap();
        let texts: Vec<String> = df.stages[0]
            .steps
            .iter()
            .map(|s| match &s.instruction {
                Instruction::Onbuild(o) => o.config_text(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(texts, vec!["RUN <<EOF\necho hi\nEOF", "RUN true"]);
        // What the config stores parses back to the same trigger.
        let again = parse_dockerfile(&format!("FROM a\nONBUILD {}\n", texts[0])).unwrap();
        assert_eq!(again.stages[0].steps[0].instruction, df.stages[0].steps[0].instruction);
    }
}
