//! Docker's variable expansion, per instruction: which words are expanded,
//! and the checks that could only run once values were known.

use super::run::parse_mount;
use super::{copy, values, ArgDecl, Copy, From, Instruction, KeyValue, Step};
use crate::error::{Error, Problem};
use crate::parser::Heredoc;
use crate::shell::{Env, Lexer};

impl Step {
    /// The step with variables expanded in the words Docker expands, `env`
    /// holding the ARG and ENV values in effect (ENV winning over ARG, as in
    /// Docker). FROM lines are expanded with the global ARGs only.
    pub fn expand(&self, lexer: &Lexer, env: &dyn Env) -> Result<Step, Error> {
        let instruction = self.instruction.expand(lexer, env).map_err(|p| Error::at(self.lines, p))?;
        Ok(Step { lines: self.lines, original: self.original.clone(), instruction })
    }
}

struct Expander<'a> {
    lexer: &'a Lexer,
    env: &'a dyn Env,
}

fn problem(e: Error) -> Problem {
    match e {
        Error::Expand { word, reason } => Problem::Expand { word, reason },
        other => Problem::Syntax(other.to_string()),
    }
}

impl Expander<'_> {
    fn word(&self, w: &str) -> Result<String, Problem> {
        self.lexer.expand_word(w, self.env).map_err(problem)
    }

    fn opt(&self, w: &Option<String>) -> Result<Option<String>, Problem> {
        w.as_deref().map(|w| self.word(w)).transpose()
    }

    fn all(&self, words: &[String]) -> Result<Vec<String>, Problem> {
        words.iter().map(|w| self.word(w)).collect()
    }

    fn pairs(&self, pairs: &[KeyValue]) -> Result<Vec<KeyValue>, Problem> {
        pairs.iter().map(|kv| Ok(KeyValue { key: self.word(&kv.key)?, value: self.word(&kv.value)? })).collect()
    }

    fn copy(&self, c: &Copy) -> Result<Copy, Problem> {
        let heredocs = c
            .heredocs
            .iter()
            .map(|h| {
                let content = match h.expand {
                    true => self.lexer.expand_heredoc(&h.content, self.env).map_err(problem)?,
                    false => h.content.clone(),
                };
                Ok(Heredoc { content, ..h.clone() })
            })
            .collect::<Result<_, Problem>>()?;
        let out = Copy {
            sources: self.all(&c.sources)?,
            heredocs,
            dest: self.word(&c.dest)?,
            from: self.opt(&c.from)?,
            chown: self.opt(&c.chown)?,
            chmod: self.opt(&c.chmod)?,
            checksum: self.opt(&c.checksum)?,
            ..c.clone()
        };
        copy::check(&out)?;
        Ok(out)
    }
}

impl Instruction {
    /// Whether Docker expands variables in this instruction's words (RUN
    /// only in its `--mount` options; the shell expands the command itself).
    pub fn expands(&self) -> bool {
        !matches!(
            self,
            Instruction::Cmd(_)
                | Instruction::Entrypoint(_)
                | Instruction::Shell(_)
                | Instruction::Healthcheck(_)
                | Instruction::Onbuild(_)
                | Instruction::Maintainer(_)
        )
    }

    pub(crate) fn expand(&self, lexer: &Lexer, env: &dyn Env) -> Result<Instruction, Problem> {
        let x = Expander { lexer, env };
        Ok(match self {
            Instruction::From(f) => Instruction::From(From {
                image: x.word(&f.image)?,
                platform: x.opt(&f.platform)?,
                name: f.name.clone(),
            }),
            Instruction::Arg(args) => Instruction::Arg(
                args.iter()
                    .map(|a| Ok(ArgDecl { name: a.name.clone(), default: x.opt(&a.default)? }))
                    .collect::<Result<_, Problem>>()?,
            ),
            Instruction::Env(p) => Instruction::Env(x.pairs(p)?),
            Instruction::Label(p) => Instruction::Label(x.pairs(p)?),
            Instruction::Workdir(w) => Instruction::Workdir(x.word(w)?),
            Instruction::User(u) => Instruction::User(x.word(u)?),
            Instruction::StopSignal(s) => Instruction::StopSignal(values::signal(x.word(s)?)?),
            Instruction::Run(r) => {
                let f = |w: &str| x.word(w);
                let mounts = r.mounts.iter().map(|m| parse_mount(&m.raw, Some(&f))).collect::<Result<_, _>>()?;
                Instruction::Run(super::Run { mounts, ..r.clone() })
            }
            Instruction::Copy(c) => Instruction::Copy(x.copy(c)?),
            Instruction::Add(c) => Instruction::Add(x.copy(c)?),
            Instruction::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    // EXPOSE splits words, so `EXPOSE $PORTS` may give several.
                    for w in lexer.expand_words(p, env).map_err(problem)? {
                        out.push(values::port(w)?);
                    }
                }
                Instruction::Expose(out)
            }
            Instruction::Volume(v) => {
                Instruction::Volume(x.all(v)?.into_iter().map(values::volume).collect::<Result<_, _>>()?)
            }
            other => other.clone(),
        })
    }
}
