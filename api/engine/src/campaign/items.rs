//! The rows of a campaign's job: the campaign itself (`campaigns`: its kind, send time
//! and how far it got) and one row per customer of its audience (`campaign_items`),
//! written when the job plans and moved to their outcome by WeCom's answers and results.
//! The job row's progress and counts by outcome are refreshed from them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::campaign_plan::Plan;
use domain::values::{StaffId, TenantId};
use projections::on_pool;
use serde_json::Value;

use super::KindInput;
use crate::db::Database;
use crate::handover::OutcomeCount;
use crate::outbox::{self, Call};

/// In a call WeCom has not answered yet.
pub const PLANNED: &str = "PLANNED";
/// WeCom holds the guide's task (or post); the customer is not reached yet.
pub const SENT: &str = "SENT";
pub const DELIVERED: &str = "DELIVERED";
pub const HELD_OUT: &str = "HELD_OUT";
/// Not in the guide's friends, as WeCom answered.
pub const NOT_FRIEND: &str = "NOT_FRIEND";
/// WeCom did not send: the customer already received a mass message that day.
pub const ALREADY_RECEIVED: &str = "ALREADY_RECEIVED";
/// The guide did not confirm within the window.
pub const UNCONFIRMED: &str = "UNCONFIRMED";
/// A post whose creation answer was lost: it may exist, and is not made twice.
pub const ANSWER_LOST: &str = "ANSWER_LOST";
/// The call was given up after its last attempt.
pub const CALL_FAILED: &str = "CALL_FAILED";

/// Rows per INSERT statement: 7 parameters each stays far below either backend's limit.
const ROWS_PER_INSERT: usize = 1_000;

/// How far a campaign got.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct State {
    /// When it was first planned: the day the one-a-day rule counts.
    pub send_at: DateTime<Utc>,
    pub planned_at: Option<DateTime<Utc>>,
    pub called_at: Option<DateTime<Utc>>,
    pub held_at: Option<DateTime<Utc>>,
}

/// One customer's row as planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    pub customer: String,
    pub sender: Option<String>,
    pub outcome: &'static str,
}

/// What became of one customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub customer: String,
    pub outcome: String,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A campaign's call with customers still waiting on it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenCall {
    pub call_id: String,
    pub api: String,
    pub status: String,
    pub request: Value,
    pub answer: Option<Value>,
}

/// The campaign's row, written on its first run at `now`: the time its sends count on.
pub async fn open(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    kind: KindInput,
    now: DateTime<Utc>,
) -> Result<State, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO campaigns (tenant_id, job_id, kind, send_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(job_id)
        .bind(kind.as_str())
        .bind(now)
        .execute(pool)
        .await?;
        sqlx::query_as(
            "SELECT send_at, planned_at, called_at, held_at FROM campaigns \
             WHERE tenant_id = $1 AND job_id = $2",
        )
        .bind(tenant.as_str())
        .bind(job_id)
        .fetch_one(pool)
        .await
    })
}

/// The last customer planned, in customer order: a resumed plan goes on after it.
pub async fn last_planned(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_scalar(
            "SELECT max(customer_id) FROM campaign_items WHERE tenant_id = $1 AND job_id = $2",
        )
        .bind(tenant.as_str())
        .bind(job_id)
        .fetch_one(pool)
        .await
    })
}

/// The guides still in the company of the customers from `first` to `last` (one page
/// of the audience, read as a range of the relations' key), with when each relation
/// began.
pub async fn guides(
    db: &Database,
    tenant: &TenantId,
    first: &str,
    last: &str,
) -> Result<HashMap<String, Vec<(StaffId, DateTime<Utc>)>>, sqlx::Error> {
    let rows: Vec<(String, String, DateTime<Utc>)> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT r.customer_id, r.staff_id, r.added_at FROM rm_customer_staff r \
             LEFT JOIN rm_staff s ON s.tenant_id = r.tenant_id AND s.staff_id = r.staff_id \
             WHERE r.tenant_id = $1 AND r.customer_id >= $2 AND r.customer_id <= $3 \
             AND s.departed_at IS NULL",
        )
        .bind(tenant.as_str())
        .bind(first)
        .bind(last)
        .fetch_all(pool)
        .await
    })?;
    Ok(super::guides_by_customer(rows))
}

/// When other campaigns of `kind` reached (or are about to reach) the customers from
/// `first` to `last` since `since`: their planned, sent and delivered rows.
pub async fn reached(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    kind: KindInput,
    (first, last): (&str, &str),
    since: DateTime<Utc>,
) -> Result<HashMap<String, Vec<DateTime<Utc>>>, sqlx::Error> {
    let rows: Vec<(String, DateTime<Utc>, Option<DateTime<Utc>>)> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT customer_id, send_at, delivered_at FROM campaign_items \
             WHERE tenant_id = $1 AND customer_id >= $2 AND customer_id <= $3 AND kind = $4 \
             AND send_at >= $5 AND job_id <> $6 AND outcome IN ($7, $8, $9)",
        )
        .bind(tenant.as_str())
        .bind(first)
        .bind(last)
        .bind(kind.as_str())
        .bind(since)
        .bind(job_id)
        .bind(PLANNED)
        .bind(SENT)
        .bind(DELIVERED)
        .fetch_all(pool)
        .await
    })?;
    let mut out: HashMap<String, Vec<DateTime<Utc>>> = HashMap::new();
    for (customer, send_at, delivered_at) in rows {
        out.entry(customer)
            .or_default()
            .push(delivered_at.unwrap_or(send_at));
    }
    Ok(out)
}

/// The rows a page's plan becomes: each sent customer with their guide, the rest with
/// why not.
pub fn from_plan(plan: &Plan) -> Vec<NewItem> {
    let mut rows: Vec<NewItem> = plan
        .calls
        .iter()
        .flat_map(|call| {
            call.customers.iter().map(|c| NewItem {
                customer: c.to_string(),
                sender: Some(call.sender.to_string()),
                outcome: PLANNED,
            })
        })
        .collect();
    rows.extend(plan.held_out.iter().map(|c| NewItem {
        customer: c.to_string(),
        sender: None,
        outcome: HELD_OUT,
    }));
    rows.extend(plan.skipped.iter().map(|(c, reason)| NewItem {
        customer: c.to_string(),
        sender: None,
        outcome: reason.code(),
    }));
    rows
}

/// Writes one page's rows in one transaction.
pub async fn insert(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    kind: KindInput,
    send_at: DateTime<Utc>,
    rows: &[NewItem],
) -> Result<(), sqlx::Error> {
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut sql = String::from(
                "INSERT INTO campaign_items (tenant_id, job_id, kind, send_at, updated_at, \
                 customer_id, sender_id, outcome) VALUES ",
            );
            for i in 0..chunk.len() {
                let p = 4 + i * 3;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "($1, $2, $3, $4, $4, ${}, ${}, ${})",
                    p + 1,
                    p + 2,
                    p + 3
                ));
            }
            sql.push_str(" ON CONFLICT DO NOTHING");
            let mut q = sqlx::query(&sql)
                .bind(tenant.as_str())
                .bind(job_id)
                .bind(kind.as_str())
                .bind(send_at);
            for row in chunk {
                q = q.bind(&row.customer).bind(&row.sender).bind(row.outcome);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await
    })
}

async fn mark(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    column: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let sql = format!("UPDATE campaigns SET {column} = $3 WHERE tenant_id = $1 AND job_id = $2");
    on_pool!(db, |pool| {
        sqlx::query(&sql)
            .bind(tenant.as_str())
            .bind(job_id)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
    })
}

/// Refreshes the planner's statistics of the rows a plan just wrote: without them
/// PostgreSQL guesses the new rows away and scans the job's rows for every call (as the
/// handover's items did, ADR 7).
pub async fn analyze(db: &Database) -> Result<(), sqlx::Error> {
    on_pool!(db, |pool| sqlx::query("ANALYZE campaign_items")
        .execute(pool)
        .await
        .map(|_| ()))
}

/// Every customer of the audience has its row.
pub async fn mark_planned(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    mark(db, tenant, job_id, "planned_at", now).await
}

/// Every planned customer is in a call.
pub async fn mark_called(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    mark(db, tenant, job_id, "called_at", now).await
}

/// Every customer held out has it in their stream.
pub async fn mark_held(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    mark(db, tenant, job_id, "held_at", now).await
}

/// Up to `limit` customers held out, in customer order after `after`.
pub async fn held_out_after(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_scalar(
            "SELECT customer_id FROM campaign_items WHERE tenant_id = $1 AND job_id = $2 \
             AND outcome = $3 AND customer_id > $4 ORDER BY customer_id LIMIT $5",
        )
        .bind(tenant.as_str())
        .bind(job_id)
        .bind(HELD_OUT)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}

/// The next `limit` guides after `after` with planned customers in no call yet: each
/// look starts where the last one ended instead of passing over the customers already
/// in calls.
pub async fn unassigned_senders(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_scalar(
            "SELECT DISTINCT sender_id FROM campaign_items WHERE tenant_id = $1 \
             AND job_id = $2 AND outcome = $3 AND sender_id > $4 AND call_id IS NULL \
             ORDER BY sender_id LIMIT $5",
        )
        .bind(tenant.as_str())
        .bind(job_id)
        .bind(PLANNED)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}

/// The planned customers in no call yet of the guides after `after` up to `last`, as
/// `(guide, customer)` in guide then customer order.
pub async fn unassigned_between(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    (after, last): (&str, &str),
) -> Result<Vec<(String, String)>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT sender_id, customer_id FROM campaign_items WHERE tenant_id = $1 \
             AND job_id = $2 AND outcome = $3 AND sender_id > $4 AND sender_id <= $5 \
             AND call_id IS NULL ORDER BY sender_id, customer_id",
        )
        .bind(tenant.as_str())
        .bind(job_id)
        .bind(PLANNED)
        .bind(after)
        .bind(last)
        .fetch_all(pool)
        .await
    })
}

/// A call and the range of one guide's planned customers it sends to.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub call: Call,
    pub sender: String,
    pub first: String,
    pub last: String,
}

/// Writes the calls to the outbox and puts each one's customers in it, in one
/// transaction: a call exists exactly when its customers are in it.
pub async fn assign(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    assignments: &[Assignment],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let calls: Vec<Call> = assignments.iter().map(|a| a.call.clone()).collect();
    match db {
        Database::Postgres(pool) => {
            let column =
                |f: fn(&Assignment) -> &str| -> Vec<&str> { assignments.iter().map(f).collect() };
            let mut tx = pool.begin().await?;
            outbox::insert_pg(&mut tx, &calls, now).await?;
            sqlx::query(
                "UPDATE campaign_items i SET call_id = v.call_id, updated_at = $3 \
                 FROM unnest($5::text[], $6::text[], $7::text[], $8::text[]) \
                 AS v(call_id, sender_id, first, last) \
                 WHERE i.tenant_id = $1 AND i.job_id = $2 AND i.outcome = $4 \
                 AND i.sender_id = v.sender_id AND i.call_id IS NULL \
                 AND i.customer_id >= v.first AND i.customer_id <= v.last",
            )
            .bind(tenant.as_str())
            .bind(job_id)
            .bind(now)
            .bind(PLANNED)
            .bind(column(|a| a.call.call_id.as_str()))
            .bind(column(|a| a.sender.as_str()))
            .bind(column(|a| a.first.as_str()))
            .bind(column(|a| a.last.as_str()))
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        }
        Database::Sqlite(pool) => {
            // In-process: a statement per call costs microseconds.
            let mut tx = pool.begin().await?;
            outbox::insert_sqlite(&mut tx, &calls, now).await?;
            for a in assignments {
                sqlx::query(
                    "UPDATE campaign_items SET call_id = $3, updated_at = $4 \
                     WHERE tenant_id = $1 AND job_id = $2 AND outcome = $5 \
                     AND sender_id = $6 AND call_id IS NULL \
                     AND customer_id >= $7 AND customer_id <= $8",
                )
                .bind(tenant.as_str())
                .bind(job_id)
                .bind(&a.call.call_id)
                .bind(now)
                .bind(PLANNED)
                .bind(&a.sender)
                .bind(&a.first)
                .bind(&a.last)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        }
    }
}

/// The campaign's calls with customers still planned or sent in them.
pub async fn open_calls(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
) -> Result<Vec<OpenCall>, sqlx::Error> {
    let rows: Vec<(String, String, String, String, Option<String>)> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT o.call_id, o.api, o.status, o.request, o.answer FROM wecom_outbox o \
             WHERE o.tenant_id = $1 AND o.subject = $2 AND EXISTS (SELECT 1 \
               FROM campaign_items i WHERE i.tenant_id = o.tenant_id AND i.job_id = $2 \
               AND i.call_id = o.call_id AND i.outcome IN ($3, $4)) \
             ORDER BY o.call_id",
        )
        .bind(tenant.as_str())
        .bind(job_id)
        .bind(PLANNED)
        .bind(SENT)
        .fetch_all(pool)
        .await
    })?;
    Ok(rows
        .into_iter()
        .map(|(call_id, api, status, request, answer)| OpenCall {
            call_id,
            api,
            status,
            request: serde_json::from_str(&request).unwrap_or(Value::Null),
            answer: answer.and_then(|a| serde_json::from_str(&a).ok()),
        })
        .collect())
}

/// The customers of `call_id` with outcome `outcome`.
pub async fn customers_in(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    call_id: &str,
    outcome: &str,
) -> Result<Vec<String>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_scalar(
            "SELECT customer_id FROM campaign_items WHERE tenant_id = $1 AND job_id = $2 \
             AND call_id = $3 AND outcome = $4 ORDER BY customer_id",
        )
        .bind(tenant.as_str())
        .bind(job_id)
        .bind(call_id)
        .bind(outcome)
        .fetch_all(pool)
        .await
    })
}

/// Moves every customer of `call_id` (or of the whole job) still `from` to `to`.
pub async fn move_all(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    call_id: Option<&str>,
    from: &str,
    to: &str,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query(
            "UPDATE campaign_items SET outcome = $3, updated_at = $4 WHERE tenant_id = $1 \
             AND job_id = $2 AND outcome = $5 AND ($6 IS NULL OR call_id = $6)",
        )
        .bind(tenant.as_str())
        .bind(job_id)
        .bind(to)
        .bind(now)
        .bind(from)
        .bind(call_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })
}

/// Records `outcomes` for customers of the job still planned or sent; a customer that
/// already has its outcome keeps it.
pub async fn record(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
    outcomes: &[Outcome],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if outcomes.is_empty() {
        return Ok(());
    }
    match db {
        Database::Postgres(pool) => {
            let customers: Vec<&str> = outcomes.iter().map(|o| o.customer.as_str()).collect();
            let codes: Vec<&str> = outcomes.iter().map(|o| o.outcome.as_str()).collect();
            let at: Vec<Option<DateTime<Utc>>> = outcomes.iter().map(|o| o.delivered_at).collect();
            sqlx::query(
                "UPDATE campaign_items i SET outcome = v.outcome, delivered_at = v.at, \
                 updated_at = $6 \
                 FROM unnest($3::text[], $4::text[], $5::timestamptz[]) AS v(customer_id, outcome, at) \
                 WHERE i.tenant_id = $1 AND i.job_id = $2 AND i.customer_id = v.customer_id \
                 AND i.outcome IN ($7, $8)",
            )
            .bind(tenant.as_str())
            .bind(job_id)
            .bind(customers)
            .bind(codes)
            .bind(at)
            .bind(now)
            .bind(PLANNED)
            .bind(SENT)
            .execute(pool)
            .await?;
            Ok(())
        }
        Database::Sqlite(pool) => {
            // In-process: a statement per row costs microseconds.
            let mut tx = pool.begin().await?;
            for o in outcomes {
                sqlx::query(
                    "UPDATE campaign_items SET outcome = $4, delivered_at = $5, updated_at = $6 \
                     WHERE tenant_id = $1 AND job_id = $2 AND customer_id = $3 \
                     AND outcome IN ($7, $8)",
                )
                .bind(tenant.as_str())
                .bind(job_id)
                .bind(&o.customer)
                .bind(&o.outcome)
                .bind(o.delivered_at)
                .bind(now)
                .bind(PLANNED)
                .bind(SENT)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        }
    }
}

/// Customers of the job not at their outcome yet (planned or sent).
pub async fn open_count(
    db: &Database,
    tenant: &TenantId,
    job_id: &str,
) -> Result<i64, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_scalar(
            "SELECT count(*) FROM campaign_items WHERE tenant_id = $1 AND job_id = $2 \
             AND outcome IN ($3, $4)",
        )
        .bind(tenant.as_str())
        .bind(job_id)
        .bind(PLANNED)
        .bind(SENT)
        .fetch_one(pool)
        .await
    })
}

/// Recomputes the job row's progress (customers at their outcome, of the audience) and
/// counts by outcome from the rows.
pub async fn refresh(db: &Database, tenant: &TenantId, job_id: &str) -> Result<(), sqlx::Error> {
    let mut counts: Vec<(String, i64)> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT outcome, count(*) FROM campaign_items WHERE tenant_id = $1 AND job_id = $2 \
             GROUP BY outcome",
        )
        .bind(tenant.as_str())
        .bind(job_id)
        .fetch_all(pool)
        .await
    })?;
    counts.sort();
    let total: i64 = counts.iter().map(|c| c.1).sum();
    let done: i64 = counts
        .iter()
        .filter(|(code, _)| code != PLANNED && code != SENT)
        .map(|c| c.1)
        .sum();
    let outcomes: Vec<OutcomeCount> = counts
        .into_iter()
        .map(|(code, count)| OutcomeCount {
            kind: "customer".into(),
            status: 0,
            code,
            count,
        })
        .collect();
    let json = serde_json::to_string(&outcomes).unwrap_or_else(|_| "[]".into());
    on_pool!(db, |pool| {
        sqlx::query(
            "UPDATE jobs SET progress_done = $3, progress_total = $4, outcomes = $5 \
             WHERE tenant_id = $1 AND job_id = $2",
        )
        .bind(tenant.as_str())
        .bind(job_id)
        .bind(done)
        .bind(total)
        .bind(json)
        .execute(pool)
        .await
        .map(|_| ())
    })
}
