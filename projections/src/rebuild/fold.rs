//! Folding what one worker reads into rows for the `__next` tables. Runs on a blocking
//! thread: parsing and folding are the rebuild's CPU work, and the server's runtime
//! keeps answering while a rebuild runs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::Context;
use crate::error::ProjectionError;
use crate::funnel::StaffStores;
use crate::log::{page_of, AnyEvent, Checkpoint, Row};
use crate::registry::{Fold, Projection};
use crate::table::{copy_row_binary, Table, Val, COPY_BINARY_HEADER, COPY_BINARY_TRAILER};
use crate::tally::TenantTally;

/// Bytes of COPY text (or rows, on SQLite) gathered per table before they are sent.
const CHUNK_BYTES: usize = 4 << 20;
const CHUNK_ROWS: usize = 10_000;

/// Rows for one `__next` table, ready for the writer.
pub enum Chunk {
    /// One whole binary COPY (PostgreSQL), and its row count.
    Copy(&'static Table, Vec<u8>, u64),
    /// Values for multi-row INSERTs (SQLite).
    Rows(&'static Table, Vec<Vec<Val>>),
}

/// Where one table's rows gather until a chunk is full.
enum Pending {
    Copy(Vec<u8>, u64),
    Rows(Vec<Vec<Val>>),
}

/// What a worker read and folded.
#[derive(Debug, Default)]
pub struct Folded {
    pub tally: TenantTally,
    pub events: u64,
    /// The guides' stores over time, gathered by the pass over the other aggregates.
    pub stores: StaffStores,
}

/// Which models a worker folds into.
pub enum Models {
    /// One model per projection held for the whole pass, emitted at its end: the small
    /// aggregates (staff, groups, the tag library).
    Whole(Vec<Box<dyn Fold>>),
    /// Fresh models per batch of whole customers, emitted and dropped after each batch,
    /// so memory does not grow with the tenant.
    PerBatch(Context),
}

pub struct Folder {
    set: Vec<&'static Projection>,
    reads: Vec<&'static str>,
    models: Models,
    postgres: bool,
    pending: Vec<(&'static Table, Pending)>,
    out: mpsc::Sender<Chunk>,
    done: Folded,
    progress: Arc<AtomicU64>,
}

impl Folder {
    pub fn new(
        set: &[&'static Projection],
        reads: &[&'static str],
        models: Models,
        postgres: bool,
        out: mpsc::Sender<Chunk>,
        progress: Arc<AtomicU64>,
    ) -> Self {
        Self {
            set: set.to_vec(),
            reads: reads.to_vec(),
            models,
            postgres,
            pending: Vec::new(),
            out,
            done: Folded::default(),
            progress,
        }
    }

    /// Folds one batch of rows. With per-batch models the batch must hold whole
    /// streams (the reader cuts between streams).
    pub fn fold(&mut self, rows: Vec<Row>, keys: &crate::pii::Keys) -> Result<(), ProjectionError> {
        let page = page_of(rows, &self.reads, keys)?;
        let n = page.rows() as u64;
        self.done.tally.merge(page.tally);
        self.done.events += n;
        match &mut self.models {
            Models::Whole(models) => {
                for e in &page.events {
                    if matches!(e.event, AnyEvent::Staff(_)) {
                        self.done.stores.apply(e);
                    }
                    for m in models.iter_mut() {
                        m.apply(e);
                    }
                }
            }
            Models::PerBatch(context) => {
                let mut models: Vec<_> =
                    self.set.iter().map(|p| p.for_customers(context)).collect();
                for e in &page.events {
                    for m in models.iter_mut() {
                        m.apply(e);
                    }
                }
                self.emit(models)?;
            }
        }
        self.progress.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// Emits what is still held and sends every partly filled chunk.
    pub fn finish(mut self) -> Result<Folded, ProjectionError> {
        if let Models::Whole(models) =
            std::mem::replace(&mut self.models, Models::Whole(Vec::new()))
        {
            self.emit(models)?;
        }
        for (table, pending) in std::mem::take(&mut self.pending) {
            self.send(table, pending)?;
        }
        Ok(self.done)
    }

    fn emit(&mut self, models: Vec<Box<dyn Fold>>) -> Result<(), ProjectionError> {
        for (p, model) in self.set.clone().into_iter().zip(models) {
            let mut rows = model.rows();
            drop(model);
            for (table, _) in p.tables {
                for row in rows.take(table) {
                    self.push(table, row)?;
                }
            }
            debug_assert!(
                rows.tables().is_empty(),
                "{} holds rows of undeclared tables {:?}",
                p.name,
                rows.tables()
            );
        }
        Ok(())
    }

    fn push(&mut self, table: &'static Table, row: Vec<Val>) -> Result<(), ProjectionError> {
        let at = match self.pending.iter().position(|(t, _)| t.name == table.name) {
            Some(at) => at,
            None => {
                let empty = if self.postgres {
                    let mut buf = Vec::with_capacity(CHUNK_BYTES + (64 << 10));
                    buf.extend_from_slice(COPY_BINARY_HEADER);
                    Pending::Copy(buf, 0)
                } else {
                    Pending::Rows(Vec::new())
                };
                self.pending.push((table, empty));
                self.pending.len() - 1
            }
        };
        let full = match &mut self.pending[at].1 {
            Pending::Copy(buf, rows) => {
                copy_row_binary(buf, &row);
                *rows += 1;
                buf.len() >= CHUNK_BYTES
            }
            Pending::Rows(rows) => {
                rows.push(row);
                rows.len() >= CHUNK_ROWS
            }
        };
        if full {
            let (table, pending) = self.pending.swap_remove(at);
            self.send(table, pending)?;
        }
        Ok(())
    }

    fn send(&self, table: &'static Table, pending: Pending) -> Result<(), ProjectionError> {
        let chunk = match pending {
            Pending::Copy(_, 0) => return Ok(()),
            Pending::Rows(rows) if rows.is_empty() => return Ok(()),
            Pending::Copy(mut buf, rows) => {
                buf.extend_from_slice(COPY_BINARY_TRAILER);
                Chunk::Copy(table, buf, rows)
            }
            Pending::Rows(rows) => Chunk::Rows(table, rows),
        };
        // The writer went away: it failed, and says why through its own result.
        self.out
            .blocking_send(chunk)
            .map_err(|_| ProjectionError::Database(sqlx::Error::WorkerCrashed))
    }
}

/// The last checkpoint of a tally: where a rebuild that read it ends.
pub fn last_of(tally: &TenantTally) -> Checkpoint {
    tally
        .iter()
        .map(|(_, _, at)| at)
        .max()
        .unwrap_or(Checkpoint::START)
}
