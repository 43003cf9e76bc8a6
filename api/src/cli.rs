//! The `scrm` command line: subcommands, settings and their dispatch.

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{Backend, DatabaseSettings};
use crate::db::Database;

#[derive(Debug, Parser)]
#[command(
    name = "scrm",
    version,
    about = "Event-sourced SCRM engine for WeCom retail chains"
)]
pub struct Cli {
    #[command(flatten)]
    pub database: DatabaseSettings,

    /// Log format on stderr.
    #[arg(long, env = "SCRM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or upgrade the database schema (PostgreSQL or the embedded SQLite file).
    Migrate,
}

/// Runs the parsed command line; errors are reported by `main` as one line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate => {
            let backend = Backend::from_url(cli.database.database_url.as_deref())?;
            let db = Database::connect_to(&backend, cli.database.max_connections).await?;
            db.migrate().await?;
            tracing::info!(target = %backend.describe(), "schema is up to date");
            db.close().await;
            Ok(())
        }
    }
}
