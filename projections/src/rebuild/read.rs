//! Reading the log for a rebuild: one consistent snapshot shared by every worker (as
//! `pg_dump --jobs` does), each worker streaming its streams in primary-key order so a
//! customer's events arrive together.

use futures::TryStreamExt;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection, SqliteConnection};
use tokio::sync::mpsc;

use super::plan::{Bound, Scope, Slice};
use crate::error::ProjectionError;
use crate::log::{Checkpoint, Row};

/// Rows per batch handed to the fold; a batch is cut only between streams.
const BATCH_ROWS: usize = 8_192;

/// A reader's connection, inside a read-only transaction on the rebuild's snapshot.
pub enum Reader {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
    /// Moved out to a worker.
    Closed,
}

/// The snapshot every worker reads: exported by one PostgreSQL transaction and adopted
/// by the others; on SQLite one reader's transaction (one worker).
pub struct Snapshot {
    /// The exporting (or only) reader; it must stay open until every worker adopted it.
    pub first: Reader,
    /// PostgreSQL's snapshot id, to adopt, and where it lives.
    pub id: Option<String>,
    options: Option<PgConnectOptions>,
    /// Everything of transactions older than this has ended (PostgreSQL), or the last
    /// position (SQLite).
    pub bound: Bound,
    /// Whether text compares bytewise, so a tenant's byte range can narrow the scans.
    pub bytewise: bool,
}

const BEGIN_PG: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

/// A worker streams its streams in key order straight off the primary key. Left to
/// itself the planner sorts: a seq scan (a whole-table sort for a slice), or a bitmap
/// AND with the global-order index that reads every entry of it.
const PLAN_PG: &str = "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; \
                       SET LOCAL enable_sort = off; SET LOCAL jit = off";

impl Snapshot {
    pub async fn take(db: &crate::db::Database) -> Result<Self, ProjectionError> {
        match db {
            crate::db::Database::Postgres(pool) => Self::take_on(&pool.connect_options()).await,
            crate::db::Database::Sqlite(pool) => {
                let mut conn = SqliteConnection::connect_with(&pool.connect_options()).await?;
                conn.execute("BEGIN").await?;
                // The first read fixes what this transaction sees (WAL).
                let last: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
                    .fetch_one(&mut conn)
                    .await?;
                Ok(Self {
                    first: Reader::Sqlite(conn),
                    id: None,
                    options: None,
                    bound: Bound::up_to(crate::log::Checkpoint {
                        txid: 0,
                        position: last,
                    }),
                    bytewise: true,
                })
            }
        }
    }

    /// A snapshot of the PostgreSQL server `options` connect to: the database, or one
    /// Citus worker (its own transactions, its own xmin).
    pub async fn take_on(options: &PgConnectOptions) -> Result<Self, ProjectionError> {
        let mut conn = PgConnection::connect_with(options).await?;
        conn.execute(BEGIN_PG).await?;
        conn.execute(PLAN_PG).await?;
        let (id, xmin, collation): (String, i64, String) = sqlx::query_as(
            "SELECT pg_export_snapshot(), \
                    pg_snapshot_xmin(pg_current_snapshot())::text::bigint, \
                    datcollate::text \
               FROM pg_database WHERE datname = current_database()",
        )
        .fetch_one(&mut conn)
        .await?;
        let bytewise = collation == "C" || collation == "POSIX" || collation.starts_with("C.");
        Ok(Self {
            first: Reader::Postgres(conn),
            id: Some(id),
            options: Some(options.clone()),
            bound: Bound::below_xmin(xmin),
            bytewise,
        })
    }

    /// Another reader on the same snapshot (PostgreSQL).
    pub async fn adopt(&self) -> Result<Reader, ProjectionError> {
        let (Some(options), Some(id)) = (&self.options, &self.id) else {
            unreachable!("only PostgreSQL rebuilds in parallel");
        };
        let mut conn = PgConnection::connect_with(options).await?;
        conn.execute(BEGIN_PG).await?;
        conn.execute(format!("SET TRANSACTION SNAPSHOT '{id}'").as_str())
            .await?;
        conn.execute(PLAN_PG).await?;
        Ok(Reader::Postgres(conn))
    }

    /// A sample of the scope's customer stream ids, in the database's order, to cut the
    /// key space at (about 20,000 ids, whatever the log's size), and the number of
    /// customer events it stands for.
    pub async fn sample(&mut self, scope: &Scope) -> Result<(Vec<String>, u64), ProjectionError> {
        let bytewise = self.bytewise;
        match &mut self.first {
            Reader::Postgres(conn) => {
                // By pages, which are always known (row estimates are not before the
                // first ANALYZE): about 2,000 pages, some 20,000 rows, whatever the size.
                let pages: i64 = sqlx::query_scalar(
                    "SELECT pg_relation_size('events') / current_setting('block_size')::bigint",
                )
                .fetch_one(&mut *conn)
                .await?;
                let percent = (2_000.0 * 100.0 / pages.max(1) as f64).min(100.0);
                let (filter, binds) = scope_filter(scope, bytewise, 2);
                let sql = format!(
                    "SELECT aggregate_id FROM events TABLESAMPLE SYSTEM ($1) \
                      WHERE aggregate_type = 'Customer' {filter} ORDER BY aggregate_id"
                );
                let mut q = sqlx::query_scalar(&sql).bind(percent);
                for b in binds {
                    q = q.bind(b);
                }
                let mut ids: Vec<String> = q.fetch_all(&mut *conn).await?;
                let stands_for = (ids.len() as f64 * 100.0 / percent) as u64;
                // Few pages sampled from a big log: keep every stream once.
                ids.dedup();
                Ok((ids, stands_for))
            }
            Reader::Sqlite(_) | Reader::Closed => Ok((Vec::new(), 0)),
        }
    }
}

/// `AND ...` conditions keeping `scope`'s streams, with their binds numbered from
/// `first`.
fn scope_filter(scope: &Scope, bytewise: bool, first: usize) -> (String, Vec<String>) {
    let Some(tenant) = scope.tenant() else {
        return (String::new(), Vec::new());
    };
    let mut sql = format!(" AND tenant_id = ${first}");
    let mut binds = vec![tenant.to_string()];
    if let (true, Some((from, to))) = (bytewise, scope.byte_range()) {
        sql.push_str(&format!(
            " AND aggregate_id >= ${} AND aggregate_id < ${}",
            first + 1,
            first + 2
        ));
        binds.extend([from, to]);
    }
    (sql, binds)
}

/// The SELECT of one slice, with its binds after the first three (type, bound).
fn slice_sql(
    postgres: bool,
    slice: &Slice,
    scope: &Scope,
    bytewise: bool,
) -> (String, Vec<String>) {
    let (mut filter, mut binds) = scope_filter(scope, bytewise, 4);
    let mut next = 4 + binds.len();
    if let Some(from) = &slice.range.from {
        filter.push_str(&format!(" AND aggregate_id >= ${next}"));
        binds.push(from.clone());
        next += 1;
    }
    if let Some(to) = &slice.range.to {
        filter.push_str(&format!(" AND aggregate_id < ${next}"));
        binds.push(to.clone());
    }
    let table = &slice.table;
    let sql = if postgres {
        format!(
            "SELECT txid::text::bigint, position, aggregate_type, aggregate_id, sequence, payload::text \
               FROM {table} \
              WHERE aggregate_type = $1 AND (txid, position) <= ($2::bigint::text::xid8, $3){filter} \
              ORDER BY aggregate_type, aggregate_id, sequence"
        )
    } else {
        format!(
            "SELECT 0, position, aggregate_type, aggregate_id, sequence, payload \
               FROM {table} \
              WHERE aggregate_type = $1 AND $2 = $2 AND position <= $3{filter} \
              ORDER BY aggregate_type, aggregate_id, sequence"
        )
    };
    (sql, binds)
}

impl Reader {
    /// Streams `slice` to `out` in batches cut between streams. Returns the last of
    /// the rows in log order (`Checkpoint::START` when there were none).
    pub async fn read(
        &mut self,
        slice: &Slice,
        scope: &Scope,
        snapshot: (Bound, bool),
        out: &mpsc::Sender<Vec<Row>>,
    ) -> Result<Checkpoint, ProjectionError> {
        let (bound, bytewise) = snapshot;
        macro_rules! stream {
            ($conn:expr, $postgres:expr) => {{
                let (sql, binds) = slice_sql($postgres, slice, scope, bytewise);
                let mut q = sqlx::query_as::<_, Row>(&sql)
                    .bind(slice.aggregate_type)
                    .bind(bound.last.txid)
                    .bind(bound.last.position);
                for b in binds {
                    q = q.bind(b);
                }
                batches(q.fetch(&mut *$conn), out).await
            }};
        }
        match self {
            Reader::Postgres(conn) => stream!(conn, true),
            Reader::Sqlite(conn) => stream!(conn, false),
            Reader::Closed => unreachable!("a closed reader is never given a slice"),
        }
    }

    pub async fn close(self) {
        let _ = match self {
            Reader::Postgres(conn) => conn.close().await,
            Reader::Sqlite(conn) => conn.close().await,
            Reader::Closed => Ok(()),
        };
    }
}

async fn batches(
    mut rows: impl futures::Stream<Item = Result<Row, sqlx::Error>> + Unpin,
    out: &mpsc::Sender<Vec<Row>>,
) -> Result<Checkpoint, ProjectionError> {
    let mut batch: Vec<Row> = Vec::with_capacity(BATCH_ROWS);
    let mut last = Checkpoint::START;
    while let Some(row) = rows.try_next().await? {
        last = last.max(Checkpoint {
            txid: row.0,
            position: row.1,
        });
        if batch.len() >= BATCH_ROWS && batch.last().is_some_and(|last| last.3 != row.3) {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
            if out.send(full).await.is_err() {
                // The fold stopped; it reports why.
                return Ok(last);
            }
        }
        batch.push(row);
    }
    if !batch.is_empty() {
        let _ = out.send(batch).await;
    }
    Ok(last)
}
