//! What a handover plan is made from, read from the reassignment view (who serves
//! whom, handovers, group owners) after it has caught up with the log. The reads use
//! the owner's connection with an explicit tenant predicate, like the projector.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use domain::handover_plan::{CustomerFacts, GroupFacts};
use domain::rules;
use domain::values::{ExternalUserId, GroupId, StaffId, TenantId};
use projections::on_pool;

use crate::db::Database;

/// The customers `from` serves, with their handover history and who else serves them.
pub async fn customers(
    db: &Database,
    tenant: &TenantId,
    from: &StaffId,
    now: DateTime<Utc>,
) -> Result<Vec<CustomerFacts>, sqlx::Error> {
    let served: Vec<(String,)> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT customer_id FROM rm_staff_customer WHERE tenant_id = $1 AND staff_id = $2",
        )
        .bind(tenant.as_str())
        .bind(from.as_str())
        .fetch_all(pool)
        .await
    })?;
    let handovers: Vec<(String, String, DateTime<Utc>)> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT h.customer_id, h.status, h.requested_at FROM rm_handover h \
             JOIN rm_staff_customer s ON s.tenant_id = h.tenant_id \
              AND s.customer_id = h.customer_id \
             WHERE s.tenant_id = $1 AND s.staff_id = $2",
        )
        .bind(tenant.as_str())
        .bind(from.as_str())
        .fetch_all(pool)
        .await
    })?;
    let others: Vec<(String, String)> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT o.customer_id, o.staff_id FROM rm_staff_customer o \
             JOIN rm_staff_customer s ON s.tenant_id = o.tenant_id \
              AND s.customer_id = o.customer_id \
             WHERE s.tenant_id = $1 AND s.staff_id = $2 AND o.staff_id <> $2",
        )
        .bind(tenant.as_str())
        .bind(from.as_str())
        .fetch_all(pool)
        .await
    })?;
    let since = now - rules::handover_period();
    let mut facts: BTreeMap<String, CustomerFacts> = BTreeMap::new();
    for (id,) in served {
        // A row the view holds always parses; one that would not is left out here and
        // stays with the departed guide, visible in the view.
        let Ok(customer) = ExternalUserId::parse(id.as_str()) else {
            tracing::warn!(customer = %id, "unparsable customer id in the reassignment view");
            continue;
        };
        facts.insert(
            id,
            CustomerFacts {
                customer,
                in_handover: false,
                recent_handovers: 0,
                also_served_by: BTreeSet::new(),
            },
        );
    }
    for (id, status, requested_at) in handovers {
        if let Some(f) = facts.get_mut(&id) {
            f.in_handover |= status == "waiting";
            f.recent_handovers += usize::from(requested_at > since);
        }
    }
    for (id, staff) in others {
        if let (Some(f), Ok(staff)) = (facts.get_mut(&id), StaffId::parse(staff)) {
            f.also_served_by.insert(staff);
        }
    }
    Ok(facts.into_values().collect())
}

/// The groups `from` owns. The view keeps only a group's last transfer, so a group
/// moved twice within 90 days may pass here; the group itself refuses it when the job
/// runs, and that refusal is the item's outcome.
pub async fn groups(
    db: &Database,
    tenant: &TenantId,
    from: &StaffId,
    now: DateTime<Utc>,
) -> Result<Vec<GroupFacts>, sqlx::Error> {
    let rows: Vec<(String, Option<DateTime<Utc>>)> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT group_id, transferred_at FROM rm_group_owner \
             WHERE tenant_id = $1 AND owner_staff_id = $2 AND NOT dismissed",
        )
        .bind(tenant.as_str())
        .bind(from.as_str())
        .fetch_all(pool)
        .await
    })?;
    let since = now - rules::handover_period();
    Ok(rows
        .into_iter()
        .filter_map(|(id, transferred_at)| {
            Some(GroupFacts {
                group: GroupId::parse(id).ok()?,
                recent_transfers: usize::from(transferred_at.is_some_and(|t| t > since)),
            })
        })
        .collect())
}

/// How many customers `staff` serves now.
pub async fn customer_count(
    db: &Database,
    tenant: &TenantId,
    staff: &StaffId,
) -> Result<u32, sqlx::Error> {
    let n: i64 = on_pool!(db, |pool| {
        sqlx::query_scalar(
            "SELECT count(*) FROM rm_staff_customer WHERE tenant_id = $1 AND staff_id = $2",
        )
        .bind(tenant.as_str())
        .bind(staff.as_str())
        .fetch_one(pool)
        .await
    })?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}
