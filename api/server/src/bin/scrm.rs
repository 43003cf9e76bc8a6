//! `scrm`: read settings, start logging, dispatch. Nothing else lives here.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use server::cli::{self, Cli, LogFormat};
use server::config::{read_config_file, with_file_defaults};
use tracing_subscriber::EnvFilter;

/// See the dependency's note in Cargo.toml: malloc and free were 40 % of a rebuild.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // The config file's settings become the arguments' defaults: under flags and the
    // environment, and never written into the environment.
    let args: Vec<String> = std::env::args().collect();
    let file = match read_config_file(&args) {
        Ok(file) => file,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let command = match with_file_defaults(Cli::command(), &file) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let cli = match Cli::from_arg_matches(&command.get_matches_from(&args)) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| match file.get("RUST_LOG") {
            Some(directives) => EnvFilter::try_new(directives),
            None => Ok(EnvFilter::new("info,sqlx=warn")),
        })
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
