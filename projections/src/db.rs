//! Connecting to the configured backend (PostgreSQL or the embedded SQLite file) and
//! migrating its schema. One migrations folder per backend; both are embedded.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgConnection};
use sqlx::{PgPool, SqlitePool};

pub static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");
pub static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");

/// Where the embedded SQLite file lives when no `DATABASE_URL` is given.
pub const DEFAULT_SQLITE_PATH: &str = ".scrm/scrm.db";

/// The backend a URL selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Postgres { url: String },
    Sqlite { path: PathBuf },
}

impl Backend {
    /// Picks the backend from a `DATABASE_URL`, or the embedded file when there is none.
    pub fn from_url(url: Option<&str>) -> Result<Self, crate::db::DbError> {
        let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(Self::Sqlite {
                path: PathBuf::from(DEFAULT_SQLITE_PATH),
            });
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres {
                url: url.to_string(),
            });
        }
        if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or(url.strip_prefix("sqlite:"))
        {
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(crate::db::DbError::BadUrl(
                    "sqlite:// needs a file path, e.g. sqlite://data/scrm.db".into(),
                ));
            }
            return Ok(Self::Sqlite {
                path: PathBuf::from(path),
            });
        }
        Err(crate::db::DbError::BadUrl(format!(
            "DATABASE_URL must start with postgres:// or sqlite://, got {:?}",
            redact(url)
        )))
    }

    /// A description safe to log: no password.
    pub fn describe(&self) -> String {
        match self {
            Self::Postgres { url } => redact(url),
            Self::Sqlite { path } => format!("sqlite://{}", path.display()),
        }
    }
}

/// The same server URL with another database name (the last path segment).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let root = match base.rfind('/') {
        Some(i) if i > base.find("://").map_or(0, |j| j + 2) => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

/// Hides the password of a connection URL.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}")
            } else {
                format!("{scheme}://{user}@{host}")
            }
        }
        None => url.to_string(),
    }
}

/// Failures of the storage layer's set-up, each worded for the person at the console.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid DATABASE_URL: {0}")]
    BadUrl(String),
    #[error("cannot connect to {target}: {reason}")]
    Unreachable { target: String, reason: String },
    #[error("cannot open the SQLite file {path}: {reason}")]
    SqliteFile { path: String, reason: String },
    #[error(
        "the database schema is newer than this scrm build (it has migration {found}, \
         this build knows up to {known}); upgrade scrm before using this database"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

/// A connection pool to whichever backend was configured.
#[derive(Debug, Clone)]
pub enum Database {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl Database {
    pub async fn connect_to(backend: &Backend, max_connections: u32) -> Result<Self, DbError> {
        match backend {
            Backend::Postgres { url } => {
                // One direct attempt first: the pool would retry until its timeout and
                // report only "timed out", hiding "connection refused" or "no such database".
                let options =
                    PgConnectOptions::from_str(url).map_err(|e| DbError::BadUrl(one_line(&e)))?;
                let probe = tokio::time::timeout(
                    Duration::from_secs(5),
                    PgConnection::connect_with(&options),
                )
                .await
                .map_err(|_| connect_error(&backend.describe(), sqlx::Error::PoolTimedOut))?
                .map_err(|e| connect_error(&backend.describe(), e))?;
                let _ = probe.close().await;
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections.max(1))
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await
                    .map_err(|e| connect_error(&backend.describe(), e))?;
                Ok(Self::Postgres(pool))
            }
            Backend::Sqlite { path } => Ok(Self::Sqlite(open_sqlite(path).await?)),
        }
    }

    /// Applies every pending migration. Refuses a schema from a newer build.
    pub async fn migrate(&self) -> Result<(), DbError> {
        let (migrator, result) = match self {
            Self::Postgres(pool) => (&POSTGRES_MIGRATOR, POSTGRES_MIGRATOR.run(pool).await),
            Self::Sqlite(pool) => (&SQLITE_MIGRATOR, SQLITE_MIGRATOR.run(pool).await),
        };
        result.map_err(|e| migrate_error(migrator, e))?;
        if let Self::Postgres(pool) = self {
            if crate::citus::is_citus(pool).await? {
                // One statement at a time on one session: Citus refuses DDL after a
                // parallel operation in the same transaction.
                let mut conn = pool.acquire().await?;
                for statement in crate::citus::statements(crate::citus::DISTRIBUTE_SQL) {
                    sqlx::raw_sql(statement)
                        .execute(&mut *conn)
                        .await
                        .map_err(|e| {
                            DbError::Migration(format!("distributing on Citus: {}", one_line(&e)))
                        })?;
                }
            }
        }
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Self::Postgres(pool) => pool.close().await,
            Self::Sqlite(pool) => pool.close().await,
        }
    }
}

/// One writer connection: SQLite serialises writers anyway, and a second writer would
/// only meet SQLITE_BUSY.
async fn open_sqlite(path: &Path) -> Result<SqlitePool, DbError> {
    let file_error = |reason: String| DbError::SqliteFile {
        path: path.display().to_string(),
        reason,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| file_error(e.to_string()))?;
    }
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .map_err(|e| file_error(e.to_string()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|e| file_error(one_line(&e)))
}

fn connect_error(target: &str, error: sqlx::Error) -> DbError {
    match error {
        sqlx::Error::Configuration(e) => DbError::BadUrl(e.to_string()),
        sqlx::Error::PoolTimedOut => DbError::Unreachable {
            target: target.to_string(),
            reason: "timed out after 5 s".into(),
        },
        other => DbError::Unreachable {
            target: target.to_string(),
            reason: one_line(&other),
        },
    }
}

fn migrate_error(migrator: &Migrator, error: MigrateError) -> DbError {
    let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    match error {
        MigrateError::VersionMissing(found) => DbError::SchemaTooNew { found, known },
        MigrateError::Execute(e) => DbError::Migration(one_line(&e)),
        other => DbError::Migration(other.to_string()),
    }
}

/// Error text from drivers can span lines; the console gets one.
fn one_line(error: &dyn std::fmt::Display) -> String {
    error
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Creates an empty database `name` on the server `server_url` points at.
pub async fn create_database(server_url: &str, name: &str) -> Result<(), DbError> {
    let mut conn = PgConnection::connect(server_url)
        .await
        .map_err(|e| connect_error(&redact(server_url), e))?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await?;
    conn.close().await.ok();
    Ok(())
}

/// Drops database `name`, ending its sessions.
pub async fn drop_database(server_url: &str, name: &str) -> Result<(), DbError> {
    let mut conn = PgConnection::connect(server_url)
        .await
        .map_err(|e| connect_error(&redact(server_url), e))?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    conn.close().await.ok();
    Ok(())
}

/// A COPY chunk that makes no progress for this long has stalled (one normally takes
/// well under a second).
const COPY_WATCHDOG: Duration = Duration::from_secs(30);
const COPY_ATTEMPTS: u32 = 3;

/// Runs `statement` (a `COPY ... FROM STDIN`) with `text` as its data, in one transaction.
///
/// Rarely, and only under sustained bulk load, a COPY through sqlx 0.8 has been seen to
/// stop with both ends waiting for each other. A stalled attempt's connection is closed,
/// which makes the server roll that COPY back, and the chunk is sent again on a fresh
/// connection; a chunk that keeps stalling is an error, never a silent hang.
pub async fn copy_in_text(pool: &PgPool, statement: &str, text: &[u8]) -> Result<(), sqlx::Error> {
    for attempt in 1..=COPY_ATTEMPTS {
        let mut conn = pool.acquire().await?;
        let copy = async {
            let mut copy = conn.copy_in_raw(statement).await?;
            for piece in text.chunks(1 << 20) {
                copy.send(piece).await?;
            }
            copy.finish().await
        };
        match tokio::time::timeout(COPY_WATCHDOG, copy).await {
            Ok(result) => return result.map(|_| ()),
            Err(_) => {
                conn.close_on_drop();
                tracing::warn!(
                    attempt,
                    bytes = text.len(),
                    "COPY stalled; retrying on a new connection"
                );
            }
        }
    }
    Err(sqlx::Error::Protocol(format!(
        "COPY of {} bytes stalled {COPY_ATTEMPTS} times in a row",
        text.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn no_url_means_the_embedded_file() {
        assert_eq!(
            Backend::from_url(None).unwrap(),
            Backend::Sqlite {
                path: PathBuf::from(DEFAULT_SQLITE_PATH)
            }
        );
        assert_eq!(
            Backend::from_url(Some("  ")).unwrap(),
            Backend::from_url(None).unwrap()
        );
    }

    #[test]
    fn the_scheme_picks_the_backend() {
        assert!(matches!(
            Backend::from_url(Some("postgres://postgres@127.0.0.1/scrm")),
            Ok(Backend::Postgres { .. })
        ));
        assert_eq!(
            Backend::from_url(Some("sqlite://data/x.db?mode=rwc")).unwrap(),
            Backend::Sqlite {
                path: PathBuf::from("data/x.db")
            }
        );
        assert!(Backend::from_url(Some("mysql://root@localhost/x")).is_err());
        assert!(Backend::from_url(Some("sqlite://")).is_err());
    }

    #[test]
    fn the_database_name_is_replaced_not_appended() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }

    #[test]
    fn passwords_never_reach_logs_or_errors() {
        assert_eq!(
            redact("postgres://scrm:s3cret@db:5432/scrm"),
            "postgres://scrm:***@db:5432/scrm"
        );
        let err = Backend::from_url(Some("mysql://u:s3cret@h/x")).unwrap_err();
        assert!(!err.to_string().contains("s3cret"));
    }
}
