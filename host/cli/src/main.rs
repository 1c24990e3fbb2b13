//! `gatehouse`: run sandboxed analytics plugins on a gateway.

// Outside tests, nothing here unwraps: a panic on data from a plugin, a
// file or the network would take down the gateway. Clippy holds every
// change to that (`cargo clippy`).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod cmd;
mod fleet;
mod gateway;
mod locate;
mod mqtt;
mod output;
mod pinning;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Run sandboxed int8 ML plugins on an IoT gateway"
)]
struct Cli {
    /// Where compiled plugins are cached (default: $GATEHOUSE_CACHE_DIR, else ~/.cache/gatehouse).
    #[arg(long, global = true)]
    cache_dir: Option<PathBuf>,
    /// Compile every plugin afresh instead of using the cache.
    #[arg(long, global = true)]
    no_cache: bool,
    /// Threads one inference may split its big layers over (the caller's
    /// and a pool the host owns, shared by every plugin); the same bytes
    /// come out at any count. Default 1, or the gateway config's `threads`.
    #[arg(long, global = true, value_parser = clap::value_parser!(u32).range(1..=gatehouse_runtime::MAX_THREADS as i64))]
    threads: Option<u32>,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a plugin on input files; prints one JSON object per inference.
    Run(cmd::run::Args),
    /// Run a TFLite or ONNX model inside the sandboxed `tflite` plugin on raw tensors.
    Infer(cmd::infer::Args),
    /// Run a wasi:cli/command component that imports wasi:nn, as wasmtime would.
    Exec(cmd::exec::Args),
    /// Latency and throughput of a TFLite or ONNX model in the sandboxed tflite plugin.
    Bench(cmd::bench::Args),
    /// The gateway daemon: deploys the plugins in a folder and hot-swaps them as it changes.
    Serve(cmd::serve::Args),
    /// Qualify hot swap: continuous requests while swapping between two builds.
    Stress(cmd::stress::Args),
    /// Show what a plugin is, what it accepts and how it loads.
    Describe(cmd::describe::Args),
    /// A new plugin project in Rust or Python that builds and runs as it is.
    New(cmd::new::Args),
    /// What a plugin targets and imports, and which imports a gateway would deny or grant.
    Check(cmd::check::Args),
    /// List the kernel sets this build has and which this CPU runs.
    Kernels,
    /// Vendor signing keys.
    #[command(subcommand)]
    Key(cmd::key::Command),
    /// Sign a component and its plugin.toml into a bundle (.gpk).
    Pack(cmd::pack::PackArgs),
    /// Check a bundle against a trust folder; exits 0 only if it is valid and trusted.
    Verify(cmd::pack::VerifyArgs),
    /// Push a bundle to an OCI registry.
    Push(cmd::remote::PushArgs),
    /// Deploy a bundle (file or oci:// reference) to a gateway's admin API.
    Deploy(cmd::remote::DeployArgs),
    /// List, roll back or remove plugins on a gateway.
    #[command(subcommand)]
    Plugins(cmd::remote::PluginsCommand),
    /// Steer a fleet of gateways through desired state on their MQTT broker.
    #[command(subcommand)]
    Fleet(cmd::fleet::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon reports deploys at info level; one-shot commands stay quiet.
    let quiet = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    let filter = match cli.verbose {
        0 => quiet,
        1 => "info",
        _ => "debug",
    };
    // The embedded broker logs every connection, and an error for each
    // client that merely closes its socket; the gateway's own MQTT client
    // reports what matters. RUST_LOG=rumqttd=info brings it back.
    let filter = format!("{filter},rumqttd=off");
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&filter)),
        )
        .init();
    let ctx = cmd::Context {
        cache_dir: cli.cache_dir,
        no_cache: cli.no_cache,
        threads: cli.threads.map(|t| t as usize),
    };
    let result = match cli.command {
        // The guest's own exit code is the command's.
        Command::Exec(a) => {
            return match cmd::exec::run(&ctx, a) {
                Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
                Err(e) => {
                    eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
                    ExitCode::FAILURE
                }
            };
        }
        Command::Run(a) => cmd::run::run(&ctx, a),
        Command::Infer(a) => cmd::infer::run(&ctx, a),
        Command::Describe(a) => cmd::describe::run(&ctx, a),
        Command::Bench(a) => cmd::bench::run(&ctx, a),
        Command::Stress(a) => cmd::stress::run(&ctx, a),
        Command::Serve(a) => cmd::serve::run(&ctx, a),
        Command::New(a) => cmd::new::run(a),
        Command::Check(a) => cmd::check::run(&ctx, a),
        Command::Kernels => cmd::kernels(),
        Command::Key(c) => cmd::key::run(c),
        Command::Pack(a) => cmd::pack::pack(a),
        Command::Verify(a) => cmd::pack::verify(a),
        Command::Push(a) => cmd::remote::push(a),
        Command::Deploy(a) => cmd::remote::deploy(a),
        Command::Plugins(c) => cmd::remote::plugins(c),
        Command::Fleet(c) => cmd::fleet::run(c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: operators grep logs for it.
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
