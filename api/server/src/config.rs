//! Typed settings, read from flags and the environment (clap).

pub use projections::db::{redact, with_database, Backend, DEFAULT_SQLITE_PATH};

use std::collections::{BTreeMap, BTreeSet};

use clap::Args;
use engine::db::Database;

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

    /// The secret customers' data keys are wrapped with (at least 32 bytes; each tenant's
    /// key is derived from it). Without it, a random one is created once in
    /// --pii-key-file. Lose it and every customer's personal data is lost with it.
    #[arg(long, env = "SCRM_PII_KEY", hide_env_values = true, global = true)]
    pub pii_key: Option<String>,
    #[arg(
        long,
        env = "SCRM_PII_KEY_FILE",
        default_value = ".scrm/pii-key",
        global = true
    )]
    pub pii_key_file: std::path::PathBuf,
}

impl DatabaseSettings {
    /// Connects to the configured backend (the embedded SQLite file without a URL) and
    /// brings its schema up to date.
    pub async fn open_migrated(&self) -> anyhow::Result<(Database, Backend)> {
        let (db, backend) = self.open().await?;
        db.migrate().await?;
        Ok((db, backend))
    }

    /// Connects, with the key for personal data in place (every read of the log needs it).
    pub async fn open(&self) -> anyhow::Result<(Database, Backend)> {
        self.install_pii_key()?;
        let backend = Backend::from_url(self.database_url.as_deref())?;
        let db = Database::connect_to(&backend, self.max_connections).await?;
        Ok((db, backend))
    }

    pub fn install_pii_key(&self) -> anyhow::Result<()> {
        use anyhow::Context;
        let secret =
            engine::auth::load_or_create_secret(self.pii_key.as_deref(), &self.pii_key_file)
                .context("SCRM_PII_KEY")?;
        projections::pii::install(&secret).context("SCRM_PII_KEY")?;
        Ok(())
    }
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

/// The settings of a config file (`--config FILE` or `SCRM_CONFIG`): `NAME=value`
/// lines, blank lines and `#` comments skipped. No file named: none.
pub fn read_config_file(args: &[String]) -> Result<BTreeMap<String, String>, String> {
    let from_flag = args
        .iter()
        .position(|a| a == "--config")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("--config=").map(str::to_string))
        });
    let Some(path) = from_flag.or_else(|| std::env::var("SCRM_CONFIG").ok()) else {
        return Ok(BTreeMap::new());
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("config file {path}: {e}"))?;
    parse_config(&text).map_err(|e| format!("config file {path}:{e}"))
}

fn parse_config(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut settings = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| format!("{}: expected NAME=value", n + 1))?;
        let (name, value) = (name.trim(), value.trim().trim_matches('"'));
        settings.insert(name.to_string(), value.to_string());
    }
    Ok(settings)
}

/// Makes a config file's values the defaults of the arguments whose environment
/// variable they name, so that flags beat the environment, which beats the file, without
/// writing the file into the process's environment (`set_var` races every thread that
/// reads it and is `unsafe` from edition 2024). A name no argument reads is refused, so a
/// misspelt setting is not silently ignored; `RUST_LOG` is left for the log filter.
pub fn with_file_defaults(
    command: clap::Command,
    file: &BTreeMap<String, String>,
) -> Result<clap::Command, String> {
    let mut known = BTreeSet::from(["RUST_LOG".to_string()]);
    let command = file_defaults(command, file, &mut known);
    let unknown: Vec<&str> = file
        .keys()
        .filter(|name| !known.contains(*name))
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        Ok(command)
    } else {
        Err(format!(
            "config file: no setting is named {}",
            unknown.join(", ")
        ))
    }
}

fn file_defaults(
    command: clap::Command,
    file: &BTreeMap<String, String>,
    known: &mut BTreeSet<String>,
) -> clap::Command {
    let command = command.mut_args(|arg| {
        let Some(env) = arg.get_env().and_then(|e| e.to_str()).map(str::to_string) else {
            return arg;
        };
        let value = file.get(&env).cloned();
        known.insert(env.clone());
        match value {
            Some(value) if std::env::var_os(&env).is_none() => arg.default_value(value),
            _ => arg,
        }
    });
    command.mut_subcommands(|sub| file_defaults(sub, file, known))
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(file: &str, args: &[&str]) -> Result<Cli, String> {
        let file = parse_config(file)?;
        let command = with_file_defaults(Cli::command(), &file)?;
        let matches = command
            .try_get_matches_from(args)
            .map_err(|e| e.to_string())?;
        Cli::from_arg_matches(&matches).map_err(|e| e.to_string())
    }

    fn listen(cli: &Cli) -> String {
        match &cli.command {
            Command::Serve(args) => args.listen.to_string(),
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn a_file_setting_is_the_default_of_the_argument_it_names() {
        let cli = parse(
            "# comment\n\nSCRM_LISTEN = \"127.0.0.1:9911\"\n",
            &["scrm", "serve"],
        )
        .unwrap();
        assert_eq!(listen(&cli), "127.0.0.1:9911");
    }

    #[test]
    fn a_flag_beats_the_file() {
        let cli = parse(
            "SCRM_LISTEN=127.0.0.1:9911",
            &["scrm", "serve", "--listen", "127.0.0.1:9922"],
        )
        .unwrap();
        assert_eq!(listen(&cli), "127.0.0.1:9922");
    }

    #[test]
    fn a_global_setting_reaches_every_subcommand() {
        let cli = parse("DATABASE_URL=sqlite://elsewhere.db", &["scrm", "migrate"]).unwrap();
        assert_eq!(
            cli.database.database_url.as_deref(),
            Some("sqlite://elsewhere.db")
        );
    }

    #[test]
    fn a_misspelt_setting_is_refused_by_name() {
        let error = parse("SCRM_LISTNE=127.0.0.1:1", &["scrm", "serve"]).unwrap_err();
        assert!(error.contains("SCRM_LISTNE"), "{error}");
        let error = parse("no equals sign", &["scrm", "serve"]).unwrap_err();
        assert!(error.contains("expected NAME=value"), "{error}");
    }
}
