//! References between stages: FROM an earlier stage's name, COPY --from and
//! RUN --mount from= by name or index. As in BuildKit, --from may name a
//! later stage; a numbered stage must exist, and no stage may depend on
//! itself, directly or through others.

use super::{Instruction, Stage, Step};
use crate::error::{Error, LineRange, Problem};

/// `target` is needed by the stage holding the edge, written at `lines`.
struct Edge {
    target: usize,
    lines: LineRange,
}

pub(crate) fn check(stages: &[Stage]) -> Result<(), Error> {
    let edges = stages.iter().map(|s| edges_of(stages, s)).collect::<Result<Vec<_>, _>>()?;
    find_cycle(stages, &edges)
}

/// The last stage of that name: a name given twice means the later stage,
/// as in BuildKit (which only warns, DuplicateStageName).
fn by_name(stages: &[Stage], name: &str) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    stages.iter().rposition(|s| s.name.as_deref() == Some(lower.as_str()))
}

/// The stage names a step copies or mounts from, as written.
fn refs(step: &Step) -> Vec<&str> {
    match &step.instruction {
        Instruction::Copy(c) => c.from.iter().map(String::as_str).collect(),
        Instruction::Run(r) => r.mounts.iter().filter_map(|m| m.from.as_deref()).collect(),
        _ => Vec::new(),
    }
}

fn edges_of(stages: &[Stage], stage: &Stage) -> Result<Vec<Edge>, Error> {
    let mut edges = Vec::new();
    // FROM sees only the stages above it; a later name is an image name.
    if let Some(i) = by_name(&stages[..stage.index], &stage.from.image) {
        edges.push(Edge { target: i, lines: stage.lines });
    }
    for step in &stage.steps {
        // References holding variables are resolved after expansion.
        for r in refs(step).into_iter().filter(|r| !r.contains('$')) {
            let target = match r.parse::<usize>() {
                Ok(i) if i < stages.len() => Some(i),
                Ok(_) => return Err(Error::at(step.lines, Problem::MissingStage(r.into()))),
                // A name that is no stage's is an image reference.
                Err(_) => by_name(stages, r),
            };
            edges.extend(target.map(|target| Edge { target, lines: step.lines }));
        }
    }
    Ok(edges)
}

#[derive(Clone, Copy, PartialEq)]
enum Mark {
    New,
    Open,
    Done,
}

/// Depth-first search with an explicit stack: a file may hold many stages.
fn find_cycle(stages: &[Stage], edges: &[Vec<Edge>]) -> Result<(), Error> {
    let mut mark = vec![Mark::New; stages.len()];
    for root in 0..stages.len() {
        if mark[root] != Mark::New {
            continue;
        }
        mark[root] = Mark::Open;
        let mut stack = vec![(root, 0usize)];
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let Some(edge) = edges[node].get(*next) else {
                mark[node] = Mark::Done;
                stack.pop();
                continue;
            };
            *next += 1;
            match mark[edge.target] {
                Mark::New => {
                    mark[edge.target] = Mark::Open;
                    stack.push((edge.target, 0));
                }
                Mark::Open => {
                    let from = stack.iter().position(|(n, _)| *n == edge.target).unwrap_or(0);
                    let mut path: Vec<String> = stack[from..].iter().map(|(n, _)| label(&stages[*n])).collect();
                    path.push(label(&stages[edge.target]));
                    return Err(Error::at(edge.lines, Problem::StageCycle(path.join(" -> "))));
                }
                Mark::Done => {}
            }
        }
    }
    Ok(())
}

fn label(stage: &Stage) -> String {
    stage.name.clone().unwrap_or_else(|| stage.index.to_string())
}
