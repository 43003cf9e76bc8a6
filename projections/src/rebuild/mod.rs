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
use crate::pii::Keys;
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
    let cluster = match db {
        Database::Postgres(pool) => crate::citus::cluster(pool).await?,
        Database::Sqlite(_) => None,
    };
    let postgres = matches!(db, Database::Postgres(_));
    let jobs = if postgres { options.jobs.max(1) } else { 1 };
    let scope = &options.scope;
    let mut reads: Vec<&'static str> = set.iter().flat_map(|p| p.reads).copied().collect();
    reads.sort_unstable();
    reads.dedup();
    let label = match scope {
        Scope::All => format!("{} projection(s)", set.len()),
        Scope::Tenant(t) => format!("{} projection(s) of tenant {t}", set.len()),
    };

    write::create_next(db, set).await?;
    let mut job = Job {
        db,
        set,
        reads: &reads,
        scope,
        bytewise: true,
        label: &label,
        progress: options.progress,
    };
    let read = match &cluster {
        Some(cluster) => job.read_lanes(cluster, jobs).await?,
        None => job.read_one(jobs).await?,
    };
    let read_and_fold = started.elapsed();

    let Worked {
        folded: Folded { tally, events, .. },
        rows,
        read_to,
    } = read.worked;
    let at = fold::last_of(&tally);
    match scope {
        Scope::All => {
            write::finish_tables(db, set, jobs).await?;
            for p in set {
                swap::swap_all(db, p, at, &read.lanes, events as i64, &tally).await?;
            }
        }
        Scope::Tenant(tenant) => {
            for p in set {
                match (db, &cluster) {
                    (Database::Postgres(pool), Some(cluster)) => {
                        crate::projector::catch_up_lanes_to(pool, p, &read_to).await?;
                        swap::swap_tenant_lanes(pool, cluster, p, tenant, &read.lanes, &tally)
                            .await?;
                    }
                    _ => {
                        crate::projector::catch_up_to(db, p, at).await?;
                        swap::swap_tenant(db, p, tenant, at, &tally).await?;
                    }
                }
            }
        }
    }
    let total = started.elapsed();
    tracing::info!(
        label,
        events,
        partitions = read.partitions,
        lanes = read.lanes.len(),
        staff_seconds = read.staff.as_secs_f64(),
        customers_groups_and_tags_seconds = (read_and_fold - read.staff).as_secs_f64(),
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
            partitions: read.partitions,
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
    /// Whether text compares bytewise where the log is read.
    bytewise: bool,
    label: &'a str,
    progress: bool,
}

/// What one worker did.
#[derive(Default)]
struct Worked {
    folded: Folded,
    rows: BTreeMap<&'static str, u64>,
    /// The last row read in each lane (on Citus; lane 0 otherwise), in its order.
    read_to: BTreeMap<i32, Checkpoint>,
}

impl Worked {
    fn merge(&mut self, other: Worked) {
        self.folded.tally.merge(other.folded.tally);
        self.folded.events += other.folded.events;
        for (table, n) in other.rows {
            *self.rows.entry(table).or_default() += n;
        }
        for (lane, last) in other.read_to {
            self.read(lane, last);
        }
    }

    fn read(&mut self, lane: i32, last: Checkpoint) {
        if last > Checkpoint::START {
            let at = self.read_to.entry(lane).or_insert(last);
            *at = (*at).max(last);
        }
    }
}

/// Everything the workers read and folded.
struct Read {
    worked: Worked,
    /// Customer partitions read at once.
    partitions: usize,
    /// On Citus, where each worker's snapshot ends: the lanes' new marks.
    lanes: Vec<(i32, Checkpoint)>,
    /// When the staff were folded (the customers wait for them).
    staff: Duration,
}

/// One reader's share of a worker's work: slices read up to its snapshot's bound.
struct Part {
    /// The Citus worker's node group it reads from (0 on one database).
    lane: i32,
    reader: Reader,
    bound: plan::Bound,
    slices: Vec<Slice>,
}

/// Runs `workers` at once, closes their readers and adds what they did to `worked`.
async fn gather(
    workers: Vec<impl std::future::Future<Output = Result<(Vec<Reader>, Worked), ProjectionError>>>,
    worked: &mut Worked,
) -> Result<(), ProjectionError> {
    for (readers, w) in futures::future::try_join_all(workers).await? {
        for reader in readers {
            reader.close().await;
        }
        worked.merge(w);
    }
    Ok(())
}

fn whole(set: &[&'static Projection]) -> Models {
    Models::Whole(set.iter().map(|p| p.empty()).collect())
}

/// The aggregate types other than the customers and the staff: the groups and the tag
/// library, folded whole beside the customers.
fn others() -> impl Iterator<Item = &'static str> {
    AGGREGATE_TYPES
        .iter()
        .copied()
        .filter(|t| !["Customer", "Staff"].contains(t))
}

impl Job<'_> {
    /// One database: one snapshot, adopted by a reader per key range of customers.
    async fn read_one(&mut self, jobs: usize) -> Result<Read, ProjectionError> {
        let started = Instant::now();
        let db = self.db;
        let scope = self.scope;
        let mut snapshot = Snapshot::take(db).await?;
        self.bytewise = snapshot.bytewise;
        let bound = snapshot.bound;
        let (sample, estimate) = snapshot.sample(scope).await?;
        let ranges = plan::split(&sample, jobs);
        let total = match progress::known_total(db, scope).await {
            0 => estimate,
            known => known,
        };
        let counters: Vec<Arc<AtomicU64>> = (0..=ranges.len()).map(|_| Arc::default()).collect();
        let shown = progress::Progress::start(self.label, total, counters.clone(), self.progress);

        // The staff first: the customer folds read the guides' stores.
        let first = std::mem::replace(&mut snapshot.first, Reader::Closed);
        let part = |reader, slices| Part {
            lane: 0,
            reader,
            bound,
            slices,
        };
        let staff = vec![part(first, vec![Slice::whole("Staff", "events")])];
        let (mut first, staff) = self.run(staff, whole(self.set), &counters[0]).await?;
        let first = first.remove(0);
        let context = Context {
            staff_stores: Arc::new(staff.folded.stores.clone()),
        };
        let staff_done = started.elapsed();

        // Then the customers, one worker per key range, and the groups and the tag
        // library beside them, all on the snapshot.
        let others: Vec<Slice> = others().map(|t| Slice::whole(t, "events")).collect();
        let customers = |range| Slice {
            aggregate_type: "Customer",
            range,
            table: "events".to_string(),
        };
        let mut worked = staff;
        if snapshot.id.is_none() {
            // One reader (SQLite): the customers, then the rest, on its one snapshot.
            let per_batch = Models::PerBatch(context.clone());
            let all = vec![customers(KeyRange {
                from: None,
                to: None,
            })];
            let (mut first, c) = self
                .run(vec![part(first, all)], per_batch, &counters[1])
                .await?;
            let (first, o) = self
                .run(
                    vec![part(first.remove(0), others)],
                    whole(self.set),
                    &counters[0],
                )
                .await?;
            for reader in first {
                reader.close().await;
            }
            worked.merge(c);
            worked.merge(o);
        } else {
            let mut readers = vec![first];
            while readers.len() < ranges.len() + 1 {
                readers.push(snapshot.adopt().await?);
            }
            let others_reader = readers.pop().expect("one reader per worker");
            let mut workers: Vec<_> = readers
                .into_iter()
                .zip(ranges.iter().cloned())
                .zip(&counters[1..])
                .map(|((reader, range), counter)| {
                    let per_batch = Models::PerBatch(context.clone());
                    self.run(
                        vec![part(reader, vec![customers(range)])],
                        per_batch,
                        counter,
                    )
                })
                .collect();
            workers.push(self.run(
                vec![part(others_reader, others)],
                whole(self.set),
                &counters[0],
            ));
            gather(workers, &mut worked).await?;
        }
        shown.finish();
        Ok(Read {
            worked,
            partitions: ranges.len(),
            lanes: Vec::new(),
            staff: staff_done,
        })
    }

    /// Citus: a snapshot on every worker, each read where it was taken, and one partition
    /// per shard of customers (about `jobs` read at once). Each worker's snapshot gives
    /// its lane's new mark, so what commits on a worker during the rebuild is applied by
    /// the projector afterwards, none twice and none lost (docs/adr/0018-citus.md).
    async fn read_lanes(
        &mut self,
        cluster: &crate::citus::Cluster,
        jobs: usize,
    ) -> Result<Read, ProjectionError> {
        let started = Instant::now();
        let mut snapshots = Vec::new();
        for lane in &cluster.lanes {
            let snapshot = Snapshot::take_on(&lane.pool.connect_options()).await?;
            self.bytewise &= snapshot.bytewise;
            snapshots.push(snapshot);
        }
        let lanes: Vec<(i32, Checkpoint)> = cluster
            .lanes
            .iter()
            .zip(&snapshots)
            .map(|(lane, s)| (lane.group, s.bound.last))
            .collect();
        // The cores shared between the workers' shards, at least one reader each.
        let per_lane = jobs.div_ceil(cluster.lanes.len()).max(1);
        let mut groups = Vec::new();
        for (i, lane) in cluster.lanes.iter().enumerate() {
            for g in 0..per_lane.min(lane.shards.len()) {
                let shards: Vec<&String> = lane.shards.iter().skip(g).step_by(per_lane).collect();
                groups.push((i, shards));
            }
        }
        let total = progress::known_total(self.db, self.scope).await;
        let counters: Vec<Arc<AtomicU64>> = (0..=groups.len()).map(|_| Arc::default()).collect();
        let shown = progress::Progress::start(self.label, total, counters.clone(), self.progress);
        let slices = |t: &'static str, lane: &crate::citus::Lane| -> Vec<Slice> {
            lane.shards.iter().map(|s| Slice::whole(t, s)).collect()
        };

        // The staff first, from every worker into one fold.
        let staff_parts = snapshots
            .iter_mut()
            .zip(&cluster.lanes)
            .map(|(s, lane)| Part {
                lane: lane.group,
                reader: std::mem::replace(&mut s.first, Reader::Closed),
                bound: s.bound,
                slices: slices("Staff", lane),
            })
            .collect();
        let (firsts, staff) = self.run(staff_parts, whole(self.set), &counters[0]).await?;
        let context = Context {
            staff_stores: Arc::new(staff.folded.stores.clone()),
        };
        let staff_done = started.elapsed();

        // The customers, a group of one worker's shards per reader, and the groups and the
        // tag library from every worker beside them.
        let mut workers = Vec::new();
        for ((i, shards), counter) in groups.iter().zip(&counters[1..]) {
            let snapshot = &snapshots[*i];
            let part = Part {
                lane: cluster.lanes[*i].group,
                reader: snapshot.adopt().await?,
                bound: snapshot.bound,
                slices: shards.iter().map(|s| Slice::whole("Customer", s)).collect(),
            };
            let per_batch = Models::PerBatch(context.clone());
            workers.push(self.run(vec![part], per_batch, counter));
        }
        let other_parts = firsts
            .into_iter()
            .zip(&snapshots)
            .zip(&cluster.lanes)
            .map(|((reader, s), lane)| Part {
                lane: lane.group,
                reader,
                bound: s.bound,
                slices: others().flat_map(|t| slices(t, lane)).collect(),
            })
            .collect();
        workers.push(self.run(other_parts, whole(self.set), &counters[0]));
        let mut worked = staff;
        gather(workers, &mut worked).await?;
        shown.finish();
        Ok(Read {
            worked,
            partitions: cluster.lanes.iter().map(|l| l.shards.len()).sum(),
            lanes,
            staff: staff_done,
        })
    }

    /// Reads each part's slices on its reader, folds them on a blocking thread into
    /// `models` and writes the rows on its own connection, all three at once. Gives the
    /// readers back.
    async fn run(
        &self,
        mut parts: Vec<Part>,
        models: Models,
        counter: &Arc<AtomicU64>,
    ) -> Result<(Vec<Reader>, Worked), ProjectionError> {
        let postgres = matches!(self.db, Database::Postgres(_));
        let (batches, mut raw_batch) = mpsc::channel::<Vec<Row>>(2);
        let (keyed, mut next_batch) = mpsc::channel::<(Vec<Row>, Keys)>(2);
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
            while let Some((batch, keys)) = next_batch.blocking_recv() {
                folder.fold(batch, &keys)?;
            }
            folder.finish()
        });
        let mut read_to = Worked::default();
        let read = async {
            let batches = batches;
            for part in &mut parts {
                for slice in &part.slices {
                    let snapshot = (part.bound, self.bytewise);
                    let last = part
                        .reader
                        .read(slice, self.scope, snapshot, &batches)
                        .await?;
                    read_to.read(part.lane, last);
                }
            }
            Ok::<_, ProjectionError>(())
        };
        // Keys are read as they are now, not in the snapshot: a customer erased during
        // the rebuild is erased in what it builds.
        let key = async {
            while let Some(batch) = raw_batch.recv().await {
                let keys =
                    crate::pii::keys::fetch(self.db, &crate::pii::streams_to_open(&batch)).await?;
                if keyed.send((batch, keys)).await.is_err() {
                    break; // the fold stopped; it reports why
                }
            }
            drop(keyed);
            Ok::<_, ProjectionError>(())
        };
        let (read, keyed, written) =
            tokio::join!(read, key, write::write_chunks(self.db, next_chunk));
        // The first failure is the cause; the others are its echo (a closed channel).
        read?;
        keyed?;
        let rows = written?;
        let folded = fold.await.map_err(|e| {
            ProjectionError::Database(sqlx::Error::Protocol(format!("fold: {e}")))
        })??;
        let readers = parts.into_iter().map(|p| p.reader).collect();
        Ok((
            readers,
            Worked {
                folded,
                rows,
                read_to: read_to.read_to,
            },
        ))
    }
}
