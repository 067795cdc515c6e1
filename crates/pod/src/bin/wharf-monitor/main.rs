//! `wharf-monitor`: one per container, for as long as the container lives.
//!
//! Started by `wharf run`/`start` (never by users), it daemonizes, becomes
//! a subreaper, runs `wharf-runtime create` with its pipes (or a console
//! socket for `-t`) as the container's stdio, and then is the container's
//! parent: it writes the output to the CRI-format log, relays it to clients
//! of the attach socket (and their input to the container), starts the
//! container when asked, applies the restart policy, and records the exit
//! atomically in `<container dir>/monitor.json`. When the container is gone
//! for good it releases the locks it was handed (the container dir's owner
//! lock and the network and volume locks) and execs the exit command
//! (`wharf container cleanup ID`) unless a foreground client cleaned up.
//! With a health check it runs the probes (`health`) and writes `health.json`.
//!
//! Only std and libc, so that it stays small: see `sys::trim_resident`.

mod args;
mod event;
mod health;
mod logfile;
mod oom;
mod probe;
mod sys;

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};

fn main() {
    let args = match args::Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("wharf-monitor: {e}");
            std::process::exit(2);
        }
    };
    // The sync pipe: "ok PID\n" once the container exists, or the error.
    let mut sync = args.sync_fd.map(|fd| std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }));
    for fd in args.sync_fd.iter().chain(&args.keep_fds) {
        let _ = sys::set_cloexec(*fd);
    }
    let result = sys::daemonize().and_then(|()| sys::become_subreaper()).map_err(|e| format!("daemonize: {e}"));
    let monitor = result.and_then(|()| event::Monitor::create(args));
    match monitor {
        Ok(mut m) => {
            if let Some(s) = &mut sync {
                let _ = writeln!(s, "ok {}", m.pid());
            }
            drop(sync);
            sys::trim_resident();
            m.run();
        }
        Err(e) => {
            if let Some(s) = &mut sync {
                let _ = writeln!(s, "err {}", e.replace('\n', " "));
            }
            std::process::exit(1);
        }
    }
}
