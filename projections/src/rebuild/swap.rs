//! Putting a rebuild's rows in place in one short transaction. The incremental
//! projector is held off by the checkpoint's lock; readers see the old rows until the
//! commit.

use crate::announce::{Announces, Change};
use crate::db::Database;
use crate::error::ProjectionError;
use crate::log::{Checkpoint, LoggedEvent};
use crate::registry::Projection;
use crate::tally::TenantTally;

use super::write::next;

/// A rebuilt projection starts over from a clean slate.
const CLEAR_FAILURE: &str = "DELETE FROM projection_failures WHERE name = $1";

/// The whole deployment's tables: `__next` replaces each live table, and the checkpoint
/// becomes the rebuild's, so the projector goes on from there: events committed during
/// the rebuild are applied after it, none twice and none lost. On Citus the checkpoint
/// is one mark per worker (`lanes`), each where that worker's snapshot ended.
pub async fn swap_all(
    db: &Database,
    p: &Projection,
    at: Checkpoint,
    lanes: &[(i32, Checkpoint)],
    events: i64,
    tally: &TenantTally,
) -> Result<(), ProjectionError> {
    match db {
        Database::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            crate::sql::pg::lock_checkpoint(&mut tx, p.name).await?;
            for (table, _) in p.tables {
                let (live, fresh) = (table.name, next(table));
                for sql in [
                    format!("DROP TABLE IF EXISTS {live}"),
                    format!("ALTER TABLE {fresh} RENAME TO {live}"),
                    format!("ALTER TABLE {live} RENAME CONSTRAINT {fresh}_pkey TO {live}_pkey"),
                ] {
                    sqlx::query(&sql).execute(&mut *tx).await?;
                }
                for i in 0..table.indexes.len() {
                    sqlx::query(&format!("ALTER INDEX {fresh}_ix{i} RENAME TO {live}_ix{i}"))
                        .execute(&mut *tx)
                        .await?;
                }
            }
            crate::sql::pg::save_checkpoint(&mut tx, p.name, p.version, at, events).await?;
            if !lanes.is_empty() {
                sqlx::query("DELETE FROM projection_lane_checkpoints WHERE name = $1")
                    .bind(p.name)
                    .execute(&mut *tx)
                    .await?;
                for (lane, mark) in lanes {
                    crate::citus::save_mark(&mut tx, p.name, *lane, *mark).await?;
                }
            }
            crate::sql::pg::replace_tenant_progress(&mut tx, p.name, tally).await?;
            if p.announces != Announces::Nothing {
                crate::announce::pg(&mut tx, &[Change::All]).await?;
            }
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

/// The tenant's live rows of every table of `p` replaced by the `__next` table's, which
/// is dropped.
macro_rules! replace_tenant_rows {
    ($tx:expr, $p:expr, $tenant:expr) => {
        for (table, _) in $p.tables {
            let cols = table.column_list();
            sqlx::query(&format!("DELETE FROM {} WHERE tenant_id = $1", table.name))
                .bind($tenant)
                .execute(&mut *$tx)
                .await?;
            sqlx::query(&format!(
                "INSERT INTO {} ({cols}) SELECT {cols} FROM {}",
                table.name,
                next(table)
            ))
            .execute(&mut *$tx)
            .await?;
            sqlx::query(&format!("DROP TABLE {}", next(table)))
                .execute(&mut *$tx)
                .await?;
        }
    };
}

/// One tenant's rows: the tenant's live rows are replaced by `__next`'s (which hold
/// only that tenant's, folded up to `read_to`), then the tenant's events the projector
/// applied after `read_to` are applied again on top, so the rows end where the
/// projection's checkpoint stands. Other tenants' rows and the checkpoint are left as
/// they are. The projector must already be at or past `read_to`.
pub async fn swap_tenant(
    db: &Database,
    p: &Projection,
    tenant: &str,
    read_to: Checkpoint,
    tally: &TenantTally,
) -> Result<(), ProjectionError> {
    macro_rules! swap_tenant_impl {
        ($m:ident, $pool:expr, $replay:ident) => {{
            use crate::sql::$m::{lock_checkpoint, read_after, replace_one_tenant_progress};
            let mut tx = $pool.begin().await?;
            let Some((version, now, _)) = lock_checkpoint(&mut tx, p.name).await? else {
                return Err(ProjectionError::NotPrepared(p.name));
            };
            if version != p.version {
                return Err(ProjectionError::NeedsRebuild(p.name));
            }
            debug_assert!(now >= read_to, "the projector is behind the rebuild");
            replace_tenant_rows!(tx, p, tenant);
            // What the projector applied to the old rows while the rebuild ran.
            let mut progress = tally.clone();
            let mut at = read_to;
            loop {
                let page = read_after(&mut *tx, at, 20_000, crate::log::AGGREGATE_TYPES).await?;
                let Some(last) = page.last else { break };
                let mine: Vec<LoggedEvent> = page
                    .events
                    .into_iter()
                    .filter(|e| e.tenant == tenant && e.checkpoint <= now)
                    .collect();
                for e in &mine {
                    progress.add(e);
                }
                p.$replay(&mut *tx, &mine).await?;
                if last >= now {
                    break;
                }
                at = last;
            }
            replace_one_tenant_progress(&mut tx, p.name, tenant, &progress).await?;
            if p.announces != Announces::Nothing {
                crate::announce::$m(&mut *tx, &[Change::Tenant(tenant.to_string())]).await?;
            }
            tx.commit().await?;
        }};
    }
    match db {
        Database::Postgres(pool) => swap_tenant_impl!(pg, pool, replay_pg),
        Database::Sqlite(pool) => swap_tenant_impl!(lite, pool, replay_lite),
    }
    Ok(())
}

/// [`swap_tenant`] on Citus: the rebuild read each lane up to its worker's snapshot
/// (`read_to`: each lane's bound), and the tenant's events the projector applied after
/// it, up to the projection's mark in that lane, are applied again on top. The
/// projector must already be past the last row the rebuild read in every lane.
pub async fn swap_tenant_lanes(
    pool: &sqlx::PgPool,
    cluster: &crate::citus::Cluster,
    p: &Projection,
    tenant: &str,
    read_to: &[(i32, Checkpoint)],
    tally: &TenantTally,
) -> Result<(), ProjectionError> {
    use crate::sql::pg::{lock_checkpoint, replace_one_tenant_progress};
    let mut tx = pool.begin().await?;
    let Some((version, _, _)) = lock_checkpoint(&mut tx, p.name).await? else {
        return Err(ProjectionError::NotPrepared(p.name));
    };
    if version != p.version {
        return Err(ProjectionError::NeedsRebuild(p.name));
    }
    replace_tenant_rows!(tx, p, tenant);
    let marks = crate::citus::marks(&mut tx, p.name).await?;
    let mut progress = tally.clone();
    for (lane, bound) in read_to {
        let (Some(now), Some(worker)) = (
            marks.get(lane),
            cluster.lanes.iter().find(|l| l.group == *lane),
        ) else {
            continue;
        };
        let mut at = *bound;
        while at < *now {
            let rows = worker.read_after(at, 20_000).await?;
            let keys =
                crate::pii::keys::fetch_pg(&mut tx, &crate::pii::streams_to_open(&rows)).await?;
            let page = crate::log::page_of(rows, crate::log::AGGREGATE_TYPES, &keys)?;
            let Some(last) = page.last else { break };
            let mine: Vec<LoggedEvent> = page
                .events
                .into_iter()
                .filter(|e| e.tenant == tenant && e.checkpoint <= *now)
                .collect();
            for e in &mine {
                progress.add(e);
            }
            p.replay_pg(&mut tx, &mine).await?;
            at = last;
        }
    }
    replace_one_tenant_progress(&mut tx, p.name, tenant, &progress).await?;
    if p.announces != Announces::Nothing {
        crate::announce::pg(&mut tx, &[Change::Tenant(tenant.to_string())]).await?;
    }
    tx.commit().await?;
    Ok(())
}
