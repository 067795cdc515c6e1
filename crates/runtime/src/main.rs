fn main() {
    eprintln!("wharf-runtime: not built yet");
    std::process::exit(1);
}
