//! Writing a rebuild's rows: fresh `<table>__next` tables, filled by every worker at
//! once (COPY on PostgreSQL), keyed and indexed only when full.

use std::collections::BTreeMap;

use futures::StreamExt;
use sqlx::{Connection, PgConnection};
use tokio::sync::mpsc;

use super::fold::Chunk;
use crate::db::Database;
use crate::error::ProjectionError;
use crate::registry::Projection;
use crate::table::Table;

pub fn next(table: &Table) -> String {
    format!("{}__next", table.name)
}

/// Makes every table of `set` afresh and empty as `<table>__next`: what an interrupted
/// rebuild left behind is dropped here.
pub async fn create_next(
    db: &Database,
    set: &[&'static Projection],
) -> Result<(), ProjectionError> {
    let postgres = matches!(db, Database::Postgres(_));
    for p in set {
        for (table, _) in p.tables {
            let physical = next(table);
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
        }
    }
    Ok(())
}

/// Writes every chunk a worker's fold sends, on the worker's own connection, until the
/// fold is done. Returns the rows written per table.
pub async fn write_chunks(
    db: &Database,
    mut chunks: mpsc::Receiver<Chunk>,
) -> Result<BTreeMap<&'static str, u64>, ProjectionError> {
    let mut rows = BTreeMap::new();
    match db {
        Database::Postgres(pool) => {
            let mut conn = PgConnection::connect_with(&pool.connect_options()).await?;
            while let Some(chunk) = chunks.recv().await {
                let Chunk::Copy(table, text, n) = chunk else {
                    unreachable!("PostgreSQL gets binary COPY");
                };
                *rows.entry(table.name).or_default() += n;
                let statement = format!(
                    "COPY {} ({}) FROM STDIN (FORMAT binary)",
                    next(table),
                    table.column_list()
                );
                let mut copy = conn.copy_in_raw(&statement).await?;
                for piece in text.chunks(1 << 20) {
                    copy.send(piece).await?;
                }
                copy.finish().await?;
            }
            let _ = conn.close().await;
        }
        Database::Sqlite(pool) => {
            while let Some(chunk) = chunks.recv().await {
                let Chunk::Rows(table, values) = chunk else {
                    unreachable!("SQLite gets values");
                };
                *rows.entry(table.name).or_default() += values.len() as u64;
                let mut tx = pool.begin().await?;
                crate::sql::lite::insert_rows(&mut tx, table, &next(table), &values).await?;
                tx.commit().await?;
            }
        }
    }
    Ok(rows)
}

/// Builds the keys, indexes and isolation of the filled `__next` tables (PostgreSQL),
/// `jobs` tables at a time.
pub async fn finish_tables(
    db: &Database,
    set: &[&'static Projection],
    jobs: usize,
) -> Result<(), ProjectionError> {
    let Database::Postgres(pool) = db else {
        return Ok(());
    };
    let tables: Vec<&'static Table> = set
        .iter()
        .flat_map(|p| p.tables.iter().map(|(t, _)| *t))
        .collect();
    // The futures are made before the stream (not by a closure inside it), so the
    // rebuild's future stays `Send` for any lifetime and can run on a spawned task.
    let builds: Vec<_> = tables
        .into_iter()
        .map(|table| async move {
            let physical = next(table);
            let mut tx = pool.begin().await?;
            // Sorting for a key in memory rather than in temporary files.
            sqlx::query("SET LOCAL maintenance_work_mem = '256MB'")
                .execute(&mut *tx)
                .await?;
            sqlx::query(&table.add_key_sql(&physical))
                .execute(&mut *tx)
                .await?;
            for sql in table.index_sql(&physical) {
                sqlx::query(&sql).execute(&mut *tx).await?;
            }
            for sql in table.isolation_sql(&physical) {
                sqlx::query(&sql).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            sqlx::query(&format!("ANALYZE {physical}"))
                .execute(pool)
                .await?;
            Ok::<_, sqlx::Error>(())
        })
        .collect();
    let built: Vec<Result<(), sqlx::Error>> = futures::stream::iter(builds)
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    for b in built {
        b?;
    }
    Ok(())
}
