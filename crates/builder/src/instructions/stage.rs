//! Grouping instructions into build stages: global ARGs before the first
//! FROM, then one stage per FROM, with stage references checked.

use super::{deps, from_node, From, Instruction};
use crate::error::{Error, LineRange, Problem};
use crate::parser::{Parsed, Warning};
use crate::shell::Lexer;

/// One instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub lines: LineRange,
    /// The instruction as written (continuations joined), for image history.
    pub original: String,
    pub instruction: Instruction,
}

/// One `FROM` and the instructions up to the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Position among the stages, from 0; `--from=<index>` uses it.
    pub index: usize,
    pub name: Option<String>,
    pub from: From,
    /// The FROM instruction's lines.
    pub lines: LineRange,
    /// The FROM line as written.
    pub original: String,
    pub steps: Vec<Step>,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The escape character (`\`, or `` ` `` after `# escape=``).
    pub escape: char,
    /// The `# check=` directive's value (lint configuration), if any.
    pub check: Option<String>,
    pub warnings: Vec<Warning>,
    /// ARG instructions before the first FROM; their values may be used in
    /// FROM lines, and inside a stage once it redeclares them.
    pub global_args: Vec<Step>,
    pub stages: Vec<Stage>,
}

impl Dockerfile {
    /// The lexer to expand this file's words with (it knows the escape character).
    pub fn lexer(&self) -> Lexer {
        Lexer::new(self.escape)
    }

    /// The stage a `--from` or mount `from=` names, by name or index; `None`
    /// means an image. A FROM line only names earlier stages, never by index.
    pub fn stage_ref(&self, reference: &str) -> Option<&Stage> {
        stage_index(&self.stages, reference).map(|i| &self.stages[i])
    }

    /// The stage `--target` names, or the last one.
    pub fn target(&self, name: Option<&str>) -> Option<&Stage> {
        match name {
            Some(n) => self.stages.iter().rfind(|s| s.name.as_deref() == Some(&n.to_ascii_lowercase())),
            None => self.stages.last(),
        }
    }
}

fn stage_index(stages: &[Stage], reference: &str) -> Option<usize> {
    if let Ok(i) = reference.parse::<usize>() {
        return (i < stages.len()).then_some(i);
    }
    let lower = reference.to_ascii_lowercase();
    stages.iter().rposition(|s| s.name.as_deref() == Some(lower.as_str()))
}

pub(crate) fn group(parsed: Parsed) -> Result<Dockerfile, Error> {
    let mut warnings = parsed.warnings;
    let mut steps = Vec::new();
    for node in &parsed.nodes {
        let instruction = from_node(node).map_err(|p| Error::at(node.lines, p))?;
        if let Instruction::Maintainer(_) = instruction {
            warnings.push(Warning::new(
                node.lines,
                Some("MaintainerDeprecated"),
                "Maintainer instruction is deprecated in favor of using label",
            ));
        }
        steps.push(Step { lines: node.lines, original: node.original.clone(), instruction });
    }
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for step in steps {
        if let Instruction::From(from) = &step.instruction {
            if let Some(w) = duplicate_name(&stages, from.name.as_deref(), step.lines) {
                warnings.push(w);
            }
            let index = stages.len();
            stages.push(Stage {
                index,
                name: from.name.clone(),
                from: from.clone(),
                lines: step.lines,
                original: step.original.clone(),
                steps: Vec::new(),
            });
            continue;
        }
        match stages.last_mut() {
            Some(stage) => stage.steps.push(step),
            None if matches!(step.instruction, Instruction::Arg(_)) => global_args.push(step),
            None => return Err(Error::at(step.lines, Problem::NoStage(step.instruction.keyword().into()))),
        }
    }
    if stages.is_empty() {
        let lines = parsed.nodes.last().map_or(LineRange::new(1, 1), |n| n.lines);
        return Err(Error::at(lines, Problem::NoFrom));
    }
    deps::check(&stages)?;
    Ok(Dockerfile { escape: parsed.escape, check: parsed.check, warnings, global_args, stages })
}

/// BuildKit accepts a stage name given twice (the later stage wins) and warns.
fn duplicate_name(stages: &[Stage], name: Option<&str>, lines: LineRange) -> Option<Warning> {
    let name = name?;
    stages.iter().any(|s| s.name.as_deref() == Some(name)).then(|| {
        Warning::new(
            lines,
            Some("DuplicateStageName"),
            format!("Duplicate stage name {name:?}, stage names should be unique"),
        )
    })
}
