//! A member of staff who left stops being a caller the moment their departure is in
//! the log: their tokens and keys are refused before any read, so a guide who resigned
//! cannot export the customers they served. The log, not a read model, is asked, so
//! there is no projection lag in which a departed guide still gets in. "Still here" is
//! then kept in [`Presence`] until a departure is heard.

use cqrs_es::Aggregate;
use domain::staff::Staff;
use domain::stamp::stream_id;
use domain::values::{StaffId, TenantId};
use projections::on_pool;

use super::presence::Presence;
use crate::db::Database;

const DEPARTED: &str = "SELECT sequence FROM events WHERE aggregate_type = $1 \
    AND aggregate_id = $2 AND event_type = 'StaffDeparted' LIMIT 1";

/// Whether `staff` of `tenant` has departed: from `presence` when it knows they are
/// still here, else one short range read of the staff member's own stream (a handful of
/// events) on the events table's key, on PostgreSQL on the tenant's own connections,
/// which the request's reads then use too.
pub async fn has_departed(
    db: &Database,
    presence: &Presence,
    tenant: &TenantId,
    staff: &StaffId,
) -> Result<bool, sqlx::Error> {
    let stream = stream_id(tenant, staff.as_str());
    if presence.is_present(&stream) {
        return Ok(false);
    }
    let ticket = presence.ticket();
    let departed = ask_the_log(db, tenant, &stream).await?;
    if !departed {
        presence.remember(ticket, &stream);
    }
    Ok(departed)
}

async fn ask_the_log(db: &Database, tenant: &TenantId, stream: &str) -> Result<bool, sqlx::Error> {
    if let Database::Postgres(main) = db {
        if let Some(pool) = crate::reads::bound::tenant_pool(main, tenant).await? {
            let found: Option<(i64,)> = sqlx::query_as(DEPARTED)
                .bind(Staff::TYPE)
                .bind(stream)
                .fetch_optional(&pool)
                .await?;
            return Ok(found.is_some());
        }
    }
    let found: Option<(i64,)> = on_pool!(db, |pool| {
        sqlx::query_as(DEPARTED)
            .bind(Staff::TYPE)
            .bind(stream)
            .fetch_optional(pool)
            .await
    })?;
    Ok(found.is_some())
}
