//! Typed settings, read from flags and the environment (clap).

pub use projections::db::{redact, with_database, Backend, DEFAULT_SQLITE_PATH};

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct DatabaseSettings {
    /// postgres://user@host:port/db or sqlite://path. Without it the embedded SQLite file
    /// at .scrm/scrm.db is used.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,

    /// Connections in the PostgreSQL pool (SQLite always uses one writer).
    #[arg(
        long,
        env = "SCRM_DB_MAX_CONNECTIONS",
        default_value_t = 10,
        global = true
    )]
    pub max_connections: u32,
}
