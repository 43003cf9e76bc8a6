//! SQL that differs only in the driver's types, written once and instantiated per
//! backend: `sql::pg` for PostgreSQL, `sql::lite` for SQLite.

use crate::log::Checkpoint;

/// Rows per INSERT statement: well under both backends' bind-parameter limits.
pub const MAX_BINDS: usize = 30_000;

/// Columns are qualified on purpose: an unqualified `ORDER BY txid` would bind to the
/// output column `txid::text::bigint` and sort the whole table instead of walking the
/// `(txid, position)` index.
pub const READ_PG: &str = "\
SELECT e.txid::text::bigint, e.position, e.aggregate_type, e.aggregate_id, e.sequence, e.payload::text
  FROM events e
 WHERE (e.txid, e.position) > ($1::bigint::text::xid8, $2)
   AND e.txid < pg_snapshot_xmin(pg_current_snapshot())
 ORDER BY e.txid, e.position
 LIMIT $3";

pub const READ_SQLITE: &str = "\
SELECT 0, position, aggregate_type, aggregate_id, sequence, payload
  FROM events
 WHERE position > $2 AND $1 = $1
 ORDER BY position
 LIMIT $3";

/// (version, checkpoint, events applied) of a projection, if it has a row.
pub type CheckpointRow = (i64, Checkpoint, i64);

macro_rules! backend {
    ($m:ident, $db:ty, $read:expr, $lock_suffix:expr, $keys:path) => {
        pub mod $m {
            use sqlx::{QueryBuilder, Transaction};

            use super::{CheckpointRow, MAX_BINDS};
            use crate::log::{Checkpoint, Page};
            use crate::tally::TenantTally;
            use crate::table::{push_val, Table, Val};

            pub type Conn = <$db as sqlx::Database>::Connection;

            /// Rows after `after` in global order (see `log::read_after`).
            pub async fn read_after(
                conn: &mut Conn,
                after: Checkpoint,
                limit: i64,
                reads: &[&str],
            ) -> Result<Page, crate::ProjectionError> {
                let rows: Vec<crate::log::Row> = sqlx::query_as($read)
                    .bind(after.txid)
                    .bind(after.position)
                    .bind(limit)
                    .fetch_all(&mut *conn)
                    .await?;
                let keys = $keys(&mut *conn, &crate::pii::streams_to_open(&rows))
                    .await
                    .map_err(crate::ProjectionError::from)?;
                crate::log::page_of(rows, reads, &keys)
            }

            /// Reads a projection's checkpoint, locking it until the transaction ends.
            pub async fn lock_checkpoint(
                tx: &mut Transaction<'_, $db>,
                name: &str,
            ) -> Result<Option<CheckpointRow>, sqlx::Error> {
                let sql = format!(
                    "SELECT version, txid, position, events FROM projection_checkpoints WHERE name = $1{}",
                    $lock_suffix
                );
                let row: Option<(i64, i64, i64, i64)> =
                    sqlx::query_as(&sql).bind(name).fetch_optional(&mut **tx).await?;
                Ok(row.map(|(v, txid, position, events)| (v, Checkpoint { txid, position }, events)))
            }

            pub async fn save_checkpoint(
                tx: &mut Transaction<'_, $db>,
                name: &str,
                version: i64,
                at: Checkpoint,
                events: i64,
            ) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO projection_checkpoints (name, version, txid, position, events, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, CURRENT_TIMESTAMP) \
                     ON CONFLICT (name) DO UPDATE SET version = $2, txid = $3, position = $4, \
                     events = $5, updated_at = CURRENT_TIMESTAMP",
                )
                .bind(name)
                .bind(version)
                .bind(at.txid)
                .bind(at.position)
                .bind(events)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// Adds a batch's events to each tenant's progress in projection `name`.
            pub async fn add_tenant_progress(
                tx: &mut Transaction<'_, $db>,
                name: &str,
                tally: &TenantTally,
            ) -> Result<(), sqlx::Error> {
                write_tenant_progress(
                    tx,
                    name,
                    tally,
                    "projection_tenant_progress.events + excluded.events",
                ).await
            }

            /// Replaces every tenant's progress in projection `name` (after a rebuild).
            pub async fn replace_tenant_progress(
                tx: &mut Transaction<'_, $db>,
                name: &str,
                tally: &TenantTally,
            ) -> Result<(), sqlx::Error> {
                sqlx::query("DELETE FROM projection_tenant_progress WHERE name = $1")
                    .bind(name)
                    .execute(&mut **tx)
                    .await?;
                write_tenant_progress(tx, name, tally, "excluded.events").await
            }

            /// Replaces one tenant's progress in projection `name` (after its rebuild).
            pub async fn replace_one_tenant_progress(
                tx: &mut Transaction<'_, $db>,
                name: &str,
                tenant: &str,
                tally: &TenantTally,
            ) -> Result<(), sqlx::Error> {
                sqlx::query("DELETE FROM projection_tenant_progress WHERE name = $1 AND tenant_id = $2")
                    .bind(name)
                    .bind(tenant)
                    .execute(&mut **tx)
                    .await?;
                write_tenant_progress(tx, name, tally, "excluded.events").await
            }

            async fn write_tenant_progress(
                tx: &mut Transaction<'_, $db>,
                name: &str,
                tally: &TenantTally,
                events: &str,
            ) -> Result<(), sqlx::Error> {
                let rows: Vec<_> = tally.iter().collect();
                for chunk in rows.chunks(MAX_BINDS / 5) {
                    let mut q = QueryBuilder::<$db>::new(
                        "INSERT INTO projection_tenant_progress \
                         (name, tenant_id, events, txid, position) ",
                    );
                    q.push_values(chunk, |mut b, (tenant, n, at)| {
                        b.push_bind(name.to_string())
                            .push_bind(tenant.to_string())
                            .push_bind(*n)
                            .push_bind(at.txid)
                            .push_bind(at.position);
                    });
                    q.push(format!(
                        " ON CONFLICT (name, tenant_id) DO UPDATE SET events = {events}, \
                         txid = excluded.txid, position = excluded.position"
                    ));
                    q.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// Deletes the rows of `physical` for `tenant` whose `column` is one of `ids`.
            pub async fn delete_in(
                conn: &mut Conn,
                physical: &str,
                tenant: &str,
                column: &str,
                ids: &[String],
            ) -> Result<(), sqlx::Error> {
                for chunk in ids.chunks(MAX_BINDS) {
                    let mut q = QueryBuilder::<$db>::new(format!(
                        "DELETE FROM {physical} WHERE tenant_id = "
                    ));
                    q.push_bind(tenant.to_string());
                    q.push(format!(" AND {column} IN ("));
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(id.clone());
                    }
                    q.push(")");
                    q.build().execute(&mut *conn).await?;
                }
                Ok(())
            }

            /// Multi-row INSERTs of `rows` into `physical` (a table shaped like `table`).
            pub async fn insert_rows(
                conn: &mut Conn,
                table: &Table,
                physical: &str,
                rows: &[Vec<Val>],
            ) -> Result<(), sqlx::Error> {
                let per_statement = (MAX_BINDS / table.columns.len()).max(1);
                for chunk in rows.chunks(per_statement) {
                    let mut q = QueryBuilder::<$db>::new(format!(
                        "INSERT INTO {physical} ({}) ",
                        table.column_list()
                    ));
                    q.push_values(chunk, |mut b, row| {
                        for v in row {
                            push_val!(b, v);
                        }
                    });
                    q.build().execute(&mut *conn).await?;
                }
                Ok(())
            }
        }
    };
}

backend!(
    pg,
    sqlx::Postgres,
    super::READ_PG,
    " FOR UPDATE",
    crate::pii::keys::fetch_pg
);
backend!(
    lite,
    sqlx::Sqlite,
    super::READ_SQLITE,
    "",
    crate::pii::keys::fetch_lite
);
