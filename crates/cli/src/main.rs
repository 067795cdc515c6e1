//! # Layout
//!
//! The `wharf` command line: `main.rs` parses arguments (clap) and sets up
//! logging; `commands/` holds one file per command, each a thin call into a
//! library crate plus output formatting (`output.rs`). No logic a library
//! user would need lives here.

mod build_progress;
mod commands;
mod output;
mod progress;

use clap::{CommandFactory, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "wharf", version, about = "Build, push, pull and run OCI containers")]
struct Cli {
    // The global flags come after each command's own in its --help (display_order).
    /// Image store and container data.
    #[arg(long, global = true, env = "WHARF_ROOT", default_value = "/var/lib/wharf", display_order = 900)]
    root: PathBuf,
    /// Runtime state (mounts, sockets, pids).
    #[arg(long, global = true, env = "WHARF_RUN_ROOT", default_value = "/run/wharf", display_order = 901)]
    run_root: PathBuf,
    /// error, warn, info, debug or trace (RUST_LOG overrides it).
    #[arg(long, global = true, default_value = "warn", display_order = 902)]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: boxing the large variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// List images.
    Images(commands::images::Args),
    /// Show an image's details as JSON.
    Inspect(commands::inspect::Args),
    /// Give an image another name.
    Tag(commands::tag::Args),
    /// Remove images.
    Rmi(commands::rmi::Args),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Create an image from a root filesystem tarball.
    Import(commands::import::Args),
    /// Save images to a tar archive (OCI layout, or docker-archive).
    Save(commands::save::Args),
    /// Load images from an OCI or docker-archive tar archive.
    Load(commands::load::Args),
    /// Build an image from a Dockerfile.
    Build(commands::build::Args),
    /// Manage the build cache.
    #[command(subcommand)]
    Builder(BuilderCommand),
    /// Run a command in a new container, in the foreground.
    Run(commands::run::Args),
    Create(commands::run::Args),
    Start(commands::ctr::StartArgs),
    Stop(commands::ctr::StopArgs),
    Restart(commands::ctr::StopArgs),
    Kill(commands::ctr::KillArgs),
    Rm(commands::ctr::RmArgs),
    Wait(commands::ctr::NamesArgs),
    Pause(commands::ctr::NamesArgs),
    Unpause(commands::ctr::NamesArgs),
    Rename(commands::ctr::RenameArgs),
    Port(commands::ctr::PortArgs),
    Attach(commands::ctr::AttachArgs),
    Exec(commands::ctr::ExecArgs),
    Logs(commands::logs::Args),
    Ps(commands::ps::Args),
    /// Live resource usage of containers.
    Stats(commands::stats::StatsArgs),
    /// The processes of a container.
    Top(commands::stats::TopArgs),
    /// Change a container's resource limits (live, and for its next start).
    Update(commands::stats::UpdateArgs),
    /// Copy files between a container and the host.
    Cp(commands::cp::Args),
    /// What happened to containers (follows new events until ^C).
    Events(commands::events::Args),
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Download an image from a registry.
    Pull(commands::pull::Args),
    /// Upload an image to a registry.
    Push(commands::push::Args),
    /// Log in to a registry (credentials go to the docker config or its credential store).
    Login(commands::login::LoginArgs),
    /// Log out from a registry.
    Logout(commands::login::LogoutArgs),
    /// Manage pods: containers that share a network, IPC and UTS namespace and a cgroup.
    #[command(subcommand)]
    Pod(commands::pod::Command),
    /// Manage networks.
    #[command(subcommand)]
    Network(commands::network::Command),
    /// Assemble, inspect and push manifest lists (image indexes).
    #[command(subcommand)]
    Manifest(commands::manifest::Command),
    /// Store maintenance.
    #[command(subcommand)]
    System(SystemCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion(commands::completion::Args),
    /// Write man pages, or the command reference in docs/cli.md.
    #[command(hide = true)]
    Man(commands::man::Args),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(commands::volume::Command),
    /// Serve the Kubernetes CRI (runtime.v1) on a unix socket, for the kubelet and crictl.
    Cri(commands::cri::Args),
    /// Run Kubernetes manifests locally (play, down, generate).
    #[command(subcommand)]
    Kube(commands::kube::Command),
}

#[derive(Subcommand, Debug)]
enum ImageCommand {
    /// Remove dangling images and every blob and layer no image uses.
    Prune(commands::prune::Args),
    /// List images.
    Ls(commands::images::Args),
    /// Remove images.
    Rm(commands::rmi::Args),
    /// Show an image's details as JSON.
    Inspect(commands::inspect::Args),
}

#[derive(Subcommand, Debug)]
enum ContainerCommand {
    #[command(alias = "list")]
    Ls(commands::ps::Args),
    Prune(commands::ctr::PruneArgs),
    Inspect(commands::inspect::Args),
    Logs(commands::logs::Args),
    Rm(commands::ctr::RmArgs),
    Start(commands::ctr::StartArgs),
    Stop(commands::ctr::StopArgs),
    Stats(commands::stats::StatsArgs),
    Top(commands::stats::TopArgs),
    Update(commands::stats::UpdateArgs),
    Cp(commands::cp::Args),
    /// Releases what an exited container held (the monitor's exit command).
    #[command(hide = true)]
    Cleanup(commands::ctr::CleanupArgs),
}

#[derive(Subcommand, Debug)]
enum BuilderCommand {
    /// Empty the build cache.
    Prune(commands::build::PruneArgs),
}

#[derive(Subcommand, Debug)]
enum SystemCommand {
    /// Verify every blob digest, every reference and every snapshot.
    Check(commands::check::Args),
    /// Remove what killed commands left, dangling images, unused data and the build cache.
    Prune(commands::system_prune::Args),
    /// Space used by images, containers, volumes and the build cache.
    Df(commands::df::Args),
    /// What happened to containers (follows new events until ^C).
    Events(commands::events::Args),
}

/// Global settings every command may need.
pub struct Globals {
    pub root: PathBuf,
    pub run_root: PathBuf,
}

impl Globals {
    pub fn store(&self) -> anyhow::Result<wharf_image::Store> {
        wharf_image::Store::open(&self.root)
            .map_err(|e| anyhow::anyhow!("open image store {}: {e}", self.root.display()))
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "wharf={level},wharf_image={level},wharf_registry={level},wharf_pod={level},wharf_runtime={level},wharf_builder={level},wharf_cri={level}"
        ))
    });
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Exec(_) | Command::Build(_)) {
        // Containers are forked from this process: re-exec from a read-only
        // view of the binary first, before any thread exists (CVE-2019-5736).
        if let Err(e) = wharf_runtime::sealexe::ensure_sealed_exe() {
            eprintln!("wharf: {e}");
            return ExitCode::FAILURE;
        }
    }
    init_logging(&cli.log_level);
    // Paths go into OCI specs and mount options, where relative ones would
    // be resolved against other directories: make them absolute once, here.
    let abs = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
    let g = Globals { root: abs(cli.root), run_root: abs(cli.run_root) };
    let res = match cli.command {
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => commands::images::run(&g, a),
        Command::Inspect(a) | Command::Image(ImageCommand::Inspect(a)) => commands::inspect::run(&g, a),
        Command::Tag(a) => commands::tag::run(&g, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => commands::rmi::run(&g, a),
        Command::Image(ImageCommand::Prune(a)) => commands::prune::run(&g, a),
        Command::Import(a) => commands::import::run(&g, a),
        Command::Save(a) => commands::save::run(&g, a),
        Command::Load(a) => commands::load::run(&g, a),
        Command::System(SystemCommand::Check(a)) => commands::check::run(&g, a),
        Command::System(SystemCommand::Prune(a)) => commands::system_prune::run(&g, a),
        Command::Pull(a) => commands::pull::run(&g, a),
        Command::Run(a) => commands::run::run(&g, a),
        Command::Create(a) => commands::ctr::create(&g, a),
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => commands::ctr::start(&g, a),
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => commands::ctr::stop(&g, a),
        Command::Restart(a) => commands::ctr::restart(&g, a),
        Command::Kill(a) => commands::ctr::kill(&g, a),
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => commands::ctr::rm(&g, a),
        Command::Wait(a) => commands::ctr::wait(&g, a),
        Command::Pause(a) => commands::ctr::pause(&g, a, true),
        Command::Unpause(a) => commands::ctr::pause(&g, a, false),
        Command::Rename(a) => commands::ctr::rename(&g, a),
        Command::Port(a) => commands::ctr::port(&g, a),
        Command::Attach(a) => commands::ctr::attach(&g, a),
        Command::Exec(a) => commands::ctr::exec(&g, a),
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => commands::logs::run(&g, a),
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => commands::ps::run(&g, a),
        Command::Container(ContainerCommand::Prune(a)) => commands::ctr::prune(&g, a),
        Command::Container(ContainerCommand::Inspect(a)) => commands::inspect::run(&g, a),
        Command::Container(ContainerCommand::Cleanup(a)) => commands::ctr::cleanup(&g, a),
        Command::Stats(a) | Command::Container(ContainerCommand::Stats(a)) => commands::stats::stats(&g, a),
        Command::Top(a) | Command::Container(ContainerCommand::Top(a)) => commands::stats::top(&g, a),
        Command::Update(a) | Command::Container(ContainerCommand::Update(a)) => commands::stats::update(&g, a),
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => commands::cp::run(&g, a),
        Command::Events(a) | Command::System(SystemCommand::Events(a)) => commands::events::run(&g, a),
        Command::System(SystemCommand::Df(a)) => commands::df::run(&g, a),
        Command::Network(c) => commands::network::run(&g, c),
        Command::Manifest(c) => commands::manifest::run(&g, c),
        Command::Pod(c) => commands::pod::run(&g, c),
        Command::Build(a) => commands::build::run(&g, a),
        Command::Builder(BuilderCommand::Prune(a)) => commands::build::prune(&g, a),
        Command::Push(a) => commands::push::run(&g, a),
        Command::Login(a) => commands::login::login(&g, a),
        Command::Logout(a) => commands::login::logout(&g, a),
        Command::Completion(a) => commands::completion::run(a, Cli::command()),
        Command::Man(a) => commands::man::run(a, Cli::command()),
        Command::Volume(c) => commands::volume::run(&g, c),
        Command::Cri(a) => commands::cri::run(&g, a),
        Command::Kube(c) => commands::kube::run(&g, c),
    };
    match res {
        Ok(code) => code,
        // The reader of our stdout went away (`wharf images | head -1`): the
        // command has unwound and cleaned up; end as docker does, quietly.
        Err(e) if output::is_stdout_closed(&e) => output::exit_stdout_closed(),
        Err(e) => {
            // Not eprintln!: a closed stderr must not turn an error into a panic.
            let _ = writeln!(std::io::stderr(), "wharf: {e:#}");
            ExitCode::FAILURE
        }
    }
}
