//! The log on Citus (docs/adr/0018-citus.md). `events` is distributed by stream over the
//! workers, and each worker commits its own transactions: a row becomes visible when the
//! worker that holds it commits, which for a two-phase commit is after the coordinator
//! has. No order that spans workers can therefore be read without missing rows. The
//! reader keeps one order per worker instead (a *lane*): rows carry the worker's own
//! transaction id (a trigger on the shards sets it), and a lane is read on the worker,
//! under the worker's own snapshot, exactly as the single-node reader reads the log.
//!
//! Every stream lives on one shard, so a stream's events stay in order within its lane;
//! projections fold streams and never need an order between lanes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::error::ProjectionError;
use crate::log::{Checkpoint, Page, Row};

/// The statements that distribute a migrated schema (run by `Database::migrate`).
pub const DISTRIBUTE_SQL: &str = include_str!("../../migrations/citus/distribute.sql");

/// The statements of `sql`, split at each `;` that ends a line outside a `$$` body.
pub fn statements(sql: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut offset, mut in_body) = (0, 0, false);
    for line in sql.split_inclusive('\n') {
        in_body ^= line.matches("$$").count() % 2 == 1;
        offset += line.len();
        if !in_body && line.trim_end().ends_with(';') {
            out.push(sql[start..offset].trim());
            start = offset;
        }
    }
    out.push(sql[start..].trim());
    out.retain(|s| {
        s.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
    });
    out
}

/// One worker's share of the log.
#[derive(Debug)]
pub struct Lane {
    /// The worker's node group in `pg_dist_node`: stable across restarts.
    pub group: i32,
    pub pool: PgPool,
    /// The shards of `events` this worker holds, each a table on the worker.
    pub shards: Vec<String>,
    /// All of them as one relation.
    union: String,
}

/// The workers of a Citus coordinator.
#[derive(Debug)]
pub struct Cluster {
    pub lanes: Vec<Lane>,
}

/// Whether the database behind `pool` is a Citus coordinator. Asked once per database.
pub async fn is_citus(pool: &PgPool) -> Result<bool, sqlx::Error> {
    static SEEN: OnceLock<Mutex<HashMap<String, bool>>> = OnceLock::new();
    let key = key(pool);
    let seen = SEEN.get_or_init(Default::default);
    if let Some(known) = seen.lock().expect("not poisoned").get(&key) {
        return Ok(*known);
    }
    let citus: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")
            .fetch_one(pool)
            .await?;
    seen.lock().expect("not poisoned").insert(key, citus);
    Ok(citus)
}

/// The lanes of the Citus database behind `pool`, or `None` on a single PostgreSQL.
/// Found once per database and kept: moving shards between workers needs a restart (and
/// the lanes' checkpoints of the moved shards' projections rebuilt: a worker's
/// transaction ids mean nothing on another worker).
pub async fn cluster(pool: &PgPool) -> Result<Option<Arc<Cluster>>, ProjectionError> {
    static CLUSTERS: OnceLock<tokio::sync::Mutex<HashMap<String, Arc<Cluster>>>> = OnceLock::new();
    if !is_citus(pool).await? {
        return Ok(None);
    }
    let clusters = CLUSTERS.get_or_init(Default::default);
    let mut clusters = clusters.lock().await;
    let key = key(pool);
    if let Some(found) = clusters.get(&key) {
        return Ok(Some(found.clone()));
    }
    let placements: Vec<(i32, String, i32, Vec<String>)> = sqlx::query_as(
        "SELECT n.groupid, n.nodename, n.nodeport, \
                array_agg(shard_name('events'::regclass, s.shardid) ORDER BY s.shardid) \
           FROM pg_dist_shard s \
           JOIN pg_dist_placement p USING (shardid) \
           JOIN pg_dist_node n USING (groupid) \
          WHERE s.logicalrelid = 'events'::regclass AND n.noderole = 'primary' \
          GROUP BY 1, 2, 3 ORDER BY 1",
    )
    .fetch_all(pool)
    .await?;
    if placements.is_empty() {
        // Not distributed yet (before `migrate`): nothing to keep.
        return Err(ProjectionError::NotDistributed);
    }
    let options = pool.connect_options();
    let mut lanes = Vec::new();
    for (group, host, port, shards) in placements {
        let worker = (*options).clone().host(&host).port(port as u16);
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(worker)
            .await?;
        let union = shards
            .iter()
            .map(|s| {
                format!(
                    "SELECT txid, position, aggregate_type, aggregate_id, sequence, payload, \
                     tenant_id, recorded_at FROM {s}"
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        lanes.push(Lane {
            group,
            pool,
            shards,
            union: format!("({union})"),
        });
    }
    let found = Arc::new(Cluster { lanes });
    clusters.insert(key, found.clone());
    Ok(Some(found))
}

fn key(pool: &PgPool) -> String {
    let o = pool.connect_options();
    format!(
        "{}:{}/{}",
        o.get_host(),
        o.get_port(),
        o.get_database().unwrap_or_default()
    )
}

impl Lane {
    /// Up to `limit` rows after `after` in this worker's order, of transactions older than
    /// every one still running on it (the single-node rule, where the rows live).
    pub async fn read_after(
        &self,
        after: Checkpoint,
        limit: i64,
    ) -> Result<Vec<Row>, ProjectionError> {
        let sql = format!(
            "SELECT e.txid::text::bigint, e.position, e.aggregate_type, e.aggregate_id, \
                    e.sequence, e.payload::text \
               FROM {} e \
              WHERE (e.txid, e.position) > ($1::bigint::text::xid8, $2) \
                AND e.txid < pg_snapshot_xmin(pg_current_snapshot()) \
              ORDER BY e.txid, e.position LIMIT $3",
            self.union
        );
        let rows: Vec<Row> = sqlx::query_as(&sql)
            .bind(after.txid)
            .bind(after.position)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows)
    }

    /// Rows after `after` (of `tenant` only, when given), counted up to 100,000, and the
    /// oldest one's time.
    async fn lag(
        &self,
        after: Checkpoint,
        tenant: Option<&str>,
    ) -> Result<(i64, Option<DateTime<Utc>>), ProjectionError> {
        let sql = format!(
            "SELECT count(*), min(recorded_at) FROM (SELECT e.tenant_id, e.recorded_at \
               FROM {} e WHERE (e.txid, e.position) > ($1::bigint::text::xid8, $2) \
              ORDER BY e.txid, e.position LIMIT 100000) behind \
              WHERE $3::text IS NULL OR tenant_id = $3::text",
            self.union
        );
        Ok(sqlx::query_as(&sql)
            .bind(after.txid)
            .bind(after.position)
            .bind(tenant)
            .fetch_one(&self.pool)
            .await?)
    }
}

/// Where projection `name` stands in each lane.
pub async fn marks(
    conn: &mut PgConnection,
    name: &str,
) -> Result<HashMap<i32, Checkpoint>, sqlx::Error> {
    let rows: Vec<(i32, i64, i64)> = sqlx::query_as(
        "SELECT lane, txid, position FROM projection_lane_checkpoints WHERE name = $1",
    )
    .bind(name)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(lane, txid, position)| (lane, Checkpoint { txid, position }))
        .collect())
}

/// Moves projection `name` to `at` in `lane`, in the transaction of its rows.
pub async fn save_mark(
    tx: &mut Transaction<'_, Postgres>,
    name: &str,
    lane: i32,
    at: Checkpoint,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projection_lane_checkpoints (name, lane, txid, position) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name, lane) DO UPDATE SET txid = excluded.txid, position = excluded.position",
    )
    .bind(name)
    .bind(lane)
    .bind(at.txid)
    .bind(at.position)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One page from every lane, `limit` rows in all, with each lane's last row. The lanes
/// are read at once, each on its worker.
/// Customer keys are a coordinator table, read on `coordinator`.
pub async fn read_lanes(
    cluster: &Cluster,
    coordinator: &mut PgConnection,
    marks: &HashMap<i32, Checkpoint>,
    limit: i64,
    reads: &[&str],
) -> Result<(Page, Vec<(i32, Checkpoint)>), ProjectionError> {
    let per_lane = (limit / cluster.lanes.len().max(1) as i64).max(1);
    let rows = futures::future::try_join_all(cluster.lanes.iter().map(|lane| {
        let from = marks.get(&lane.group).copied().unwrap_or(Checkpoint::START);
        lane.read_after(from, per_lane)
    }))
    .await?;
    let sealed: Vec<String> = rows
        .iter()
        .flat_map(|r| crate::pii::streams_to_open(r))
        .collect();
    let keys = crate::pii::keys::fetch_pg(coordinator, &sealed).await?;
    let pages = rows
        .into_iter()
        .map(|r| crate::log::page_of(r, reads, &keys))
        .collect::<Result<Vec<_>, _>>()?;
    let mut page = Page::default();
    let mut moved = Vec::new();
    for (lane, p) in cluster.lanes.iter().zip(pages) {
        if let Some(last) = p.last {
            moved.push((lane.group, last));
            page.last = Some(page.last.map_or(last, |l: Checkpoint| l.max(last)));
        }
        page.events.extend(p.events);
        page.tally.merge(p.tally);
    }
    Ok((page, moved))
}

/// Events after projection `name`'s marks (of `tenant` only, when given), summed over
/// the lanes, and the oldest one's time.
pub async fn lag(
    pool: &PgPool,
    cluster: &Cluster,
    name: &str,
    tenant: Option<&str>,
) -> Result<(i64, Option<DateTime<Utc>>), ProjectionError> {
    let marks = marks(&mut *pool.acquire().await?, name).await?;
    let lags = futures::future::try_join_all(cluster.lanes.iter().map(|lane| {
        let from = marks.get(&lane.group).copied().unwrap_or(Checkpoint::START);
        lane.lag(from, tenant)
    }))
    .await?;
    Ok(lags.into_iter().fold((0, None), |(n, oldest), (m, at)| {
        (n + m, oldest.into_iter().chain(at).min())
    }))
}

/// Whether projection `name` has applied event `sequence` of stream `aggregate_id`:
/// the event's row, found by its key on its worker, is at or before the projection's mark
/// in that worker's lane.
pub async fn applied(
    pool: &PgPool,
    name: &str,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
) -> Result<bool, ProjectionError> {
    let lane: i32 = sqlx::query_scalar(
        "SELECT groupid FROM pg_dist_placement \
          WHERE shardid = get_shard_id_for_distribution_column('events', $1::text) LIMIT 1",
    )
    .bind(aggregate_id)
    .fetch_one(pool)
    .await?;
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT txid::text::bigint, position FROM events \
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(sequence)
    .fetch_optional(pool)
    .await?;
    let Some((txid, position)) = row else {
        return Ok(false);
    };
    let marks = marks(&mut *pool.acquire().await?, name).await?;
    Ok(marks
        .get(&lane)
        .is_some_and(|mark| Checkpoint { txid, position } <= *mark))
}
