//! A stable, human-readable dump of a parsed Dockerfile for golden files.
//! Strings are printed with `{:?}` so whitespace and quotes stay visible.

use std::fmt::Write;

use wharf_builder::{Command, Copy, Dockerfile, Healthcheck, Heredoc, Instruction, KeyValue, Mount, Run, Step};

pub fn dump(df: &Dockerfile, expanded: &dyn Fn(&Step) -> Option<Step>) -> String {
    let mut out = String::new();
    if df.escape != '\\' {
        writeln!(out, "escape {}", df.escape).unwrap();
    }
    for w in &df.warnings {
        writeln!(out, "warning {}: {w}", w.lines).unwrap();
    }
    for step in &df.global_args {
        writeln!(out, "global {}: {}", step.lines, instruction(&step.instruction)).unwrap();
        expansion(&mut out, step, expanded, "  ");
    }
    for stage in &df.stages {
        let from =
            Step { lines: stage.lines, original: String::new(), instruction: Instruction::From(stage.from.clone()) };
        writeln!(out, "stage {} ({}): {}", stage.index, stage.lines, instruction(&from.instruction)).unwrap();
        expansion(&mut out, &from, expanded, "  ");
        for step in &stage.steps {
            writeln!(out, "  {}: {}", step.lines, instruction(&step.instruction)).unwrap();
            details(&mut out, &step.instruction, "    ");
            expansion(&mut out, step, expanded, "    ");
        }
    }
    out
}

/// The expanded form, only where expansion changed something.
fn expansion(out: &mut String, step: &Step, expanded: &dyn Fn(&Step) -> Option<Step>, indent: &str) {
    let Some(x) = expanded(step) else { return };
    if x.instruction == step.instruction {
        return;
    }
    writeln!(out, "{indent}=> {}", instruction(&x.instruction)).unwrap();
    details(out, &x.instruction, &format!("{indent}   "));
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

fn pairs(kv: &[KeyValue]) -> String {
    kv.iter().map(|kv| format!("{:?}={:?}", kv.key, kv.value)).collect::<Vec<_>>().join(" ")
}

fn command(c: &Command) -> String {
    match c {
        Command::Shell(s) => format!("shell {s:?}"),
        Command::Exec(l) => format!("exec {}", list(l)),
    }
}

fn opt<T: std::fmt::Debug>(name: &str, v: &Option<T>) -> String {
    v.as_ref().map(|v| format!(" {name}={v:?}")).unwrap_or_default()
}

fn instruction(i: &Instruction) -> String {
    let kw = i.keyword();
    let body = match i {
        Instruction::From(f) => format!("{:?}{}{}", f.image, opt("platform", &f.platform), opt("as", &f.name)),
        Instruction::Arg(args) => args
            .iter()
            .map(|a| match &a.default {
                Some(d) => format!("{:?}={d:?}", a.name),
                None => format!("{:?}", a.name),
            })
            .collect::<Vec<_>>()
            .join(" "),
        Instruction::Env(kv) | Instruction::Label(kv) => pairs(kv),
        Instruction::Workdir(s) | Instruction::User(s) | Instruction::StopSignal(s) | Instruction::Maintainer(s) => {
            format!("{s:?}")
        }
        Instruction::Run(r) => run(r),
        Instruction::Copy(c) | Instruction::Add(c) => copy(c),
        Instruction::Cmd(c) | Instruction::Entrypoint(c) => command(c),
        Instruction::Expose(l) | Instruction::Volume(l) | Instruction::Shell(l) => list(l),
        Instruction::Healthcheck(Healthcheck::Disable) => "NONE".into(),
        Instruction::Healthcheck(Healthcheck::Check(h)) => format!(
            "CMD {}{}{}{}{}{}",
            command(&h.test),
            opt("interval", &h.interval),
            opt("timeout", &h.timeout),
            opt("start_period", &h.start_period),
            opt("start_interval", &h.start_interval),
            opt("retries", &h.retries)
        ),
        Instruction::Onbuild(o) => format!("trigger={:?} -> {}", o.trigger, instruction(&o.instruction)),
    };
    format!("{kw} {body}")
}

fn run(r: &Run) -> String {
    format!("{} network={:?}", command(&r.command), r.network)
}

fn copy(c: &Copy) -> String {
    let mut s = format!("{} -> {:?}", list(&c.sources), c.dest);
    s += &opt("from", &c.from);
    s += &opt("chown", &c.chown);
    if let Some(m) = c.mode() {
        write!(s, " chmod={m:04o}").unwrap();
    } else {
        s += &opt("chmod", &c.chmod);
    }
    s += &opt("checksum", &c.checksum);
    for (flag, on) in
        [("link", c.link), ("parents", c.parents), ("keep_git_dir", c.keep_git_dir), ("json", c.exec_form)]
    {
        if on {
            write!(s, " {flag}").unwrap();
        }
    }
    s
}

fn details(out: &mut String, i: &Instruction, indent: &str) {
    match i {
        Instruction::Run(r) => {
            r.mounts.iter().for_each(|m| writeln!(out, "{indent}{}", mount(m)).unwrap());
            r.heredocs.iter().for_each(|h| heredoc(out, h, indent));
        }
        Instruction::Copy(c) | Instruction::Add(c) => c.heredocs.iter().for_each(|h| heredoc(out, h, indent)),
        Instruction::Onbuild(o) => details(out, &o.instruction, indent),
        _ => {}
    }
}

fn mount(m: &Mount) -> String {
    let mut s =
        format!("mount {:?}{}{}{}", m.kind, opt("target", &m.target), opt("source", &m.source), opt("from", &m.from));
    s += &opt("id", &m.id);
    write!(s, " readonly={} sharing={:?}", m.readonly, m.sharing).unwrap();
    if m.required {
        s += " required";
    }
    if let Some(mode) = m.mode {
        write!(s, " mode={mode:04o}").unwrap();
    }
    s + &opt("uid", &m.uid) + &opt("gid", &m.gid) + &opt("size", &m.size) + &opt("env", &m.env)
}

fn heredoc(out: &mut String, h: &Heredoc, indent: &str) {
    let fd = h.fd.map(|f| format!(" fd={f}")).unwrap_or_default();
    writeln!(out, "{indent}heredoc {:?} expand={} chomp={}{fd}", h.name, h.expand, h.chomp).unwrap();
    for line in h.body().lines() {
        writeln!(out, "{indent}  {line:?}").unwrap();
    }
}
