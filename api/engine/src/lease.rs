//! Work done by one server process at a time, whichever of several runs it.
//!
//! A PostgreSQL session advisory lock held on a connection of its own: the lock ends
//! with the connection, so it is released when the [`Lease`] drops and when the process
//! dies, with no expiry to wait for. The embedded SQLite file serves one process, where
//! the lease is always granted and each caller's in-process guard is enough.

use crate::db::Database;

/// Held for as long as the value lives.
#[derive(Debug)]
pub struct Lease(#[allow(dead_code)] Option<sqlx::PgConnection>);

impl Lease {
    /// Gives the lease up now. Dropping it does too, but only once PostgreSQL has
    /// noticed the connection close: a moment in which the next taker is refused.
    pub async fn release(self) {
        if let Some(mut conn) = self.0 {
            let _ = sqlx::query("SELECT pg_advisory_unlock_all()")
                .execute(&mut conn)
                .await;
            let _ = sqlx::Connection::close(conn).await;
        }
    }
}

/// Takes the lease named `name` if no other session holds it; `None` when one does.
pub async fn try_lease(db: &Database, name: &str) -> Result<Option<Lease>, sqlx::Error> {
    let Database::Postgres(pool) = db else {
        return Ok(Some(Lease(None)));
    };
    let mut conn = pool.acquire().await?.detach();
    let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(name)
        .fetch_one(&mut conn)
        .await?;
    Ok(held.then_some(Lease(Some(conn))))
}
