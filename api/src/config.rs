//! Typed settings, read from flags and the environment (clap), and the choice of
//! storage backend that follows from `DATABASE_URL`.

use std::path::PathBuf;

use clap::Args;

/// Where the embedded SQLite file lives when no `DATABASE_URL` is given.
pub const DEFAULT_SQLITE_PATH: &str = ".scrm/scrm.db";

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

#[cfg(test)]
mod tests {
    use super::*;

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
