//! Rebuilds: stream the log in large batches, fold in memory, write fresh `<table>__next`
//! tables in bulk (COPY on PostgreSQL), index them, then swap them in and set the
//! checkpoint in one short transaction. The API reads the old tables until the swap; an
//! interrupted rebuild leaves them untouched and simply runs again.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use crate::db::Database;
use crate::error::ProjectionError;
use crate::log::{read_after, Checkpoint};
use crate::registry::{Fold, Projection};
use crate::table::{copy_row, Table, Val};
use crate::tally::TenantTally;

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
    let mut reports = rebuild_set(db, &[p], p.name, show_progress).await?;
    Ok(reports.remove(0))
}

/// Rebuilds every projection from one pass over the log. Returns one report per
/// projection; their `total` is the time of the whole run.
pub async fn rebuild_all(
    db: &Database,
    show_progress: bool,
) -> Result<Vec<RebuildReport>, ProjectionError> {
    let all: Vec<&'static Projection> = crate::registry::ALL.iter().collect();
    rebuild_set(db, &all, "all projections", show_progress).await
}

/// Folds the log once into every projection of `set`, then writes and swaps each.
async fn rebuild_set(
    db: &Database,
    set: &[&'static Projection],
    label: &str,
    show_progress: bool,
) -> Result<Vec<RebuildReport>, ProjectionError> {
    let started = Instant::now();
    let mut models: Vec<_> = set.iter().map(|p| p.empty()).collect();
    let mut reads: Vec<&'static str> = set.iter().flat_map(|p| p.reads).copied().collect();
    reads.sort_unstable();
    reads.dedup();
    let (at, events, tally) = fold_log(db, label, reads, show_progress, started, |e| {
        for model in &mut models {
            model.apply(e);
        }
    })
    .await?;
    let read_and_fold = started.elapsed();
    let mut written = Vec::with_capacity(set.len());
    for (p, model) in set.iter().zip(models) {
        written.push(write_and_swap(db, p, model, at, events, &tally).await?);
    }
    let total = started.elapsed();
    Ok(set
        .iter()
        .zip(written)
        .map(|(p, rows)| RebuildReport {
            name: p.name,
            events,
            rows,
            checkpoint: at,
            read_and_fold,
            write: total - read_and_fold,
            total,
        })
        .collect())
}

/// Streams the whole log in global order through `apply`. Returns where it ended. A
/// reader task fetches and parses the next pages while `apply` folds this one, so the
/// database and the fold work at the same time.
async fn fold_log(
    db: &Database,
    label: &str,
    reads: Vec<&'static str>,
    show_progress: bool,
    started: Instant,
    mut apply: impl FnMut(&crate::log::LoggedEvent),
) -> Result<(Checkpoint, u64, TenantTally), ProjectionError> {
    let bar = progress(show_progress);
    bar.set_message(format!("rebuilding {label}"));
    let (pages, mut next_page) = tokio::sync::mpsc::channel(4);
    let reader_db = db.clone();
    let reader = tokio::spawn(async move {
        let mut at = Checkpoint::START;
        loop {
            match read_after(&reader_db, at, READ_BATCH, &reads).await {
                Ok(page) if page.last.is_none() => break,
                Ok(page) => {
                    at = page.last.unwrap_or(at);
                    if pages.send(Ok(page)).await.is_err() {
                        break;
                    }
                }
                Err(error) => {
                    let _ = pages.send(Err(error)).await;
                    break;
                }
            }
        }
    });
    let mut at = Checkpoint::START;
    let mut events: u64 = 0;
    let mut tally = TenantTally::default();
    let mut last_log = Instant::now();
    while let Some(page) = next_page.recv().await {
        let page: crate::log::Page = page?;
        at = page.last.unwrap_or(at);
        for e in &page.events {
            apply(e);
        }
        events += page.rows() as u64;
        tally.merge(page.tally);
        bar.set_position(events);
        if bar.is_hidden() && show_progress && last_log.elapsed() > Duration::from_secs(5) {
            let rate = events as f64 / started.elapsed().as_secs_f64();
            tracing::info!(label, events, rate = rate as u64, "rebuilding");
            last_log = Instant::now();
        }
    }
    let _ = reader.await;
    bar.finish_and_clear();
    Ok((at, events, tally))
}

/// Writes `model` into fresh tables, indexes them and swaps them in with the checkpoint.
/// Returns the rows written.
async fn write_and_swap(
    db: &Database,
    p: &'static Projection,
    model: Box<dyn Fold>,
    at: Checkpoint,
    events: u64,
    tally: &TenantTally,
) -> Result<u64, ProjectionError> {
    let mut held = model.rows();
    drop(model);
    let tables: Vec<(&'static Table, Vec<Vec<Val>>)> =
        p.tables.iter().map(|(t, _)| (*t, held.take(t))).collect();
    debug_assert!(
        held.tables().is_empty(),
        "{} holds rows of undeclared tables {:?}",
        p.name,
        held.tables()
    );
    // Two tables at a time: one COPY per core.
    // The futures are made before the stream (not by a `map` closure inside it), so the
    // rebuild's future stays `Send` for any lifetime and can run on a spawned task.
    let writes: Vec<_> = tables
        .into_iter()
        .map(|(table, table_rows)| write_table(db, table, table_rows))
        .collect();
    let written: Vec<Result<u64, ProjectionError>> = futures::stream::iter(writes)
        .buffer_unordered(2)
        .collect()
        .await;
    let mut rows = 0;
    for w in written {
        rows += w?;
    }
    swap(db, p, at, events as i64, tally).await?;
    Ok(rows)
}

/// Fills `<table>__next` and builds its key and indexes. Returns the rows written.
async fn write_table(
    db: &Database,
    table: &'static Table,
    rows: Vec<Vec<Val>>,
) -> Result<u64, ProjectionError> {
    let physical = next(table);
    let postgres = matches!(db, Database::Postgres(_));
    let count = rows.len() as u64;
    crate::on_pool!(db, |pool| {
        sqlx::query(&format!("DROP TABLE IF EXISTS {physical}"))
            .execute(pool)
            .await?;
        // SQLite's key is part of the table and cannot be added later.
        sqlx::query(&table.create_sql_keyed(&physical, postgres, !postgres))
            .execute(pool)
            .await?;
        Ok::<_, sqlx::Error>(())
    })?;
    write_rows(db, table, &physical, rows).await?;
    if let Database::Postgres(pool) = db {
        sqlx::query(&table.add_key_sql(&physical))
            .execute(pool)
            .await?;
        for sql in table.index_sql(&physical) {
            sqlx::query(&sql).execute(pool).await?;
        }
        for sql in table.isolation_sql(&physical) {
            sqlx::query(&sql).execute(pool).await?;
        }
        sqlx::query(&format!("ANALYZE {physical}"))
            .execute(pool)
            .await?;
    }
    Ok(count)
}

async fn write_rows(
    db: &Database,
    table: &'static Table,
    physical: &str,
    rows: Vec<Vec<Val>>,
) -> Result<(), ProjectionError> {
    match db {
        Database::Postgres(pool) => {
            // A thread encodes the next chunk while the database ingests this one.
            let statement = format!("COPY {physical} ({}) FROM STDIN", table.column_list());
            let (chunks, mut next_chunk) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
            let encoder = tokio::task::spawn_blocking(move || {
                for chunk in rows.chunks(COPY_ROWS) {
                    let mut buf = Vec::with_capacity(8 << 20);
                    for row in chunk {
                        copy_row(&mut buf, row);
                    }
                    if chunks.blocking_send(buf).is_err() {
                        break;
                    }
                }
            });
            while let Some(buf) = next_chunk.recv().await {
                crate::db::copy_in_text(pool, &statement, &buf).await?;
            }
            let _ = encoder.await;
        }
        Database::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            crate::sql::lite::insert_rows(&mut tx, table, physical, &rows).await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

/// A rebuilt projection starts over from a clean slate.
const CLEAR_FAILURE: &str = "DELETE FROM projection_failures WHERE name = $1";

async fn swap(
    db: &Database,
    p: &Projection,
    at: Checkpoint,
    events: i64,
    tally: &TenantTally,
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
            crate::sql::pg::replace_tenant_progress(&mut tx, p.name, tally).await?;
            sqlx::query(CLEAR_FAILURE)
                .bind(p.name)
                .execute(&mut *tx)
                .await?;
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
            crate::sql::lite::replace_tenant_progress(&mut tx, p.name, tally).await?;
            sqlx::query(CLEAR_FAILURE)
                .bind(p.name)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
    }
    Ok(())
}
