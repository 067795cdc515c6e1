//! Prints the spec helper's default config.json (Docker's capabilities and
//! seccomp profile) for benchmarks and for comparing with other runtimes.
fn main() {
    let spec = wharf_runtime::spec::default_spec();
    println!("{}", serde_json::to_string_pretty(&spec).expect("spec serializes"));
}
