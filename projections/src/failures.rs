//! Dead letters: a projection that cannot go on (an event it cannot read, rows its
//! tables refuse, a code version that needs a rebuild) is recorded here with where it
//! stopped and why, and the projector goes on with the others. The row goes when the
//! projection next gets through a catch-up or is rebuilt.

use chrono::{DateTime, Utc};

use crate::db::Database;
use crate::error::ProjectionError;
use crate::log::Checkpoint;
use crate::on_pool;

/// Why and since when a projection stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The checkpoint it could not pass (for an unreadable event, that event).
    pub at: Checkpoint,
    /// A short kind: `BAD_EVENT`, `NEEDS_REBUILD`, `DATABASE`, `STALLED`, `OTHER`.
    pub kind: String,
    /// The full error, for operators (it may quote an event's content).
    pub error: String,
    /// How many catch-ups in a row it has failed.
    pub attempts: i64,
    pub since: DateTime<Utc>,
}

/// Records (or counts again) `error` for projection `name`, stopped at `at`. Returns
/// the attempts so far.
pub async fn record(
    db: &Database,
    name: &str,
    at: Checkpoint,
    error: &ProjectionError,
) -> Result<i64, ProjectionError> {
    let at = match error {
        ProjectionError::BadEvent { position, .. } => Checkpoint {
            txid: at.txid,
            position: *position,
        },
        _ => at,
    };
    Ok(on_pool!(db, |pool| {
        sqlx::query_scalar(
            "INSERT INTO projection_failures (name, txid, position, kind, error) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO UPDATE SET txid = excluded.txid, \
             position = excluded.position, kind = excluded.kind, error = excluded.error, \
             attempts = projection_failures.attempts + 1 \
             RETURNING attempts",
        )
        .bind(name)
        .bind(at.txid)
        .bind(at.position)
        .bind(error.kind())
        .bind(error.to_string())
        .fetch_one(pool)
        .await
    })?)
}

/// Forgets projection `name`'s failure, if it had one.
pub async fn clear(db: &Database, name: &str) -> Result<(), ProjectionError> {
    on_pool!(db, |pool| {
        sqlx::query("DELETE FROM projection_failures WHERE name = $1")
            .bind(name)
            .execute(pool)
            .await
            .map(drop)
    })?;
    Ok(())
}

/// Projection `name`'s failure, if it is stopped.
pub async fn of(db: &Database, name: &str) -> Result<Option<Failure>, ProjectionError> {
    type Row = (i64, i64, String, String, i64);
    const SQL: &str = "SELECT txid, position, kind, error, attempts, failed_at \
                       FROM projection_failures WHERE name = $1";
    let row: Option<(Row, DateTime<Utc>)> = match db {
        Database::Postgres(pool) => sqlx::query_as(SQL)
            .bind(name)
            .fetch_optional(pool)
            .await?
            .map(|(txid, position, kind, error, attempts, since)| {
                ((txid, position, kind, error, attempts), since)
            }),
        Database::Sqlite(pool) => sqlx::query_as(SQL)
            .bind(name)
            .fetch_optional(pool)
            .await?
            .map(
                |(txid, position, kind, error, attempts, since): (_, _, _, _, _, String)| {
                    let since = DateTime::parse_from_rfc3339(&since)
                        .map_or(DateTime::UNIX_EPOCH, |t| t.with_timezone(&Utc));
                    ((txid, position, kind, error, attempts), since)
                },
            ),
    };
    Ok(
        row.map(|((txid, position, kind, error, attempts), since)| Failure {
            at: Checkpoint { txid, position },
            kind,
            error,
            attempts,
            since,
        }),
    )
}
