//! `wharf build` progress, as BuildKit shows it.
//!
//! plain: one line per event, numbered per step (`#3 [app 2/5] RUN make`,
//! `#3 0.412 <output>`, `#3 CACHED`, `#3 DONE 1.2s`).
//! tty: a live view — a spinner and timer per running step with its last
//! output line beneath, finished steps scrolled above as `=> [app 2/5] … 1.2s`;
//! when the build fails, the failing step's last output lines are printed.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wharf_builder::build::progress::{Event, Progress};

/// Output lines kept per step, for the failure report.
const TAIL: usize = 20;

struct StepView {
    label: String,
    start: Instant,
    bar: Option<ProgressBar>,
    log: Option<ProgressBar>,
    tail: VecDeque<String>,
    finished: bool,
}

#[derive(Default)]
struct State {
    steps: HashMap<usize, StepView>,
    order: Vec<usize>,
}

/// Renders build events on stderr.
#[derive(Clone)]
pub struct BuildView {
    multi: Option<MultiProgress>,
    state: Arc<Mutex<State>>,
    started: Instant,
}

/// `line` cut to the terminal's width (BuildKit cuts its lines too).
fn fit(line: String) -> String {
    let width = rustix::termios::tcgetwinsize(std::io::stderr()).map(|w| w.ws_col as usize).unwrap_or(0);
    if width < 10 || line.chars().count() <= width {
        return line;
    }
    line.chars().take(width - 1).collect()
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

impl BuildView {
    /// `tty`: the live view; otherwise plain lines.
    pub fn new(tty: bool) -> Self {
        let multi = tty.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
        BuildView { multi, state: Arc::default(), started: Instant::now() }
    }

    /// The callback to hand the builder.
    pub fn progress(&self) -> Progress {
        let me = self.clone();
        Progress::new(move |e| me.on(e))
    }

    fn on(&self, e: &Event) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match *e {
            Event::Note(text) => self.say(text),
            Event::Step { id, stage, index, total, text } => {
                let label = match stage {
                    "" => format!("[{index}/{total}] {text}"),
                    s => format!("[{s} {index}/{total}] {text}"),
                };
                let bar = self.multi.as_ref().map(|m| {
                    let b = m.add(ProgressBar::new_spinner());
                    b.set_style(style("{spinner:.cyan} {wide_msg} {elapsed:>4}"));
                    b.set_message(label.clone());
                    b.enable_steady_tick(Duration::from_millis(100));
                    b
                });
                if self.multi.is_none() {
                    eprintln!("#{id} {label}");
                }
                st.order.push(id);
                st.steps.insert(
                    id,
                    StepView { label, start: Instant::now(), bar, log: None, tail: VecDeque::new(), finished: false },
                );
            }
            Event::Output { id, line } => {
                let Some(s) = st.steps.get_mut(&id) else { return };
                if s.tail.len() == TAIL {
                    s.tail.pop_front();
                }
                s.tail.push_back(line.to_string());
                match (&self.multi, &s.bar) {
                    (Some(m), Some(bar)) => {
                        let log = s.log.get_or_insert_with(|| {
                            let l = m.insert_after(bar, ProgressBar::new_spinner());
                            l.set_style(style("  {wide_msg:.dim}"));
                            l
                        });
                        log.set_message(line.to_string());
                    }
                    _ => eprintln!("#{id} {:.3} {line}", s.start.elapsed().as_secs_f64()),
                }
            }
            Event::Cached { id } => Self::end(&mut st, id, |s| {
                self.finished_line(s, &format!("CACHED {}", s.label), &format!("#{id} CACHED"))
            }),
            Event::Done { id, secs } => Self::end(&mut st, id, |s| {
                self.finished_line(s, &format!("{} {secs:.1}s", s.label), &format!("#{id} DONE {secs:.1}s"))
            }),
        }
    }

    fn end(st: &mut State, id: usize, show: impl FnOnce(&StepView)) {
        if let Some(s) = st.steps.get_mut(&id) {
            s.finished = true;
            show(s);
        }
    }

    fn finished_line(&self, s: &StepView, tty: &str, plain: &str) {
        if let Some(log) = &s.log {
            log.finish_and_clear();
        }
        match (&self.multi, &s.bar) {
            // Finished steps leave the live area and scroll above it, so the
            // area stays as small as what is running.
            (Some(m), Some(bar)) => {
                bar.finish_and_clear();
                m.remove(bar);
                let _ = m.println(fit(format!("=> {tty}")));
            }
            _ => eprintln!("{plain}"),
        }
    }

    fn say(&self, text: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    /// Ends the view: on failure, the unfinished steps are marked and their
    /// last output lines printed.
    pub fn finish(&self, ok: bool) {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for id in &st.order {
            let s = &st.steps[id];
            if s.finished {
                continue;
            }
            self.finished_line(s, &format!("ERROR {}", s.label), &format!("#{id} ERROR"));
            if self.multi.is_some() && !s.tail.is_empty() {
                eprintln!("------\n > {}:", s.label);
                for l in &s.tail {
                    eprintln!("{l}");
                }
                eprintln!("------");
            }
        }
        if self.multi.is_some() {
            let done = st.steps.values().filter(|s| s.finished).count();
            let how = if ok { "FINISHED" } else { "FAILED" };
            eprintln!("[+] Building {:.1}s ({done}/{}) {how}", self.started.elapsed().as_secs_f64(), st.steps.len());
        }
    }
}
