//! Rebuilds: every read model folded again from the log, in memory that does not grow
//! with the tenant and on every core (docs/adr/0017-partitioned-rebuild.md).
//!
//! 1. One snapshot of the log is exported; every worker adopts it, so all see the same
//!    events, and the new checkpoint is taken from it.
//! 2. The small aggregates (staff, groups, the tag library) are folded whole, on the
//!    snapshot's own reader; a guide's stores over time are kept for the funnel.
//! 3. The customer streams are split into key ranges, one worker each. A worker reads
//!    its range in primary-key order, so each customer's events arrive together, folds
//!    a batch of whole customers, sends their rows to COPY into `<table>__next` and
//!    drops them.
//! 4. The `__next` tables get their keys and indexes, then replace the live ones in one
//!    short transaction with the checkpoint. Readers keep the old tables until then; an
//!    interrupted rebuild leaves them untouched and simply runs again.
//!
//! A tenant's rebuild replaces that tenant's rows only, in place (see [`swap`]).

mod fold;
pub mod plan;
mod progress;
mod read;
mod swap;
mod write;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

pub use plan::Scope;

use crate::db::Database;
use crate::error::ProjectionError;
use crate::funnel::StaffStores;
use crate::log::{Checkpoint, Row, AGGREGATE_TYPES};
use crate::registry::Projection;
use fold::{Folded, Folder, Models};
use plan::{KeyRange, Slice};
use read::{Reader, Snapshot};

/// What the customer folds may read of the other aggregates, gathered before them.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub staff_stores: Arc<StaffStores>,
}

/// How to rebuild.
#[derive(Debug, Clone)]
pub struct Options {
    /// Workers reading customer streams at once (PostgreSQL; SQLite reads with one).
    pub jobs: usize,
    pub scope: Scope,
    /// Progress bars on a terminal, a log line a few times a minute otherwise.
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            jobs: default_jobs(),
            scope: Scope::All,
            progress: false,
        }
    }
}

/// One worker per core.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What a rebuild did.
#[derive(Debug, Clone)]
pub struct RebuildReport {
    pub name: &'static str,
    pub events: u64,
    pub rows: u64,
    pub checkpoint: Checkpoint,
    /// Customer key ranges read at once.
    pub partitions: usize,
    pub read_and_fold: Duration,
    pub write: Duration,
    pub total: Duration,
}

impl RebuildReport {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.total.as_secs_f64().max(1e-9)
    }
}

/// Rebuilds `p` for every tenant and swaps the result in.
pub async fn rebuild(
    db: &Database,
    p: &'static Projection,
    show_progress: bool,
) -> Result<RebuildReport, ProjectionError> {
    let options = Options {
        progress: show_progress,
        ..Options::default()
    };
    let mut reports = rebuild_with(db, &[p], &options).await?;
    Ok(reports.remove(0))
}

/// Rebuilds every projection from one pass over the log.
pub async fn rebuild_all(
    db: &Database,
    show_progress: bool,
) -> Result<Vec<RebuildReport>, ProjectionError> {
    let options = Options {
        progress: show_progress,
        ..Options::default()
    };
    rebuild_with(db, &all(), &options).await
}

/// Every registered projection.
pub fn all() -> Vec<&'static Projection> {
    crate::registry::ALL.iter().collect()
}

/// Folds the log once into every projection of `set`, then swaps each in. Returns one
/// report per projection; their `total` is the time of the whole run.
pub async fn rebuild_with(
    db: &Database,
    set: &[&'static Projection],
    options: &Options,
) -> Result<Vec<RebuildReport>, ProjectionError> {
    let started = Instant::now();
    if let Database::Postgres(pool) = db {
        if crate::citus::is_citus(pool).await? {
            // The snapshot a rebuild reads under is one node's; on Citus it must be one
            // per worker, with each lane's mark taken from its own (not built yet).
            return Err(ProjectionError::NotOnCitus("rebuilding a projection"));
        }
    }
    let postgres = matches!(db, Database::Postgres(_));
    let jobs = if postgres { options.jobs.max(1) } else { 1 };
    let scope = &options.scope;
    let mut reads: Vec<&'static str> = set.iter().flat_map(|p| p.reads).copied().collect();
    reads.sort_unstable();
    reads.dedup();

    write::create_next(db, set).await?;
    let mut snapshot = Snapshot::take(db).await?;
    let (sample, estimate) = snapshot.sample(scope).await?;
    let ranges = plan::split(&sample, jobs);
    let label = match scope {
        Scope::All => format!("{} projection(s)", set.len()),
        Scope::Tenant(t) => format!("{} projection(s) of tenant {t}", set.len()),
    };
    let total = match progress::known_total(db, scope).await {
        0 => estimate,
        known => known,
    };
    let counters: Vec<Arc<AtomicU64>> = (0..=ranges.len()).map(|_| Arc::default()).collect();
    let shown = progress::Progress::start(&label, total, counters.clone(), options.progress);
    let job = Job {
        db,
        set,
        reads: &reads,
        scope,
        bound: (snapshot.bound, snapshot.bytewise),
    };

    // The staff first: the customer folds read the guides' stores.
    let sampled = started.elapsed();
    let whole = || Models::Whole(set.iter().map(|p| p.empty()).collect());
    let everything = || KeyRange {
        from: None,
        to: None,
    };
    let staff = vec![Slice {
        aggregate_type: "Staff",
        range: everything(),
    }];
    let first = std::mem::replace(&mut snapshot.first, Reader::Closed);
    let (first, staff) = job.run(first, staff, whole(), &counters[0]).await?;
    let context = Context {
        staff_stores: Arc::new(staff.folded.stores.clone()),
    };
    let staff_done = started.elapsed();

    // Then the customers, one worker per key range, and the groups and the tag library
    // beside them, all on the snapshot.
    let others: Vec<Slice> = AGGREGATE_TYPES
        .iter()
        .filter(|t| !["Customer", "Staff"].contains(t))
        .map(|t| Slice {
            aggregate_type: t,
            range: everything(),
        })
        .collect();
    let customers = |range| {
        vec![Slice {
            aggregate_type: "Customer",
            range,
        }]
    };
    let done = if snapshot.id.is_none() {
        // One reader (SQLite): the customers, then the rest, on its one snapshot.
        let per_batch = Models::PerBatch(context.clone());
        let range = everything();
        let (first, c) = job
            .run(first, customers(range), per_batch, &counters[1])
            .await?;
        let (first, o) = job.run(first, others, whole(), &counters[0]).await?;
        first.close().await;
        vec![(Reader::Closed, c), (Reader::Closed, o)]
    } else {
        let mut readers = vec![first];
        while readers.len() < ranges.len() + 1 {
            readers.push(snapshot.adopt(db).await?);
        }
        let others_reader = readers.pop().expect("one reader per worker");
        let mut workers: Vec<_> = readers
            .into_iter()
            .zip(ranges.iter().cloned())
            .zip(&counters[1..])
            .map(|((reader, range), counter)| {
                let per_batch = Models::PerBatch(context.clone());
                job.run(reader, customers(range), per_batch, counter)
            })
            .collect();
        workers.push(job.run(others_reader, others, whole(), &counters[0]));
        futures::future::try_join_all(workers).await?
    };
    let mut tally = staff.folded.tally;
    let mut events = staff.folded.events;
    let mut rows = staff.rows;
    for (reader, w) in done {
        reader.close().await;
        tally.merge(w.folded.tally);
        events += w.folded.events;
        for (table, n) in w.rows {
            *rows.entry(table).or_default() += n;
        }
    }
    let read_and_fold = started.elapsed();
    shown.finish();

    let at = fold::last_of(&tally);
    match scope {
        Scope::All => {
            write::finish_tables(db, set, jobs).await?;
            for p in set {
                swap::swap_all(db, p, at, events as i64, &tally).await?;
            }
        }
        Scope::Tenant(tenant) => {
            for p in set {
                crate::projector::catch_up_to(db, p, at).await?;
                swap::swap_tenant(db, p, tenant, at, &tally).await?;
            }
        }
    }
    let total = started.elapsed();
    tracing::info!(
        label,
        events,
        partitions = ranges.len(),
        plan_seconds = sampled.as_secs_f64(),
        staff_seconds = (staff_done - sampled).as_secs_f64(),
        customers_groups_and_tags_seconds = (read_and_fold - staff_done).as_secs_f64(),
        keys_and_swap_seconds = (total - read_and_fold).as_secs_f64(),
        seconds = total.as_secs_f64(),
        rate = (events as f64 / total.as_secs_f64().max(1e-9)) as u64,
        "rebuilt"
    );
    Ok(set
        .iter()
        .map(|p| RebuildReport {
            name: p.name,
            events,
            rows: p
                .tables
                .iter()
                .map(|(t, _)| rows.get(t.name).copied().unwrap_or(0))
                .sum(),
            checkpoint: at,
            partitions: ranges.len(),
            read_and_fold,
            write: total - read_and_fold,
            total,
        })
        .collect())
}

/// What every worker of one rebuild shares.
struct Job<'a> {
    db: &'a Database,
    set: &'a [&'static Projection],
    reads: &'a [&'static str],
    scope: &'a Scope,
    bound: (plan::Bound, bool),
}

/// What one worker did.
struct Worked {
    folded: Folded,
    rows: BTreeMap<&'static str, u64>,
}

impl Job<'_> {
    /// Reads `slices` on `reader`, folds them on a blocking thread into `models` and
    /// writes the rows on its own connection, all three at once. Gives the reader back.
    async fn run(
        &self,
        mut reader: Reader,
        slices: Vec<Slice>,
        models: Models,
        counter: &Arc<AtomicU64>,
    ) -> Result<(Reader, Worked), ProjectionError> {
        let postgres = matches!(self.db, Database::Postgres(_));
        let (batches, mut next_batch) = mpsc::channel::<Vec<Row>>(2);
        let (chunks, next_chunk) = mpsc::channel(2);
        let mut folder = Folder::new(
            self.set,
            self.reads,
            models,
            postgres,
            chunks,
            counter.clone(),
        );
        let fold = tokio::task::spawn_blocking(move || {
            while let Some(batch) = next_batch.blocking_recv() {
                folder.fold(batch)?;
            }
            folder.finish()
        });
        let read = async {
            let batches = batches;
            for slice in &slices {
                reader.read(slice, self.scope, self.bound, &batches).await?;
            }
            Ok::<_, ProjectionError>(())
        };
        let (read, written) = tokio::join!(read, write::write_chunks(self.db, next_chunk));
        // The first failure is the cause; the others are its echo (a closed channel).
        read?;
        let rows = written?;
        let folded = fold.await.map_err(|e| {
            ProjectionError::Database(sqlx::Error::Protocol(format!("fold: {e}")))
        })??;
        Ok((reader, Worked { folded, rows }))
    }
}
