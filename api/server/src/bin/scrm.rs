//! `scrm`: read settings, start logging, dispatch. Nothing else lives here.

use std::process::ExitCode;

use clap::Parser;
use server::cli::{self, Cli, LogFormat};
use server::config::load_config_file;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // Before the runtime starts any thread: the file's settings go into the environment.
    let args: Vec<String> = std::env::args().collect();
    if let Err(error) = load_config_file(&args) {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
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
