//! `wharf-runtime`: runc's command line over the `wharf_runtime` library.

mod cli;

fn main() {
    // Until cli::main knows the verb: a closed stdout (`wharf-runtime list |
    // head -1`) ends the process by SIGPIPE, quietly, as it ends runc —
    // println! would panic on the EPIPE Rust's ignored SIGPIPE gives.
    sigpipe(libc::SIG_DFL);
    let code = match cli::main() {
        Ok(code) => code,
        Err(e) => {
            wharf_runtime::log::error(&format!("{e}"));
            eprintln!("wharf-runtime: {e}");
            1
        }
    };
    std::process::exit(code);
}

/// Sets SIGPIPE's disposition (SIG_DFL or SIG_IGN).
pub(crate) fn sigpipe(disposition: libc::sighandler_t) {
    // SAFETY: signal(2) with a constant disposition, no handler function.
    unsafe { libc::signal(libc::SIGPIPE, disposition) };
}
