//! `wharf-runtime`: runc's command line over the `wharf_runtime` library.

mod cli;

fn main() {
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
