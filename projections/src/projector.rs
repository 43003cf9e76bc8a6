//! The durable catch-up projector. Each projection reads the global order from its own
//! checkpoint and commits its rows and the new checkpoint in one transaction, so a crash
//! repeats nothing and loses nothing. Wakes on PostgreSQL NOTIFY (or an in-process
//! signal on SQLite) and polls once a second as a safety net.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{watch, Notify};

use crate::db::Database;
use crate::error::ProjectionError;
use crate::failures::Failure;
use crate::log::Checkpoint;
use crate::model::ReadModel;
use crate::on_pool;
use crate::registry::{Projection, ALL};
use crate::sql::CheckpointRow;

/// Events applied per transaction.
pub const BATCH: i64 = 1_000;

/// Where a projection stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub name: &'static str,
    pub code_version: i64,
    pub stored_version: Option<i64>,
    pub checkpoint: Checkpoint,
    pub events_applied: i64,
    /// Events not yet applied, counted up to 100,000.
    pub events_behind: i64,
    /// Age of the oldest event not yet applied (0 when caught up).
    pub seconds_behind: f64,
    /// Why it is stopped, when it is.
    pub failure: Option<Failure>,
}

/// Creates each projection's tables and checkpoint if missing. Returns the projections
/// whose tables were built by another code version: they need a rebuild.
pub async fn prepare(db: &Database) -> Result<Vec<&'static Projection>, ProjectionError> {
    let mut stale = Vec::new();
    for p in ALL {
        let postgres = matches!(db, Database::Postgres(_));
        let stored = on_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            let row: Option<(i64,)> =
                sqlx::query_as("SELECT version FROM projection_checkpoints WHERE name = $1")
                    .bind(p.name)
                    .fetch_optional(&mut *tx)
                    .await?;
            // Tables another version built keep their shape until the rebuild replaces
            // them: an index of this version may name columns they lack.
            let current = row.is_none_or(|(v,)| v == p.version);
            for (table, _) in p.tables {
                sqlx::query(&table.create_sql(table.name, postgres))
                    .execute(&mut *tx)
                    .await?;
                if !current {
                    continue;
                }
                for sql in table.index_sql(table.name) {
                    sqlx::query(&sql).execute(&mut *tx).await?;
                }
                if postgres {
                    for sql in table.isolation_sql(table.name) {
                        sqlx::query(&sql).execute(&mut *tx).await?;
                    }
                }
            }
            if row.is_none() {
                sqlx::query("INSERT INTO projection_checkpoints (name, version) VALUES ($1, $2)")
                    .bind(p.name)
                    .bind(p.version)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(row.map(|r| r.0))
        })?;
        if stored.is_some_and(|v| v != p.version) {
            stale.push(p);
        }
    }
    Ok(stale)
}

macro_rules! step_impl {
    ($m:ident, $model:ty, $pool:expr, $limit:expr) => {{
        use crate::sql::$m::{add_tenant_progress, lock_checkpoint, read_after, save_checkpoint};
        let mut tx = $pool.begin().await?;
        let name = <$model as ReadModel>::NAME;
        let Some((version, at, applied)): Option<CheckpointRow> =
            lock_checkpoint(&mut tx, name).await?
        else {
            return Err(ProjectionError::NotPrepared(name));
        };
        if version != <$model as ReadModel>::VERSION {
            return Err(ProjectionError::NeedsRebuild(name));
        }
        let page = read_after(&mut *tx, at, $limit, <$model as ReadModel>::READS).await?;
        let Some(last) = page.last else {
            tx.rollback().await?;
            return Ok(0);
        };
        if !page.events.is_empty() {
            let touched = <$model as ReadModel>::touched(&page.events);
            let mut model: $model = crate::model::$m::load(&mut *tx, &touched).await?;
            for e in &page.events {
                model.apply(e);
            }
            crate::model::$m::replace(&mut *tx, &model, &touched).await?;
            let changes = crate::announce::changes(&page.events, <$model as ReadModel>::ANNOUNCES);
            crate::announce::$m(&mut *tx, &changes).await?;
        }
        save_checkpoint(&mut tx, name, version, last, applied + page.rows()).await?;
        add_tenant_progress(&mut tx, name, &page.tally).await?;
        tx.commit().await?;
        Ok(page.rows() as usize)
    }};
}

pub(crate) async fn step_model<M: ReadModel>(
    db: &Database,
    limit: i64,
) -> Result<usize, ProjectionError> {
    match db {
        Database::Postgres(pool) => match crate::citus::cluster(pool).await? {
            Some(cluster) => step_lanes::<M>(pool, &cluster, limit).await,
            None => step_impl!(pg, M, pool, limit),
        },
        Database::Sqlite(pool) => step_impl!(lite, M, pool, limit),
    }
}

/// [`step_model`] on Citus: a page from each worker's lane, applied in one transaction
/// with each lane's new mark. The lock on the projection's checkpoint row keeps a second
/// projector from reading the same pages. The deployment-wide checkpoint stays where it
/// is: on Citus there is no single position in the log.
async fn step_lanes<M: ReadModel>(
    pool: &sqlx::PgPool,
    cluster: &crate::citus::Cluster,
    limit: i64,
) -> Result<usize, ProjectionError> {
    use crate::sql::pg::{add_tenant_progress, lock_checkpoint, save_checkpoint};
    let mut tx = pool.begin().await?;
    let name = M::NAME;
    let Some((version, at, applied)) = lock_checkpoint(&mut tx, name).await? else {
        return Err(ProjectionError::NotPrepared(name));
    };
    if version != M::VERSION {
        return Err(ProjectionError::NeedsRebuild(name));
    }
    let marks = crate::citus::marks(&mut tx, name).await?;
    let (page, moved) = crate::citus::read_lanes(cluster, &mut tx, &marks, limit, M::READS).await?;
    if moved.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    if !page.events.is_empty() {
        let touched = M::touched(&page.events);
        let mut model: M = crate::model::pg::load(&mut tx, &touched).await?;
        for e in &page.events {
            model.apply(e);
        }
        crate::model::pg::replace(&mut tx, &model, &touched).await?;
        crate::announce::pg(
            &mut tx,
            &crate::announce::changes(&page.events, M::ANNOUNCES),
        )
        .await?;
    }
    for (lane, last) in moved {
        crate::citus::save_mark(&mut tx, name, lane, last).await?;
    }
    save_checkpoint(&mut tx, name, version, at, applied + page.rows()).await?;
    add_tenant_progress(&mut tx, name, &page.tally).await?;
    tx.commit().await?;
    Ok(page.rows() as usize)
}

/// Applies at most `limit` events to `p` in one transaction. Returns how many.
pub async fn step(db: &Database, p: &Projection, limit: i64) -> Result<usize, ProjectionError> {
    p.step(db, limit).await
}

/// How long [`catch_up`] waits for older transactions (anywhere on the server: xids are
/// cluster-wide) to end before it gives up.
pub const CATCH_UP_DEADLINE: Duration = Duration::from_secs(60);

/// Applies everything committed before the call to every projection. The reader never
/// passes a transaction still running, so this waits for those to end. A projection
/// that fails is recorded ([`crate::failures`]) and the others go on; the first
/// failure is returned after all have had their turn.
pub async fn catch_up(db: &Database) -> Result<usize, ProjectionError> {
    let started = std::time::Instant::now();
    let mut total = 0;
    let mut first_failure = None;
    for p in ALL {
        match catch_up_one(db, p, started).await {
            Ok(n) => {
                total += n;
                crate::failures::clear(db, p.name).await?;
            }
            Err(error) => {
                let at = checkpoint(db, p).await.unwrap_or(Checkpoint::START);
                match crate::failures::record(db, p.name, at, &error).await {
                    // Once when it stops, not at every retry.
                    Ok(1) => {
                        tracing::error!(projection = p.name, %error, "projection stopped; the others go on")
                    }
                    Ok(attempts) => {
                        tracing::debug!(projection = p.name, attempts, %error, "projection still stopped")
                    }
                    Err(e) => {
                        tracing::error!(projection = p.name, %error, record = %e, "projection stopped and could not be recorded")
                    }
                }
                first_failure.get_or_insert(error);
            }
        }
    }
    match first_failure {
        Some(error) => Err(error),
        None => Ok(total),
    }
}

async fn catch_up_one(
    db: &Database,
    p: &Projection,
    started: std::time::Instant,
) -> Result<usize, ProjectionError> {
    let mut total = 0;
    loop {
        let n = step(db, p, BATCH).await?;
        total += n;
        if n > 0 {
            continue;
        }
        if !behind(db, p).await? {
            return Ok(total);
        }
        if started.elapsed() > CATCH_UP_DEADLINE {
            return Err(ProjectionError::Stalled(p.name));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Steps `p` until its checkpoint is at or past `at` (a tenant's rebuild read up to
/// `at`, and its rows replace the tenant's only once the projector is there too).
pub async fn catch_up_to(
    db: &Database,
    p: &Projection,
    at: Checkpoint,
) -> Result<(), ProjectionError> {
    let started = std::time::Instant::now();
    while checkpoint(db, p).await? < at {
        if step(db, p, BATCH).await? == 0 {
            if started.elapsed() > CATCH_UP_DEADLINE {
                return Err(ProjectionError::Stalled(p.name));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

/// [`catch_up_to`] on Citus: until the projection's mark in each lane is at or past
/// that lane's entry of `targets`.
pub async fn catch_up_lanes_to(
    pool: &sqlx::PgPool,
    p: &Projection,
    targets: &std::collections::BTreeMap<i32, Checkpoint>,
) -> Result<(), ProjectionError> {
    let started = std::time::Instant::now();
    loop {
        let marks = crate::citus::marks(&mut *pool.acquire().await?, p.name).await?;
        let behind = targets
            .iter()
            .any(|(lane, target)| marks.get(lane).is_none_or(|mark| mark < target));
        if !behind {
            return Ok(());
        }
        if p.step(&Database::Postgres(pool.clone()), BATCH).await? == 0 {
            if started.elapsed() > CATCH_UP_DEADLINE {
                return Err(ProjectionError::Stalled(p.name));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn checkpoint(db: &Database, p: &Projection) -> Result<Checkpoint, ProjectionError> {
    let row: Option<(i64, i64)> = on_pool!(db, |pool| {
        sqlx::query_as("SELECT txid, position FROM projection_checkpoints WHERE name = $1")
            .bind(p.name)
            .fetch_optional(pool)
            .await
    })?;
    Ok(
        row.map_or(Checkpoint::START, |(txid, position)| Checkpoint {
            txid,
            position,
        }),
    )
}

/// Waits until projection `name` has applied event `sequence` of stream `aggregate_id`
/// (read your writes), polling every few milliseconds up to `timeout`. Returns whether
/// it did. The event is found by its primary key: `position` alone has no index.
pub async fn wait_for(
    db: &Database,
    name: &str,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
    timeout: Duration,
) -> Result<bool, ProjectionError> {
    let sql = match db {
        Database::Postgres(_) => {
            "SELECT count(*) FROM events e, projection_checkpoints c WHERE c.name = $1 \
             AND e.aggregate_type = $2 AND e.aggregate_id = $3 AND e.sequence = $4 \
             AND (e.txid, e.position) <= (c.txid::text::xid8, c.position)"
        }
        Database::Sqlite(_) => {
            "SELECT count(*) FROM events e, projection_checkpoints c WHERE c.name = $1 \
             AND e.aggregate_type = $2 AND e.aggregate_id = $3 AND e.sequence = $4 \
             AND e.position <= c.position"
        }
    };
    let started = std::time::Instant::now();
    if let Database::Postgres(pool) = db {
        if crate::citus::cluster(pool).await?.is_some() {
            loop {
                if crate::citus::applied(pool, name, aggregate_type, aggregate_id, sequence).await?
                {
                    return Ok(true);
                }
                if started.elapsed() >= timeout {
                    return Ok(false);
                }
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        }
    }
    loop {
        let done: i64 = on_pool!(db, |pool| {
            sqlx::query_scalar(sql)
                .bind(name)
                .bind(aggregate_type)
                .bind(aggregate_id)
                .bind(sequence)
                .fetch_one(pool)
                .await
        })?;
        if done > 0 {
            return Ok(true);
        }
        if started.elapsed() >= timeout {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

/// Whether any committed event lies after `p`'s checkpoint. Written as a count joined
/// to the checkpoint table this was a sequential scan of the whole log, which on the
/// bench scale (11.8 M events) kept one core busy while the server was otherwise idle.
async fn behind(db: &Database, p: &Projection) -> Result<bool, ProjectionError> {
    if let Database::Postgres(pool) = db {
        if let Some(cluster) = crate::citus::cluster(pool).await? {
            return Ok(crate::citus::lag(pool, &cluster, p.name, None).await?.0 > 0);
        }
    }
    let checkpoint: Option<(i64, i64)> = on_pool!(db, |pool| {
        sqlx::query_as("SELECT txid, position FROM projection_checkpoints WHERE name = $1")
            .bind(p.name)
            .fetch_optional(pool)
            .await
    })?;
    let Checkpoint { txid, position } = match checkpoint {
        Some((txid, position)) => Checkpoint { txid, position },
        None => Checkpoint::START,
    };
    let sql = match db {
        Database::Postgres(_) => {
            // ORDER BY .. LIMIT 1, not EXISTS: the planner guesses a row comparison
            // matches half the table and scans it all; ordered, it must walk the index.
            "SELECT count(*) > 0 FROM (SELECT 1 FROM events \
             WHERE (txid, position) > ($1::bigint::text::xid8, $2) \
             ORDER BY txid, position LIMIT 1) next"
        }
        Database::Sqlite(_) => {
            "SELECT EXISTS (SELECT 1 FROM events WHERE $1 = $1 AND position > $2)"
        }
    };
    Ok(on_pool!(db, |pool| {
        sqlx::query_scalar::<_, bool>(sql)
            .bind(txid)
            .bind(position)
            .fetch_one(pool)
            .await
    })?)
}

/// Runs the projector until `shutdown` turns true. `wake` is signalled by in-process
/// writers; on PostgreSQL a LISTEN on `scrm_events` signals it too.
pub async fn run(
    db: Database,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ProjectionError> {
    if let Database::Postgres(pool) = &db {
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen("scrm_events").await?;
        let wake = wake.clone();
        tokio::spawn(async move {
            while listener.recv().await.is_ok() {
                wake.notify_one();
            }
        });
    }
    loop {
        if let Err(error) = catch_up(&db).await {
            // `catch_up` logged the projection that stopped when it stopped; the others
            // have gone on.
            tracing::debug!(%error, "a projection is stopped; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            return Ok(());
        }
    }
}

/// Checkpoint, version and lag of every projection, for the whole deployment.
pub async fn status(db: &Database) -> Result<Vec<Status>, ProjectionError> {
    let mut out = Vec::new();
    for p in ALL {
        let row: Option<(i64, i64, i64, i64)> = on_pool!(db, |pool| {
            sqlx::query_as("SELECT version, txid, position, events FROM projection_checkpoints WHERE name = $1")
                .bind(p.name)
                .fetch_optional(pool)
                .await
        })?;
        let (stored_version, checkpoint, applied) = match row {
            Some((v, txid, position, events)) => (Some(v), Checkpoint { txid, position }, events),
            None => (None, Checkpoint::START, 0),
        };
        let (behind, oldest) = lag(db, p.name, checkpoint, None).await?;
        out.push(Status {
            name: p.name,
            code_version: p.version,
            stored_version,
            checkpoint,
            events_applied: applied,
            events_behind: behind,
            seconds_behind: age(oldest),
            failure: crate::failures::of(db, p.name).await?,
        });
    }
    Ok(out)
}

/// The same for one tenant: its own events applied, the last of them, and its events
/// among those not yet applied. Nothing about other tenants' volume shows.
pub async fn tenant_status(db: &Database, tenant: &str) -> Result<Vec<Status>, ProjectionError> {
    let mut out = Vec::new();
    for p in ALL {
        let deployment: Option<(i64, i64, i64)> = on_pool!(db, |pool| {
            sqlx::query_as(
                "SELECT version, txid, position FROM projection_checkpoints WHERE name = $1",
            )
            .bind(p.name)
            .fetch_optional(pool)
            .await
        })?;
        let own: Option<(i64, i64, i64)> = on_pool!(db, |pool| {
            sqlx::query_as(
                "SELECT txid, position, events FROM projection_tenant_progress \
                 WHERE name = $1 AND tenant_id = $2",
            )
            .bind(p.name)
            .bind(tenant)
            .fetch_optional(pool)
            .await
        })?;
        let (stored_version, global) = match deployment {
            Some((v, txid, position)) => (Some(v), Checkpoint { txid, position }),
            None => (None, Checkpoint::START),
        };
        let (own, applied) = match own {
            Some((txid, position, events)) => (Checkpoint { txid, position }, events),
            None => (Checkpoint::START, 0),
        };
        let (behind, oldest) = lag(db, p.name, global, Some(tenant)).await?;
        out.push(Status {
            name: p.name,
            code_version: p.version,
            stored_version,
            checkpoint: own,
            events_applied: applied,
            events_behind: behind,
            seconds_behind: age(oldest),
            failure: crate::failures::of(db, p.name).await?,
        });
    }
    Ok(out)
}

fn age(oldest: Option<DateTime<Utc>>) -> f64 {
    oldest.map_or(0.0, |t| (Utc::now() - t).num_milliseconds() as f64 / 1000.0)
}

/// Events after `checkpoint` (of `tenant` only, when given) and the oldest one's time.
/// Counted among the first 100,000 along the global-order index, so a caught-up status
/// costs an index probe, not a scan of the log.
async fn lag(
    db: &Database,
    name: &str,
    checkpoint: Checkpoint,
    tenant: Option<&str>,
) -> Result<(i64, Option<DateTime<Utc>>), ProjectionError> {
    if let Database::Postgres(pool) = db {
        if let Some(cluster) = crate::citus::cluster(pool).await? {
            return crate::citus::lag(pool, &cluster, name, tenant).await;
        }
    }
    Ok(match db {
        Database::Postgres(pool) => sqlx::query_as(
            "SELECT count(*), min(recorded_at) FROM (SELECT tenant_id, recorded_at FROM events \
                 WHERE (txid, position) > ($1::bigint::text::xid8, $2) \
                 ORDER BY txid, position LIMIT 100000) behind \
                 WHERE $3::text IS NULL OR tenant_id = $3::text",
        )
        .bind(checkpoint.txid)
        .bind(checkpoint.position)
        .bind(tenant)
        .fetch_one(pool)
        .await?,
        Database::Sqlite(pool) => {
            let (n, oldest): (i64, Option<String>) = sqlx::query_as(
                "SELECT count(*), min(recorded_at) FROM (SELECT tenant_id, recorded_at FROM events \
                 WHERE position > $1 ORDER BY position LIMIT 100000) \
                 WHERE $2 IS NULL OR tenant_id = $2",
            )
            .bind(checkpoint.position)
            .bind(tenant)
            .fetch_one(pool)
            .await?;
            (
                n,
                oldest
                    .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                    .map(|t| t.with_timezone(&Utc)),
            )
        }
    })
}
