//! Rebuilds: stream the log in large batches, fold in memory, write fresh `<table>__next`
//! tables in bulk (COPY on PostgreSQL), index them, then swap them in and set the
//! checkpoint in one short transaction. The API reads the old tables until the swap; an
//! interrupted rebuild leaves them untouched and simply runs again.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use sqlx::postgres::PgPoolCopyExt;

use crate::db::Database;
use crate::error::ProjectionError;
use crate::log::{read_after, Checkpoint};
use crate::model::ReadModel;
use crate::registry::{with_model, Projection};
use crate::table::{copy_row, Table, Val};

/// Events read per round trip while rebuilding.
const READ_BATCH: i64 = 20_000;
/// Rows per COPY statement into a `__next` table.
const COPY_ROWS: usize = 100_000;

/// What a rebuild did.
#[derive(Debug, Clone)]
pub struct RebuildReport {
    pub name: &'static str,
    pub events: u64,
    pub rows: u64,
    pub checkpoint: Checkpoint,
    pub read_and_fold: Duration,
    pub write: Duration,
    pub total: Duration,
}

impl RebuildReport {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.total.as_secs_f64().max(1e-9)
    }
}

fn next(table: &Table) -> String {
    format!("{}__next", table.name)
}

fn progress(show: bool) -> ProgressBar {
    if !show || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{elapsed_precise}] {human_pos} events  {per_sec}",
        )
        .expect("template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Rebuilds `p` from the whole log and swaps the result in.
pub async fn rebuild(
    db: &Database,
    p: &'static Projection,
    show_progress: bool,
) -> Result<RebuildReport, ProjectionError> {
    with_model!(p, |M| rebuild_model::<M>(db, p, show_progress).await)
}

async fn rebuild_model<M: ReadModel>(
    db: &Database,
    p: &'static Projection,
    show_progress: bool,
) -> Result<RebuildReport, ProjectionError> {
    let started = Instant::now();
    let bar = progress(show_progress);
    bar.set_message(format!("rebuilding {}", p.name));

    // 1. Fold the whole log in memory: bounded by customers, not events.
    let mut model = M::default();
    let mut at = Checkpoint::START;
    let mut events: u64 = 0;
    let mut last_log = Instant::now();
    loop {
        let batch = read_after(db, at, READ_BATCH).await?;
        let Some(last) = batch.last() else { break };
        at = last.checkpoint;
        for e in &batch {
            model.apply(e);
        }
        events += batch.len() as u64;
        bar.set_position(events);
        if bar.is_hidden() && show_progress && last_log.elapsed() > Duration::from_secs(5) {
            let rate = events as f64 / started.elapsed().as_secs_f64();
            tracing::info!(
                projection = p.name,
                events,
                rate = rate as u64,
                "rebuilding"
            );
            last_log = Instant::now();
        }
    }
    let read_and_fold = started.elapsed();

    // 2. Fresh tables, filled in bulk, indexed after the load.
    let tables: Vec<(&Table, Vec<Vec<Val>>)> = M::TABLES
        .iter()
        .map(|(t, _)| *t)
        .zip(model.rows())
        .collect();
    drop(model);
    let postgres = matches!(db, Database::Postgres(_));
    let mut rows: u64 = 0;
    for (table, table_rows) in &tables {
        let physical = next(table);
        crate::on_pool!(db, |pool| {
            sqlx::query(&format!("DROP TABLE IF EXISTS {physical}"))
                .execute(pool)
                .await?;
            sqlx::query(&table.create_sql(&physical, postgres))
                .execute(pool)
                .await?;
            Ok::<_, sqlx::Error>(())
        })?;
        write_rows(db, table, &physical, table_rows).await?;
        rows += table_rows.len() as u64;
        if postgres {
            crate::on_pool!(db, |pool| {
                for sql in table.index_sql(&physical) {
                    sqlx::query(&sql).execute(pool).await?;
                }
                sqlx::query(&format!("ANALYZE {physical}"))
                    .execute(pool)
                    .await?;
                Ok::<_, sqlx::Error>(())
            })?;
        }
    }
    let write = started.elapsed() - read_and_fold;

    // 3. Swap and move the checkpoint, atomically.
    swap(db, p, at, events as i64).await?;
    bar.finish_and_clear();
    Ok(RebuildReport {
        name: p.name,
        events,
        rows,
        checkpoint: at,
        read_and_fold,
        write,
        total: started.elapsed(),
    })
}

async fn write_rows(
    db: &Database,
    table: &Table,
    physical: &str,
    rows: &[Vec<Val>],
) -> Result<(), ProjectionError> {
    match db {
        Database::Postgres(pool) => {
            let statement = format!("COPY {physical} ({}) FROM STDIN", table.column_list());
            let mut buf = Vec::with_capacity(8 << 20);
            for chunk in rows.chunks(COPY_ROWS) {
                buf.clear();
                for row in chunk {
                    copy_row(&mut buf, row);
                }
                let mut copy = pool.copy_in_raw(&statement).await?;
                copy.send(buf.as_slice()).await?;
                copy.finish().await?;
            }
        }
        Database::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            crate::sql::lite::insert_rows(&mut tx, table, physical, rows).await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

async fn swap(
    db: &Database,
    p: &Projection,
    at: Checkpoint,
    events: i64,
) -> Result<(), ProjectionError> {
    match db {
        Database::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            // Waits for the incremental projector's current batch, then holds it off.
            crate::sql::pg::lock_checkpoint(&mut tx, p.name).await?;
            for (table, _) in p.tables {
                let (live, fresh) = (table.name, next(table));
                sqlx::query(&format!("DROP TABLE IF EXISTS {live}"))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&format!("ALTER TABLE {fresh} RENAME TO {live}"))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&format!(
                    "ALTER TABLE {live} RENAME CONSTRAINT {fresh}_pkey TO {live}_pkey"
                ))
                .execute(&mut *tx)
                .await?;
                for i in 0..table.indexes.len() {
                    sqlx::query(&format!("ALTER INDEX {fresh}_ix{i} RENAME TO {live}_ix{i}"))
                        .execute(&mut *tx)
                        .await?;
                }
            }
            crate::sql::pg::save_checkpoint(&mut tx, p.name, p.version, at, events).await?;
            tx.commit().await?;
        }
        Database::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            for (table, _) in p.tables {
                let (live, fresh) = (table.name, next(table));
                sqlx::query(&format!("DROP TABLE IF EXISTS {live}"))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&format!("ALTER TABLE {fresh} RENAME TO {live}"))
                    .execute(&mut *tx)
                    .await?;
                // SQLite cannot rename an index; it is built here, on the final name.
                for sql in table.index_sql(live) {
                    sqlx::query(&sql).execute(&mut *tx).await?;
                }
            }
            crate::sql::lite::save_checkpoint(&mut tx, p.name, p.version, at, events).await?;
            tx.commit().await?;
        }
    }
    Ok(())
}
