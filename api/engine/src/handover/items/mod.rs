//! The rows of a handover job: one per customer and group, written once when the job
//! plans and updated batch by batch together with the job's progress, so the job row
//! and its items never disagree and a resumed job knows exactly what is left.
//!
//! `counts` keeps the job row's progress and counts by outcome in step with the items
//! (recounted, or shifted by a batch's changes); this module writes the plan's rows,
//! hands out the batches still to run and moves the job between days.

use chrono::{DateTime, NaiveDate, Utc};
use domain::handover_plan::{HandoverPlan, TransferStatus};
use domain::values::TenantId;
use projections::on_pool;
use serde::Serialize;

use crate::db::Database;

/// Takes the job row's lock for the rest of transaction `$tx`, before anything about the
/// job is counted: a batch and the periodic outcome sync then update its counts one after
/// the other, each counting what the other committed. (An UPDATE, not `FOR UPDATE`,
/// so the one statement serves both backends.)
macro_rules! lock_job {
    ($tx:ident, $tenant:expr, $job_id:expr) => {{
        sqlx::query(
            "UPDATE jobs SET progress_done = progress_done WHERE tenant_id = $1 AND job_id = $2",
        )
        .bind($tenant)
        .bind($job_id)
        .execute(&mut *$tx)
        .await?;
    }};
}

/// Recomputes the job row's progress and counts by outcome from its items, inside the
/// transaction `$tx` (the same SQL on either backend; a macro because the types differ).
macro_rules! refresh_job {
    ($tx:ident, $tenant:expr, $job_id:expr) => {{
        lock_job!($tx, $tenant, $job_id);
        let counts: Vec<(String, i64, String, i64)> = sqlx::query_as(
            "SELECT kind, CAST(status AS bigint), code, count(*) FROM handover_items \
             WHERE tenant_id = $1 AND job_id = $2 GROUP BY kind, status, code \
             ORDER BY kind, status, code",
        )
        .bind($tenant)
        .bind($job_id)
        .fetch_all(&mut *$tx)
        .await?;
        let (done, json) = outcomes_json(counts);
        sqlx::query(
            "UPDATE jobs SET progress_done = $3, outcomes = $4 \
             WHERE tenant_id = $1 AND job_id = $2",
        )
        .bind($tenant)
        .bind($job_id)
        .bind(done)
        .bind(json)
        .execute(&mut *$tx)
        .await?;
    }};
}

mod counts;

use counts::outcomes_json;
pub use counts::{groups_answered, record, recount, sync_outcomes};

pub const CUSTOMER: &str = "customer";
pub const GROUP: &str = "group";

/// Waiting to run today (customers: requested by the job; groups: due).
pub const PLANNED: &str = "PLANNED";
/// A group due on a later day: the owner's 300 transfers a day are used up.
pub const SCHEDULED: &str = "SCHEDULED";
pub const REQUESTED: &str = "REQUESTED";
pub const TRANSFERRED: &str = "TRANSFERRED";
/// A group whose transfer call to WeCom is written and not yet answered.
pub const SENT: &str = "SENT";

/// Rows per INSERT statement: 9 parameters each stays far below either backend's limit.
const ROWS_PER_INSERT: usize = 500;

/// One row to write when the job plans.
#[derive(Debug, Clone, PartialEq)]
pub struct NewItem {
    pub kind: &'static str,
    pub item_id: String,
    pub to_staff_id: Option<String>,
    pub batch: Option<i64>,
    pub due_day: Option<NaiveDate>,
    pub handover_id: Option<String>,
    pub code: String,
    pub status: TransferStatus,
}

/// The rows a plan becomes. Customers' handover ids are fixed here (from the job and
/// the customer), so the request a resumed job repeats is the very same command.
pub fn from_plan(
    plan: &HandoverPlan,
    today: NaiveDate,
    handover_id: impl Fn(&str) -> String,
) -> Vec<NewItem> {
    let mut items = Vec::new();
    let mut batch = 0i64;
    for b in &plan.customer_batches {
        batch += 1;
        items.extend(b.customers.iter().map(|c| NewItem {
            kind: CUSTOMER,
            item_id: c.to_string(),
            to_staff_id: Some(b.to.to_string()),
            batch: Some(batch),
            due_day: None,
            handover_id: Some(handover_id(c.as_str())),
            code: PLANNED.into(),
            status: TransferStatus::Waiting,
        }));
    }
    items.extend(plan.customers_skipped.iter().map(|s| NewItem {
        kind: CUSTOMER,
        item_id: s.customer.to_string(),
        to_staff_id: None,
        batch: None,
        due_day: None,
        handover_id: None,
        code: s.reason.code().into(),
        status: s.status(),
    }));
    for b in &plan.group_batches {
        batch += 1;
        let code = if b.day > today { SCHEDULED } else { PLANNED };
        items.extend(b.groups.iter().map(|g| NewItem {
            kind: GROUP,
            item_id: g.to_string(),
            to_staff_id: Some(b.to.to_string()),
            batch: Some(batch),
            due_day: Some(b.day),
            handover_id: None,
            code: code.into(),
            status: TransferStatus::Waiting,
        }));
    }
    items.extend(plan.groups_skipped.iter().map(|s| NewItem {
        kind: GROUP,
        item_id: s.group.to_string(),
        to_staff_id: None,
        batch: None,
        due_day: None,
        handover_id: None,
        code: s.reason.code().into(),
        status: TransferStatus::NoRecord,
    }));
    items
}

/// What happened to one item in a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    pub item_id: String,
    pub code: String,
    pub status: TransferStatus,
}

/// A row still to run.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Todo {
    pub batch: i64,
    pub item_id: String,
    pub to_staff_id: String,
    pub handover_id: Option<String>,
}

/// Counts by outcome, as the job row carries them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct OutcomeCount {
    pub kind: String,
    pub status: i64,
    pub code: String,
    pub count: i64,
}

fn day_text(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

/// Whether the job already planned (a resumed job does not plan again).
pub async fn planned(db: &Database, tenant: &TenantId, job_id: &str) -> Result<bool, sqlx::Error> {
    let n: i64 = on_pool!(db, |pool| {
        sqlx::query_scalar(
            "SELECT count(*) FROM handover_items WHERE tenant_id = $1 AND job_id = $2",
        )
        .bind(tenant.as_str())
        .bind(job_id)
        .fetch_one(pool)
        .await
    })?;
    Ok(n > 0)
}

/// Writes the plan's rows and marks the job running with its total, in one transaction.
pub async fn insert(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    items: &[NewItem],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        for chunk in items.chunks(ROWS_PER_INSERT) {
            let mut sql = String::from(
                "INSERT INTO handover_items (tenant_id, job_id, kind, item_id, to_staff_id, \
                 batch, due_day, handover_id, code, status, updated_at) VALUES ",
            );
            for i in 0..chunk.len() {
                let p = 3 + i * 8;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "($1, $2, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, $3)",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6,
                    p + 7,
                    p + 8
                ));
            }
            let mut q = sqlx::query(&sql)
                .bind(tenant.as_str())
                .bind(job_id)
                .bind(now);
            for item in chunk {
                q = q
                    .bind(item.kind)
                    .bind(&item.item_id)
                    .bind(&item.to_staff_id)
                    .bind(item.batch)
                    .bind(item.due_day.map(day_text))
                    .bind(&item.handover_id)
                    .bind(&item.code)
                    .bind(i32::from(item.status.code()));
            }
            q.execute(&mut *tx).await?;
        }
        sqlx::query(
            "UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, $3), \
             progress_total = $4 WHERE tenant_id = $1 AND job_id = $2",
        )
        .bind(tenant.as_str())
        .bind(job_id)
        .bind(now)
        .bind(items.len() as i64)
        .execute(&mut *tx)
        .await?;
        refresh_job!(tx, tenant.as_str(), job_id);
        tx.commit().await
    })
}

/// Refreshes the planner's statistics of the items before a run's batches. Without them
/// (a table just filled, autovacuum not yet round) PostgreSQL guessed the new rows away
/// and updated each batch by scanning every one of the job's to-do entries: 50 ms a
/// batch of 100 at 20,000 customers. (A role that does not own the table gets a
/// warning, not an error.)
pub async fn analyze(db: &Database) -> Result<(), sqlx::Error> {
    on_pool!(db, |pool| sqlx::query("ANALYZE handover_items")
        .execute(pool)
        .await
        .map(|_| ()))
}

/// The next batch of customers still to request, in batch order.
pub async fn next_customers(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
) -> Result<Vec<Todo>, sqlx::Error> {
    let rows: Vec<Todo> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT batch, item_id, to_staff_id, handover_id FROM handover_items \
             WHERE tenant_id = $1 AND job_id = $2 AND code = $3 AND kind = $4 \
             ORDER BY batch, item_id LIMIT $5",
        )
        .bind(tenant.as_str())
        .bind(job_id)
        .bind(PLANNED)
        .bind(CUSTOMER)
        .bind(domain::rules::WECOM_BATCH_SIZE as i64)
        .fetch_all(pool)
        .await
    })?;
    Ok(first_batch(rows))
}

/// The next batch of groups due on or before `today`.
pub async fn next_groups(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    today: NaiveDate,
) -> Result<Vec<Todo>, sqlx::Error> {
    let rows: Vec<Todo> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT batch, item_id, to_staff_id, handover_id FROM handover_items \
             WHERE tenant_id = $1 AND job_id = $2 AND code IN ($3, $4) AND kind = $5 \
             AND due_day <= $6 ORDER BY batch, item_id LIMIT $7",
        )
        .bind(tenant.as_str())
        .bind(job_id)
        .bind(PLANNED)
        .bind(SCHEDULED)
        .bind(GROUP)
        .bind(day_text(today))
        .bind(domain::rules::WECOM_BATCH_SIZE as i64)
        .fetch_all(pool)
        .await
    })?;
    Ok(first_batch(rows))
}

fn first_batch(mut rows: Vec<Todo>) -> Vec<Todo> {
    if let Some(first) = rows.first().map(|r| r.batch) {
        rows.retain(|r| r.batch == first);
    }
    rows
}

/// Moves every group still due on or before `today` to `next`: the owner's transfers
/// for today are used up.
pub async fn postpone_groups(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    today: NaiveDate,
    next: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "UPDATE handover_items SET due_day = $1, code = $2, updated_at = $3 \
             WHERE tenant_id = $4 AND job_id = $5 AND kind = $6 AND code IN ($7, $2) \
             AND due_day <= $8",
        )
        .bind(day_text(next))
        .bind(SCHEDULED)
        .bind(now)
        .bind(tenant.as_str())
        .bind(job_id)
        .bind(GROUP)
        .bind(PLANNED)
        .bind(day_text(today))
        .execute(&mut *tx)
        .await?;
        refresh_job!(tx, tenant.as_str(), job_id);
        tx.commit().await
    })
}

/// The first day a group of the job is still due on, if any is left.
pub async fn next_group_day(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
) -> Result<Option<NaiveDate>, sqlx::Error> {
    let day: Option<String> = on_pool!(db, |pool| {
        sqlx::query_scalar(
            "SELECT min(due_day) FROM handover_items WHERE tenant_id = $1 AND job_id = $2 \
             AND kind = $3 AND code IN ($4, $5)",
        )
        .bind(tenant.as_str())
        .bind(job_id)
        .bind(GROUP)
        .bind(PLANNED)
        .bind(SCHEDULED)
        .fetch_one(pool)
        .await
    })?;
    Ok(day.and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()))
}

/// Leaves the job running, with nothing to do before `until`.
pub async fn wait(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    until: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query(
            "UPDATE jobs SET status = 'running', next_run_at = $3 \
             WHERE tenant_id = $1 AND job_id = $2",
        )
        .bind(tenant.as_str())
        .bind(job_id)
        .bind(until)
        .execute(pool)
        .await
        .map(|_| ())
    })
}

/// Marks the job succeeded: every item has its outcome.
pub async fn succeed(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query(
            "UPDATE jobs SET status = 'succeeded', next_run_at = NULL, finished_at = $3, \
             started_at = COALESCE(started_at, $3) WHERE tenant_id = $1 AND job_id = $2",
        )
        .bind(tenant.as_str())
        .bind(job_id)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::customer::CustomerError;
    use domain::group::GroupError;
    use domain::handover_plan::{
        CustomerBatch, GroupBatch, HandoverPlan, SkippedCustomer, SkippedGroup,
    };
    use domain::values::{ExternalUserId, GroupId, StaffId};

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
    }

    /// kind, item, code, WeCom status, batch, handover id.
    type Row<'a> = (&'a str, &'a str, &'a str, u8, Option<i64>, Option<&'a str>);

    #[test]
    fn every_customer_and_group_of_a_plan_becomes_one_row_with_its_outcome() {
        // Given a plan with a batch, a skipped customer, today's and tomorrow's groups
        // and a skipped group.
        let to = StaffId::parse("next").unwrap();
        let c = |n: &str| ExternalUserId::parse(n).unwrap();
        let g = |n: &str| GroupId::parse(n).unwrap();
        let plan = HandoverPlan {
            customer_batches: vec![CustomerBatch {
                to: to.clone(),
                customers: vec![c("wm1"), c("wm2")],
            }],
            customers_skipped: vec![SkippedCustomer {
                customer: c("wm3"),
                reason: CustomerError::HandoverLimitReached,
            }],
            group_batches: vec![
                GroupBatch {
                    to: to.clone(),
                    day: day(10),
                    groups: vec![g("wr1")],
                },
                GroupBatch {
                    to: to.clone(),
                    day: day(11),
                    groups: vec![g("wr2")],
                },
            ],
            groups_skipped: vec![SkippedGroup {
                group: g("wr3"),
                reason: GroupError::TransferLimitReached,
            }],
        };
        // When
        let rows = from_plan(&plan, day(10), |c| format!("h-{c}"));
        // Then
        let summary: Vec<Row<'_>> = rows
            .iter()
            .map(|r| {
                (
                    r.kind,
                    r.item_id.as_str(),
                    r.code.as_str(),
                    r.status.code(),
                    r.batch,
                    r.handover_id.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (CUSTOMER, "wm1", PLANNED, 2, Some(1), Some("h-wm1")),
                (CUSTOMER, "wm2", PLANNED, 2, Some(1), Some("h-wm2")),
                (CUSTOMER, "wm3", "HANDOVER_LIMIT_REACHED", 5, None, None),
                (GROUP, "wr1", PLANNED, 2, Some(2), None),
                (GROUP, "wr2", SCHEDULED, 2, Some(3), None),
                (GROUP, "wr3", "GROUP_TRANSFER_LIMIT_REACHED", 5, None, None),
            ]
        );
        assert_eq!(rows[4].due_day, Some(day(11)));
    }
}
