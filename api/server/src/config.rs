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

/// How tokens are signed and checked.
#[derive(Debug, Clone, Args)]
pub struct AuthSettings {
    /// HS256 signing secret (at least 32 bytes). Without it, a random secret is created
    /// once in --jwt-secret-file, so `scrm token` and `scrm serve` on one machine agree.
    #[arg(long, env = "SCRM_JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<String>,
    #[arg(
        long,
        env = "SCRM_JWT_SECRET_FILE",
        default_value = ".scrm/jwt-secret",
        global = true
    )]
    pub jwt_secret_file: std::path::PathBuf,
    #[arg(long, env = "SCRM_JWT_ISSUER", default_value = "scrm", global = true)]
    pub jwt_issuer: String,
    #[arg(
        long,
        env = "SCRM_JWT_AUDIENCE",
        default_value = "scrm-api",
        global = true
    )]
    pub jwt_audience: String,
}

impl AuthSettings {
    pub fn jwt(&self) -> Result<engine::auth::JwtSettings, engine::auth::SecretError> {
        let secret =
            engine::auth::load_or_create_secret(self.jwt_secret.as_deref(), &self.jwt_secret_file)?;
        Ok(engine::auth::JwtSettings::new(
            &secret,
            &self.jwt_issuer,
            &self.jwt_audience,
        ))
    }
}

/// Reads `NAME=value` lines from an optional config file (`--config FILE` or
/// `SCRM_CONFIG`) into the environment, under whatever is already set there: flags beat
/// the environment, which beats the file. Blank lines and `#` comments are skipped.
pub fn load_config_file(args: &[String]) -> Result<(), String> {
    let from_flag = args
        .iter()
        .position(|a| a == "--config")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("--config=").map(str::to_string))
        });
    let Some(path) = from_flag.or_else(|| std::env::var("SCRM_CONFIG").ok()) else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("config file {path}: {e}"))?;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| format!("config file {path}:{}: expected NAME=value", n + 1))?;
        let (name, value) = (name.trim(), value.trim().trim_matches('"'));
        if std::env::var_os(name).is_none() {
            // Set before any thread starts (main calls this first).
            std::env::set_var(name, value);
        }
    }
    Ok(())
}
