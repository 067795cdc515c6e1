//! Signals sent to a foreground `wharf run` are forwarded to the container
//! (Docker's `--sig-proxy`); with `-t` the terminal delivers them instead.

use std::path::Path;

/// Forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2 to the container's
/// init from a thread; the calling thread (and threads it starts later) no
/// longer take them, so `wharf run` outlives a ^C long enough to clean up.
pub(crate) fn forward_signals(state: &Path, id: &str) {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGUSR2] {
        set.add(s);
    }
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
    let (state, id) = (state.to_path_buf(), id.to_string());
    std::thread::spawn(move || {
        while let Ok(sig) = set.wait() {
            if let Ok(c) = wharf_runtime::Container::load(&state, &id) {
                let _ = c.kill(sig, false);
            }
        }
    });
}
